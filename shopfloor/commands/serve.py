"""``shopfloor serve``: resolve a model version through the registry and run the predictor.

Mounted by ``shopfloor.cli`` (``app.command("serve")(serve)``). The registry is imported
lazily so ``shopfloor --help`` stays fast and serving a local ``--model-dir`` needs no registry.
"""

from __future__ import annotations

import contextlib
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated

import typer

from shopfloor.serving.codec import DEFAULT_MAX_BATCH
from shopfloor.serving.server import DEFAULT_HOST

FORMAT_CHOICES = ("int8", "float32", "saved_model")


@contextlib.contextmanager
def resolved_model(
    version: str | None,
    registry: str | None,
    model_dir: Path | None,
    env: str = "cloud",
) -> Iterator[tuple[Path, str, str]]:
    """Yield ``(version directory, model name, version)``; a fetched copy lives only while open.

    ``model_dir`` bypasses the registry. Otherwise ``version`` (default: the registry's newest
    for ``env``: champion, else latest) is fetched into a temporary directory with every file's
    checksum verified, so what is served is exactly what was published.
    """
    if model_dir is not None:
        if version is not None:
            raise ValueError("give either a registry VERSION or --model-dir, not both")
        yield Path(model_dir), "ai4i-failure", Path(model_dir).name
        return
    from shopfloor.registry import open_registry

    reg = open_registry(registry)
    chosen = version or reg.newest(env=env)
    if chosen is None:
        raise LookupError(f"registry {registry or '(default)'} holds no version of {reg.model} to serve")
    with tempfile.TemporaryDirectory(prefix="shopfloor-serve-") as tmp:
        yield reg.fetch(chosen, Path(tmp) / chosen), reg.model, chosen


def serve(
    version: Annotated[
        str | None,
        typer.Argument(
            help="registry version, e.g. v0003 (default: newest for the cloud: champion, else latest)"
        ),
    ] = None,
    http_port: Annotated[int, typer.Option("--http-port", help="REST port")] = 8080,
    grpc_port: Annotated[int, typer.Option("--grpc-port", help="gRPC port (0 disables gRPC)")] = 8081,
    registry: Annotated[
        str | None,
        typer.Option(
            "--registry",
            help="s3://bucket/prefix or a path (default: $SHOPFLOOR_REGISTRY or ~/.shopfloor)",
        ),
    ] = None,
    format: Annotated[str, typer.Option("--format", help=f"one of {', '.join(FORMAT_CHOICES)}")] = "int8",
    host: Annotated[str, typer.Option("--host", help="bind address (loopback by default)")] = DEFAULT_HOST,
    model_dir: Annotated[
        Path | None,
        typer.Option("--model-dir", help="serve a local model version directory (bypasses the registry)"),
    ] = None,
    model_name: Annotated[
        str | None, typer.Option("--model-name", help="endpoint name (default: the registry's model name)")
    ] = None,
    max_batch: Annotated[int, typer.Option("--max-batch", help="max rows per request")] = DEFAULT_MAX_BATCH,
) -> None:
    """Serve a registered model over KServe V1 / Open Inference Protocol REST and gRPC."""
    from shopfloor.serving.model import FailureModel, ModelLoadError
    from shopfloor.serving.server import PredictorServer

    if format not in FORMAT_CHOICES:
        raise typer.BadParameter(f"--format must be one of {', '.join(FORMAT_CHOICES)}, got {format!r}")
    try:
        with resolved_model(version, registry, model_dir) as (directory, name, chosen):
            model = FailureModel(model_name or name, directory, fmt=format, max_batch=max_batch)
            model.load()
            typer.echo(
                f"serving {model.name} {model.version or chosen} ({format}) on http://{host}:{http_port}"
                + (f" and grpc {host}:{grpc_port}" if grpc_port else ""),
                err=True,
            )
            PredictorServer([model], host=host, http_port=http_port, grpc_port=grpc_port or None).run()
    except (LookupError, ValueError, OSError, ModelLoadError) as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from exc
