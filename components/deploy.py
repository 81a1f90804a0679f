"""deploy_cloud: roll a registry version out as a KServe InferenceService, or roll back."""

from kfp import dsl

from shopfloor.components.image import IMAGE


@dsl.component(base_image=IMAGE, install_kfp_package=False)
def deploy_cloud(
    version: str, registry: str, env: str, namespace: str, predictor_image: str, timeout_s: float
) -> str:
    """Server-side apply, wait for Ready, promote to champion; on failure roll back (aliases
    unchanged) and fail the task with the reason. Uses the pod's service account.

    Args:
        version: Registry version to deploy, e.g. v0003.
        registry: Registry location (s3://bucket/prefix) the predictor loads the version from.
        env: Registry environment whose alias moves once the InferenceService is Ready.
        namespace: Kubernetes namespace of the InferenceService.
        predictor_image: Predictor image; empty for SHOPFLOOR_PREDICTOR_IMAGE, else this
            package version's image.
        timeout_s: Seconds to wait for Ready before rolling back.

    Returns:
        Output: The one-line outcome, e.g. "v0003 Ready in shopfloor/ai4i-failure; champion for
            cloud now v0003".
    """
    from shopfloor import settings
    from shopfloor.deploy.apply import deploy_from_registry
    from shopfloor.steps import recorded_failure

    with recorded_failure("deploy-cloud"):
        image = predictor_image or settings.predictor_image()
        result = deploy_from_registry(registry, version, env=env, timeout=timeout_s, log=print,
                                      namespace=namespace, image=image)
        if not result.ok:
            raise result.error()
    return result.message
