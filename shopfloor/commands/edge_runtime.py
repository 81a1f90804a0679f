"""`shopfloor edge serve`: the LiteRT-only runtime (owner: runtime).

Mounted by :mod:`shopfloor.commands.edge`. Wiring only, and import-light: the command checks
its options, then replaces its process with the lean runtime (:mod:`shopfloor.edge.__main__`,
same pid), which loads only what serving needs (no TensorFlow, kserve or pandas, and no CLI
libraries: a test checks the running process).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Annotated

import typer

from shopfloor import settings
from shopfloor.errors import InvalidInputError, NotFoundError

app = typer.Typer(no_args_is_help=True, add_completion=False)

LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")


@app.command("serve")
def serve(
    store: Annotated[Path, typer.Option("--store", help="model store directory (created if missing)")],
    host: Annotated[str, typer.Option("--host", help="address to listen on (loopback unless told)")] = (
        settings.DEFAULT_HOST
    ),
    port: Annotated[int, typer.Option("--port", help="HTTP port")] = settings.EDGE_PORT,
    model_name: Annotated[str, typer.Option("--model-name", help="model name in V2 paths")] = (
        settings.DEFAULT_MODEL_NAME
    ),
    profile: Annotated[
        str | None,
        typer.Option(
            "--profile",
            help="device profile (name or YAML file): preferred LiteRT format (a version without it "
            "runs its own, e.g. a tree ensemble's float32) and latency budget",
        ),
    ] = None,
    admin_token_file: Annotated[
        Path | None,
        typer.Option(
            "--admin-token-file", help="enable the admin API, authenticated by the bearer token in this file"
        ),
    ] = None,
    trust: Annotated[
        Path | None,
        typer.Option(
            "--trust",
            help="trust file of signing keys (default: the development trust file, made on first use)",
        ),
    ] = None,
    pull: Annotated[
        str | None,
        typer.Option(
            "--pull", help="registry (s3://bucket/prefix or a path) to fetch the version from at start"
        ),
    ] = None,
    version: Annotated[
        str | None,
        typer.Option("--version", help="version to --pull (default: the edge champion, else the newest)"),
    ] = None,
    keep: Annotated[
        int, typer.Option("--keep", help="versions the store keeps")
    ] = settings.EDGE_KEEP_VERSIONS,
    max_batch: Annotated[int, typer.Option("--max-batch", help="rows per request")] = settings.MAX_BATCH,
    max_body_bytes: Annotated[int, typer.Option("--max-body-bytes", help="bytes per request body")] = (
        settings.MAX_BODY_BYTES
    ),
    max_connections: Annotated[int, typer.Option("--max-connections", help="open connections")] = (
        settings.MAX_CONNECTIONS
    ),
    read_timeout: Annotated[float, typer.Option("--read-timeout", help="seconds to receive a request")] = (
        settings.READ_TIMEOUT_SECONDS
    ),
    idle_timeout: Annotated[
        float, typer.Option("--idle-timeout", help="seconds an idle connection lives")
    ] = (settings.IDLE_TIMEOUT_SECONDS),
    log_level: Annotated[str, typer.Option("--log-level", help="DEBUG, INFO, WARNING or ERROR")] = "INFO",
) -> None:
    """Serve the store's active LiteRT version over V2 REST (JSON + binary), /metrics and,
    when enabled, the admin API. No V1, no gRPC."""
    level = log_level.upper()
    if level not in LOG_LEVELS:
        raise InvalidInputError(f"--log-level must be one of {', '.join(LOG_LEVELS)}, got {log_level!r}")
    if version is not None and pull is None:
        raise InvalidInputError("--version needs --pull REGISTRY")
    for name, value, low in (
        ("--port", port, 0),
        ("--keep", keep, 1),
        ("--max-batch", max_batch, 1),
        ("--max-body-bytes", max_body_bytes, 1024),
        ("--max-connections", max_connections, 1),
    ):
        if value < low or (name == "--port" and value > 65535):
            raise InvalidInputError(f"{name} out of range: {value}")
    if not (read_timeout > 0 and idle_timeout > 0):
        raise InvalidInputError("--read-timeout and --idle-timeout must be positive")
    from shopfloor.edge.__main__ import RuntimeConfig

    if admin_token_file is not None:
        from shopfloor.edge.client import read_token

        read_token(admin_token_file)  # a missing or weak token file is refused here, in one line
    if profile is not None:
        from shopfloor.edge.profiles import load_profile

        load_profile(profile)
    if trust is None:
        from shopfloor.edge.signing import ensure_dev_keypair

        trust = ensure_dev_keypair()[1]
    elif not trust.is_file():
        raise NotFoundError(f"trust file not found: {trust}")
    config = RuntimeConfig(
        store=str(store.resolve()),
        trust=str(trust.resolve()),
        host=host,
        port=port,
        model_name=model_name,
        profile=profile,
        admin_token_file=str(admin_token_file.resolve()) if admin_token_file else None,
        pull=pull,
        version=version,
        keep=keep,
        max_batch=max_batch,
        max_body_bytes=max_body_bytes,
        max_connections=max_connections,
        read_timeout=read_timeout,
        idle_timeout=idle_timeout,
        log_level=level,
    )
    # Same process, lean image: the serving process carries no CLI libraries (see shopfloor.edge.__main__).
    sys.stdout.flush()
    sys.stderr.flush()
    os.execv(sys.executable, [sys.executable, "-m", "shopfloor.edge", config.to_json()])
