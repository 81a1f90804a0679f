"""The edge runtime process: what ``shopfloor edge serve`` becomes once its options are checked.

The command parses and checks its options with the CLI (typer, click, rich, pydantic), then
replaces its own process image (``os.execv``, same pid) with ``python -m shopfloor.edge
CONFIG``: the serving process then holds only what serving needs (no CLI libraries, about
18 MiB less on a device), and whoever started the command still owns the process. CONFIG is
the JSON of :class:`RuntimeConfig` (paths and numbers, never a secret: the admin token stays
in its file). Not a user interface: errors are still one line and a category exit code.
"""

from __future__ import annotations

import json
import logging
import sys
import tempfile
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

from shopfloor import settings
from shopfloor.errors import InvalidInputError, NotFoundError, ShopfloorError, bounded

log = logging.getLogger("shopfloor.edge")


@dataclass(frozen=True)
class RuntimeConfig:
    """Everything ``shopfloor edge serve`` was told, checked."""

    store: str
    trust: str
    host: str = settings.DEFAULT_HOST
    port: int = settings.EDGE_PORT
    model_name: str = settings.DEFAULT_MODEL_NAME
    profile: str | None = None
    admin_token_file: str | None = None
    pull: str | None = None
    version: str | None = None
    keep: int = settings.EDGE_KEEP_VERSIONS
    max_batch: int = settings.MAX_BATCH
    max_body_bytes: int = settings.MAX_BODY_BYTES
    max_connections: int = settings.MAX_CONNECTIONS
    read_timeout: float = settings.READ_TIMEOUT_SECONDS
    idle_timeout: float = settings.IDLE_TIMEOUT_SECONDS
    log_level: str = "INFO"

    def to_json(self) -> str:
        return json.dumps(asdict(self), separators=(",", ":"))

    @classmethod
    def from_json(cls, text: str) -> RuntimeConfig:
        try:
            data = json.loads(text)
        except ValueError as exc:
            raise InvalidInputError(f"runtime configuration is not JSON: {exc}") from None
        known = {f.name for f in fields(cls)}
        if not isinstance(data, dict) or set(data) - known or not {"store", "trust"} <= set(data):
            raise InvalidInputError(
                "runtime configuration must be the JSON written by `shopfloor edge serve`"
            )
        return cls(**data)


def pull_version(store: Any, registry: str, version: str | None) -> str:
    """Fetch ``version`` (default: the edge champion, else the newest) and its signatures from
    ``registry``, install it through the store (which verifies it) and activate it."""
    from shopfloor.registry import open_registry

    reg = open_registry(registry)
    chosen = version or reg.champion_or_newest(settings.EDGE_ENV)
    if chosen is None:
        raise NotFoundError(f"registry {registry} holds no version of {reg.model} to pull")
    if chosen in store.installed():
        log.info("version %s is already installed", chosen)
    else:
        signatures = reg.signatures(chosen)
        with tempfile.TemporaryDirectory(prefix="shopfloor-edge-pull-") as tmp:
            store.install(reg.fetch(chosen, Path(tmp) / chosen), signatures)
    if store.active() != chosen:
        store.activate(chosen)
    return chosen


def run(config: RuntimeConfig) -> None:
    """Recover the store, pull if told, load the active version, serve until stopped."""
    logging.basicConfig(level=config.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    from shopfloor.edge.client import read_token
    from shopfloor.edge.server import EdgeRuntime, EdgeServer
    from shopfloor.edge.signing import TrustStore
    from shopfloor.edge.store import ModelStore
    from shopfloor.serving.http import Limits

    token = read_token(Path(config.admin_token_file)) if config.admin_token_file else None
    device = None
    if config.profile is not None:
        from shopfloor.edge.profiles import load_profile

        device = load_profile(config.profile)
    store = ModelStore(
        Path(config.store), trust=TrustStore.load(Path(config.trust)), profile=device, keep=config.keep
    )
    store.recover()
    if config.pull is not None:
        pull_version(store, config.pull, config.version)
    runtime = EdgeRuntime(
        store,
        config.model_name,
        preferred_format=store.preferred_format,
        admin_token=token,
        profile_name=device.name if device is not None else None,
        max_batch=config.max_batch,
    )
    runtime.load_active()
    limits = Limits(
        max_body_bytes=config.max_body_bytes,
        max_connections=config.max_connections,
        read_timeout=config.read_timeout,
        idle_timeout=config.idle_timeout,
    )
    EdgeServer(runtime, config.host, config.port, limits).run(
        announce=lambda text: print(text, file=sys.stderr, flush=True)
    )


def main(argv: list[str] | None = None) -> None:
    args = sys.argv[1:] if argv is None else argv
    try:
        if len(args) != 1:
            raise InvalidInputError(
                "usage: shopfloor edge serve --store DIR ... (this module is its process)"
            )
        run(RuntimeConfig.from_json(args[0]))
    except ShopfloorError as exc:
        print(f"error: {bounded(str(exc))}", file=sys.stderr, flush=True)
        raise SystemExit(exc.exit_code) from None


if __name__ == "__main__":
    main()
