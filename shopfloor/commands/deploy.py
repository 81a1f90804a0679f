"""``shopfloor deploy``: put a registry version behind a KServe InferenceService.

Mounted by ``shopfloor.cli`` as ``app.add_typer(deploy.app, name="deploy")``. Wiring only:
rendering, validation, apply/rollback and registry moves live in :mod:`shopfloor.deploy`.
"""

from __future__ import annotations

from typing import Annotated, Any

import typer

from shopfloor import contract, settings
from shopfloor.contract import SERVABLE_FORMATS
from shopfloor.errors import InvalidInputError

app = typer.Typer(help="Deploy model versions to a cluster.", no_args_is_help=True, add_completion=False)


@app.callback()
def _group() -> None:
    """Deploy model versions (cloud: KServe on Kubernetes)."""


@app.command()
def cloud(
    version: Annotated[str | None, typer.Argument(
        help="Registry version, e.g. v0003 (default: the env's candidate alias, else the newest).")] = None,
    registry: Annotated[str | None, typer.Option(
        help="Registry location, s3://bucket/prefix (default: $SHOPFLOOR_REGISTRY).")] = None,
    env: Annotated[str, typer.Option(help="Registry environment whose aliases move.")] = settings.CLOUD_ENV,
    namespace: Annotated[str, typer.Option(help="Kubernetes namespace.")] = settings.DEFAULT_NAMESPACE,
    image: Annotated[str | None, typer.Option(
        help=f"Predictor container image (default: ${settings.PREDICTOR_IMAGE.name}, else "
             f"{settings.image_ref(settings.PREDICTOR_IMAGE_NAME)}).", show_default=False)] = None,
    name: Annotated[str | None, typer.Option(
        "--name", help="InferenceService name (default: the model name, which must then be a DNS-1035 label "
                       "of at most 45 characters; keep it stable across versions).")] = None,
    model_format: Annotated[str | None, typer.Option(
        "--format", help="Format the predictor serves (default: the version's own edge format: int8 for an "
                         "MLP, float32 for a tree ensemble; auto with --model-uri); one the version lacks is "
                         "refused, naming those it has. One of "
                         f"{', '.join((contract.AUTO_FORMAT, *SERVABLE_FORMATS))}.",
        show_default=False)] = None,
    canary_percent: Annotated[int | None, typer.Option(
        min=0, max=100, help="Send this share of traffic to the version beside the current one "
                             "(KServe Serverless mode); moves the 'canary' alias, not 'champion'.")] = None,
    model_uri: Annotated[str | None, typer.Option(
        help="With --render and VERSION: render for this s3:// URI without reading the registry.")] = None,
    model_name: Annotated[str, typer.Option(
        help="Model name used with --model-uri.")] = settings.DEFAULT_MODEL_NAME,
    render: Annotated[bool, typer.Option(
        "--render", help="Print the manifests as YAML and exit; no cluster is contacted.")] = False,
    timeout: Annotated[float, typer.Option(help="Seconds to wait for Ready before rolling back.")] = 300.0,
    kubeconfig: Annotated[str | None, typer.Option(help="Kubeconfig path (default: $KUBECONFIG).")] = None,
    context: Annotated[str | None, typer.Option(help="Kubeconfig context.")] = None,
) -> None:
    """Render, apply (server-side), wait for Ready, then promote in the registry; roll back on failure."""
    # Refusals raise shopfloor.errors categories: shopfloor.cli prints each as one line and exits
    # with the category's code. A deploy that ran prints its outcome on stdout either way.
    import yaml

    from shopfloor.deploy import apply, validate
    from shopfloor.deploy import render as rendering

    overrides: dict[str, Any] = {"namespace": namespace, "image": image or settings.predictor_image(),
                                 "canary_percent": canary_percent, "name": name, "model_format": model_format}
    if model_uri is not None:
        if not (render and version):
            raise InvalidInputError("--model-uri is only for --render with an explicit VERSION")
        # No manifest is read: the predictor resolves "auto" against the version when it loads it.
        overrides["model_format"] = model_format or contract.AUTO_FORMAT
        spec = rendering.PredictorSpec(model_name=model_name, version=version, storage_uri=model_uri,
                                       **overrides)
    elif render:
        from shopfloor.registry import open_registry

        reg = open_registry(registry)
        spec = apply.spec_from_registry(reg, version or apply.default_version(reg, env), **overrides)
    else:
        result = apply.deploy_from_registry(registry, version, env=env, kubeconfig=kubeconfig,
                                            context=context, timeout=timeout,
                                            log=lambda m: typer.echo(m, err=True), **overrides)
        typer.echo(result.message)  # the outcome, success or not, on stdout as before
        if not result.ok:
            raise typer.Exit(result.category.exit_code)
        return
    objects = rendering.render_objects(spec)
    problems = validate.object_errors(objects)
    if problems:
        raise InvalidInputError("rendered manifests are invalid: " + "; ".join(problems))
    typer.echo(yaml.safe_dump_all(objects, sort_keys=False), nl=False)
