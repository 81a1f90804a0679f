"""``shopfloor serve``: resolve a model version through the registry and run the predictor.

Mounted by ``shopfloor.cli`` (``app.command("serve")(serve)``). The predictor's options come
from :data:`shopfloor.serving.options.FLAGS`, the definition ``python -m shopfloor.serving``
uses too. The registry and the predictor are imported lazily so ``shopfloor --help`` stays
fast and serving a local ``--model-dir`` needs no registry.
"""

from __future__ import annotations

import contextlib
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any

import typer

from shopfloor.errors import InvalidInputError, NotFoundError
from shopfloor.serving import options
from shopfloor.settings import CLOUD_ENV, DEFAULT_MODEL_NAME

F = options.FLAGS


def _option(dest: str) -> Any:
    flag = F[dest]
    extra = f"; one of {', '.join(flag.choices)}" if flag.choices else ""
    return typer.Option(flag.flag, help=flag.help + extra)


@contextlib.contextmanager
def resolved_model(
    version: str | None,
    registry: str | None,
    model_dir: Path | None,
    env: str = CLOUD_ENV,
) -> Iterator[tuple[Path, str, str]]:
    """Yield ``(version directory, model name, version)``; a fetched copy lives only while open.

    ``model_dir`` bypasses the registry. Otherwise ``version`` (default: the registry's
    champion for ``env``, else its newest version) is fetched into a temporary directory with
    every file's checksum verified, so what is served is exactly what was published.
    """
    if model_dir is not None:
        if version is not None:
            raise InvalidInputError("give either a registry VERSION or --model-dir, not both")
        yield Path(model_dir), DEFAULT_MODEL_NAME, Path(model_dir).name
        return
    from shopfloor.registry import open_registry

    reg = open_registry(registry)
    chosen = version or reg.champion_or_newest(env)
    if chosen is None:
        raise NotFoundError(f"registry {registry or '(default)'} holds no version of {reg.model} to serve")
    with tempfile.TemporaryDirectory(prefix="shopfloor-serve-") as tmp:
        yield reg.fetch(chosen, Path(tmp) / chosen), reg.model, chosen


def serve(
    version: Annotated[
        str | None,
        typer.Argument(help="registry version, e.g. v0003 (default: the cloud champion, else the newest)"),
    ] = None,
    registry: Annotated[
        str | None,
        typer.Option("--registry",
                     help="s3://bucket/prefix or a path (default: $SHOPFLOOR_REGISTRY or ~/.shopfloor)"),
    ] = None,
    model_dir: Annotated[
        Path | None,
        typer.Option("--model-dir", help="serve a local model version directory (bypasses the registry)"),
    ] = None,
    model_name: Annotated[str | None, _option("model_name")] = None,
    format: Annotated[str, _option("format")] = F["format"].default,
    host: Annotated[str, _option("host")] = F["host"].default,
    http_port: Annotated[int, _option("http_port")] = F["http_port"].default,
    grpc_port: Annotated[int, _option("grpc_port")] = F["grpc_port"].default,
    max_batch: Annotated[int, _option("max_batch")] = F["max_batch"].default,
    max_body_bytes: Annotated[int, _option("max_body_bytes")] = F["max_body_bytes"].default,
    max_connections: Annotated[int, _option("max_connections")] = F["max_connections"].default,
    read_timeout: Annotated[float, _option("read_timeout")] = F["read_timeout"].default,
    idle_timeout: Annotated[float, _option("idle_timeout")] = F["idle_timeout"].default,
    decision_datatype: Annotated[str, _option("decision_datatype")] = F["decision_datatype"].default,
    log_level: Annotated[str, _option("log_level")] = F["log_level"].default,
) -> None:
    """Serve a registered model over KServe V1 / Open Inference Protocol REST and gRPC.

    ``--model-name`` defaults to the registry's model name (the same default for --model-dir).
    """
    values = options.check({k: v for k, v in locals().items() if k in F})
    from shopfloor.serving.__main__ import run

    with resolved_model(version, registry, model_dir) as (directory, name, chosen):
        values["model_name"] = model_name or name
        run(directory, values, announce=lambda text: typer.echo(text, err=True))
