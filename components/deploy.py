"""deploy_cloud: roll a registry version out as a KServe InferenceService, or roll back."""

from kfp import dsl

from shopfloor.components.image import IMAGE


@dsl.component(base_image=IMAGE)
def deploy_cloud(
    version: str, registry: str, env: str, namespace: str, predictor_image: str, timeout_s: float
) -> str:
    """Server-side apply, wait for Ready, promote to champion; on failure roll back (aliases
    unchanged) and fail the task with the reason. Uses the pod's service account."""
    from shopfloor.deploy.apply import deploy_from_registry

    overrides = {"namespace": namespace}
    if predictor_image:
        overrides["image"] = predictor_image
    result = deploy_from_registry(registry, version, env=env, timeout=timeout_s, log=print, **overrides)
    if not result.ok:
        raise RuntimeError(result.message)
    return result.message
