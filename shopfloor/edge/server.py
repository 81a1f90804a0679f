"""The edge runtime's HTTP server: V2 REST (JSON + binary extension), ``/metrics``, admin API.

Why a raw ASGI application on uvicorn (httptools, uvloop) and no web framework: on a factory
box the HTTP stack, not the model, is the cost of a request, and every megabyte counts; the
benchmark (``benchmarks/bench_edge.py``) measures this stack against KServe's. What the
cloud predictor already has and does not depend on a framework is reused, not copied: the
V2 codec and :class:`~shopfloor.inference.Predictor` (one implementation of readings ->
features -> probability -> decision), the :class:`~shopfloor.inference.RefusalLog`, the
body/header/connection/timeout limits of :mod:`shopfloor.serving.http` and the Prometheus
metrics of :mod:`shopfloor.serving.metrics` (neither imports kserve or FastAPI).

Hot swap: the version being served is one :class:`Served` object behind one attribute. A new
version is installed by the store (verified, signature checked, self-tested, latency checked),
then loaded into a complete new :class:`Served` off the event loop; only then is the
attribute replaced. A request reads the attribute once and finishes on what it read, so
every answer comes from exactly one version and none fails during a swap.

Admin API (``/admin/v1/...``): off unless a token is configured (404, as if absent); then a
bearer token compared in constant time (401 otherwise), checked before any body is read.
No V1 and no gRPC here.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import hmac
import io
import logging
import os
import signal
import socket
import sys
import tempfile
import threading
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass, is_dataclass
from http import HTTPStatus
from pathlib import Path
from time import perf_counter
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs

import orjson
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, Counter, generate_latest

from shopfloor import __version__, contract, settings
from shopfloor.contract import SignatureDoc
from shopfloor.errors import (
    ConflictError,
    GateFailedError,
    IntegrityError,
    InvalidInputError,
    NotFoundError,
    ShopfloorError,
    bounded,
    excerpt,
)
from shopfloor.inference import codec
from shopfloor.inference.predictor import Predictor
from shopfloor.serving.http import BodyLimit, Limits, guarded_server, listen
from shopfloor.serving.metrics import ModelMetrics, serving_metrics

if TYPE_CHECKING:
    from shopfloor.edge.store import ModelStore

log = logging.getLogger(__name__)

#: Extensions of the Open Inference Protocol this server implements.
EXTENSIONS = ["binary_tensor_data"]
SERVER_NAME = "shopfloor-edge"
ADMIN_PREFIX = "/admin/v1/"
UPLOAD_PATH = "/admin/v1/versions"
#: Members of one uploaded version archive (files of a version plus its signatures).
MAX_ARCHIVE_MEMBERS = 1000
#: Seconds after start at which the start-up heap is collected and frozen (see EdgeServer.serve).
FREEZE_AFTER_SECONDS = 1.0
#: Packages whose presence in the runtime process would mean it imports what the edge lacks.
HEAVY_PACKAGES = ("tensorflow", "kserve", "pandas", "fastapi", "keras", "kfp", "grpc")

Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]

_JSON_TYPE = (b"content-type", b"application/json")
_JSON = [_JSON_TYPE]
_HEADER_LENGTH = codec.HEADER_LENGTH.encode()


class Unauthorized(InvalidInputError):
    """No or a wrong bearer token on the admin API."""


class MethodNotAllowed(InvalidInputError):
    """A known path asked with a method it does not answer."""


def _status_of(exc: ShopfloorError, admin: bool) -> int:
    if isinstance(exc, Unauthorized):
        return 401
    if isinstance(exc, MethodNotAllowed):
        return 405
    if admin and isinstance(exc, IntegrityError | GateFailedError):
        return 422  # a refused version is the sender's problem, not a server fault
    return int(exc.http_status)


def _kind(exc: ShopfloorError) -> str:
    for category, name in (
        (IntegrityError, "integrity"),
        (GateFailedError, "gate_failed"),
        (NotFoundError, "not_found"),
        (ConflictError, "conflict"),
        (InvalidInputError, "invalid_input"),
    ):
        if isinstance(exc, category):
            return name
    return "error"


def loaded_packages() -> list[str]:
    """Top-level packages imported in this process (what the module-check test reads)."""
    return sorted({name.partition(".")[0] for name in list(sys.modules) if not name.startswith("_")})


@dataclass(frozen=True)
class Served:
    """One loaded version: the predictor, its metrics and the precomputed metadata answer."""

    predictor: Predictor
    metrics: ModelMetrics
    version: str
    metadata: bytes


def _plain(value: Any) -> Any:
    """A store report (dataclass, object with to_dict, or plain) -> JSON-able data."""
    if hasattr(value, "to_dict"):
        return value.to_dict()
    if is_dataclass(value) and not isinstance(value, type):
        return asdict(value)
    return value


class EdgeRuntime:
    """The served version and the admin operations on the store (see module docstring).

    The runtime never verifies a version itself: it asks the ``store`` and serves what the
    store made active.
    """

    def __init__(
        self,
        store: ModelStore,
        model_name: str = settings.DEFAULT_MODEL_NAME,
        *,
        preferred_format: str | None = None,
        admin_token: bytes | None = None,
        profile_name: str | None = None,
        max_batch: int = settings.MAX_BATCH,
        decision_datatype: str = "BOOL",
    ) -> None:
        self.store = store
        self.model_name = model_name
        #: The device's preferred LiteRT format; each version loads choose_format(its formats, this).
        self.preferred_format = preferred_format
        self.admin_token = admin_token
        self.profile_name = profile_name
        self.max_batch = max_batch
        self.decision_datatype = decision_datatype
        self.served: Served | None = None
        self.last_error: str | None = None
        self.metrics = serving_metrics()
        self.refusals = self.metrics.refusals
        self.activations = _activation_counter()
        self._admin_lock = threading.Lock()

    # -- loading and swapping -------------------------------------------------------------------
    def _version_dir(self, version: str) -> Path:
        return Path(self.store.version_dir(version))

    def build(self, version_dir: Path) -> Served:
        """A complete, ready :class:`Served` for a version directory (blocking: LiteRT load): the
        LiteRT file the version runs here, the preferred format when it has it (an MLP's int8)
        else its own (a tree ensemble's float32), so a swap may change the format served."""
        predictor = Predictor.load(version_dir, prefer=self.preferred_format, max_batch=self.max_batch)
        metadata = orjson.dumps(
            {
                "name": self.model_name,
                "versions": [predictor.version],
                "platform": predictor.platform,
                "inputs": codec.input_metadata(),
                "outputs": codec.output_metadata(self.decision_datatype),
            }
        )
        bound = self.metrics.bind(
            self.model_name, predictor.version, predictor.data_version, predictor.fmt, predictor.platform
        )
        return Served(predictor, bound, predictor.version, metadata)

    def swap(self, served: Served) -> None:
        """Serve ``served`` from the next request on: one reference replaced."""
        old, self.served = self.served, served
        if old is not None and old.version != served.version:
            with contextlib.suppress(KeyError):
                self.metrics.model_info.remove(
                    self.model_name,
                    old.version,
                    old.predictor.data_version,
                    old.predictor.fmt,
                    old.predictor.platform,
                )
        log.info("serving %s %s (%s)", self.model_name, served.version, served.predictor.fmt)

    def load_active(self) -> str | None:
        """Load the store's active version (at start-up); None when the store has none."""
        version = self.store.active()
        if version is None:
            log.warning("no active version in the store: not ready until one is pushed")
            return None
        self.swap(self.build(self.store.version_dir(version)))
        return str(version)

    def _refused_version(self, what: str, exc: ShopfloorError) -> None:
        self.last_error = bounded(f"{what}: {exc}")
        self.activations.labels("refused").inc()
        log.error(
            "%s refused; still serving %s: %s",
            what,
            self.served.version if self.served else "nothing",
            bounded(str(exc)),
        )

    def _activate_blocking(self, version: str) -> Served:
        """Load ``version`` fully, then mark it active in the store; the caller swaps."""
        served = self.build(self._version_dir(version))
        self.store.activate(version)
        return served

    def _exclusive(self) -> None:
        if not self._admin_lock.acquire(blocking=False):
            raise ConflictError("another admin operation is in progress; try again")

    def install(self, archive: bytes, activate: bool) -> dict[str, Any]:
        """Admin upload (blocking; run off the loop): unpack, install through the store, activate."""
        self._exclusive()
        try:
            with tempfile.TemporaryDirectory(prefix="shopfloor-edge-upload-") as tmp:
                try:
                    version_dir, signatures = unpack_version(archive, Path(tmp))
                    report = self.store.install(version_dir, signatures)
                    version = getattr(report, "version", None) or version_dir.name
                    result: dict[str, Any] = {
                        "installed": version,
                        "report": _plain(report),
                        "activated": False,
                    }
                    if activate:
                        self.swap(self._activate_blocking(version))
                        self.activations.labels("activated").inc()
                        result["activated"] = True
                except ShopfloorError as exc:
                    self._refused_version("version upload", exc)
                    raise
            self.last_error = None
            result["active"] = self.served.version if self.served else None
            return result
        finally:
            self._admin_lock.release()

    def activate(self, version: Any) -> dict[str, Any]:
        if not isinstance(version, str) or not version:
            raise InvalidInputError(f'activate needs {{"version": "vNNNN"}}, got {excerpt(version, 40)}')
        self._exclusive()
        try:
            if version not in self.store.installed():
                raise NotFoundError(
                    f"version {excerpt(version, 40)} is not installed here; "
                    f"installed: {list(self.store.installed())}"
                )
            try:
                self.swap(self._activate_blocking(version))
            except ShopfloorError as exc:
                self._refused_version(f"activating {version}", exc)
                raise
            self.activations.labels("activated").inc()
            self.last_error = None
            return {"active": version}
        finally:
            self._admin_lock.release()

    def rollback(self) -> dict[str, Any]:
        self._exclusive()
        try:
            before = self.served.version if self.served else None
            try:
                history = self.store.history()
                if len(history) < 2:
                    raise ConflictError(f"nothing to roll back to: activation history {history}")
                served = self.build(self.store.version_dir(history[-2]))  # loaded before anything moves
                change = self.store.rollback()
                active = change.active
                if active != served.version:
                    served = self.build(self.store.version_dir(str(active)))
                self.swap(served)
            except ShopfloorError as exc:
                self._refused_version("rollback", exc)
                raise
            self.activations.labels("rolled_back").inc()
            self.last_error = None
            return {"previous": before, "active": active, "change": _plain(change)}
        finally:
            self._admin_lock.release()

    def status(self) -> dict[str, Any]:
        """The runtime's view (what it serves, its pid) over the store's (installed, history, events)."""
        store = self.store.status()
        return {
            **store,
            "model": self.model_name,
            "active": self.served.version if self.served else None,
            "format": self.served.predictor.fmt if self.served else None,
            "store_active": store.get("active"),
            "last_error": self.last_error or store.get("last_error"),
            "profile": self.profile_name,
            "pid": os.getpid(),
        }


_counter: Counter | None = None


def _activation_counter() -> Counter:
    """``shopfloor_edge_activations_total{outcome}``: activated, refused, rolled_back (one per process)."""
    global _counter
    if _counter is None:
        _counter = Counter(
            "shopfloor_edge_activations",
            "Version activations on this edge runtime, by outcome.",
            ["outcome"],
            registry=REGISTRY,
        )
        for outcome in ("activated", "refused", "rolled_back"):
            _counter.labels(outcome)
    return _counter


# -- version archives ----------------------------------------------------------------------------
SIGNATURES_DIR = contract.SIGNATURES_DIR


def unpack_version(archive: bytes, dest: Path) -> tuple[Path, list[SignatureDoc]]:
    """An uploaded archive -> (version directory, signature documents), refusing anything odd.

    Plain tar only (no compression: the body limit then bounds what is written), regular files
    and directories only, relative paths inside ``dest`` (tarfile's ``data`` filter), one
    version directory plus ``signatures/``.
    """
    import tarfile  # admin uploads only: kept off the start-up path

    try:
        tar = tarfile.open(fileobj=io.BytesIO(archive), mode="r:")  # noqa: SIM115 (closed below)
    except tarfile.TarError as exc:
        raise InvalidInputError(f"version upload is not an uncompressed tar archive: {exc}") from None
    with tar:
        try:
            members = tar.getmembers()
        except tarfile.TarError as exc:
            raise InvalidInputError(f"version upload: truncated or corrupt tar archive: {exc}") from None
        if len(members) > MAX_ARCHIVE_MEMBERS:
            raise InvalidInputError(
                f"version upload has {len(members)} entries, at most {MAX_ARCHIVE_MEMBERS}"
            )
        tops = set()
        for member in members:
            if not (member.isfile() or member.isdir()):
                raise InvalidInputError(f"version upload: {excerpt(member.name, 80)} is not a regular file")
            tops.add(member.name.split("/", 1)[0])
        versions = sorted(tops - {SIGNATURES_DIR})
        if len(versions) != 1:
            raise InvalidInputError(
                f"version upload must hold one version directory and {SIGNATURES_DIR}/, "
                f"got {[excerpt(v, 30) for v in versions][:5]}"
            )
        try:
            tar.extractall(dest, filter="data")
        except (tarfile.TarError, OSError) as exc:
            raise InvalidInputError(
                f"version upload could not be unpacked: {bounded(str(exc), 160)}"
            ) from None
    from shopfloor.edge.signing import read_signature_dir

    return dest / versions[0], read_signature_dir(dest / SIGNATURES_DIR)


# -- the ASGI application -------------------------------------------------------------------------
async def _respond(
    send: Send, status: int, body: bytes, headers: list[tuple[bytes, bytes]] | None = None
) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                *(headers if headers is not None else _JSON),
                (b"content-length", str(len(body)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


async def _body(receive: Receive) -> bytes:
    chunks = []
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise ConnectionResetError("client went away")
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            return b"".join(chunks)


def _header(scope: Scope, name: bytes) -> bytes | None:
    for key, value in scope["headers"]:
        if key == name:
            return bytes(value)
    return None


class EdgeApp:
    """The raw ASGI application over an :class:`EdgeRuntime`."""

    def __init__(
        self,
        runtime: EdgeRuntime,
        limits: Limits | None = None,
        max_upload_bytes: int = settings.EDGE_MAX_UPLOAD_BYTES,
    ) -> None:
        self.runtime = runtime
        self.limits = limits or Limits()
        self.model_name = runtime.model_name
        on_refused = self._on_limit
        self._data = BodyLimit(self._data_plane, self.limits.max_body_bytes, on_refused=on_refused)
        self._upload = BodyLimit(self._admin, max_upload_bytes, on_refused=on_refused)
        self._admin_small = BodyLimit(self._admin, 64 * 1024, on_refused=on_refused)
        self._server_metadata = orjson.dumps(
            {"name": SERVER_NAME, "version": __version__, "extensions": EXTENSIONS}
        )
        self._models = orjson.dumps({"models": [self.model_name]})
        self._model_prefix = "/v2/models/"
        self._infer_path = f"{self._model_prefix}{self.model_name}/infer"

    def _on_limit(self, status: int, message: str) -> None:
        self.runtime.refusals.refused("rest", status, message)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        path: str = scope["path"]
        if path.startswith(ADMIN_PREFIX):
            await self._admin_gate(scope, receive, send)
        else:
            await self._data(scope, receive, send)

    async def _fail(self, send: Send, scope: Scope, exc: ShopfloorError, admin: bool = False) -> None:
        status = _status_of(exc, admin)
        message = bounded(str(exc) or HTTPStatus(status).phrase)
        self.runtime.refusals.refused(
            "rest", status, f"{scope['method']} {bounded(scope['path'], 80)}: {message}"
        )
        document: dict[str, Any] = {"error": message}
        headers = list(_JSON)
        if admin:
            document["kind"] = _kind(exc)
        if status == 401:
            headers.append((b"www-authenticate", b"Bearer"))
        await _respond(send, status, orjson.dumps(document), headers)

    async def _internal(self, send: Send, scope: Scope, exc: BaseException) -> None:
        log.error("internal error serving %s %s", scope["method"], bounded(scope["path"], 80), exc_info=exc)
        await _respond(send, 500, orjson.dumps({"error": "internal server error"}))

    # -- V2 data plane -----------------------------------------------------------------------
    async def _data_plane(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await self._route(scope, receive, send)
        except ShopfloorError as exc:
            await self._fail(send, scope, exc)
        except ConnectionResetError:
            return
        except Exception as exc:  # a bug: log it, answer 500
            await self._internal(send, scope, exc)

    async def _route(self, scope: Scope, receive: Receive, send: Send) -> None:
        path: str = scope["path"]
        method: str = scope["method"]
        if path == self._infer_path and method == "POST":  # the hot route, as _model_route would
            served = self.runtime.served
            if served is not None:
                await self._infer(served, scope, receive, send)
                return
        if path.startswith(self._model_prefix):
            await self._model_route(path[len(self._model_prefix) :], method, scope, receive, send)
            return
        answer = self._fixed(path)
        if answer is None:
            raise NotFoundError(f"no route {excerpt(path, 80)}")
        if method not in ("GET", "HEAD"):
            raise MethodNotAllowed(f"{excerpt(method, 10)} is not allowed on {path}")
        status, body, headers = answer()
        await _respond(send, status, body, headers)

    def _fixed(self, path: str) -> Callable[[], tuple[int, bytes, list[tuple[bytes, bytes]]]] | None:
        if path == "/v2/health/live":
            return lambda: (200, b'{"live":true}', _JSON)
        if path == "/v2/health/ready":
            return lambda: (
                (200, b'{"ready":true}', _JSON) if self.runtime.served else (503, b'{"ready":false}', _JSON)
            )
        if path == "/v2":
            return lambda: (200, self._server_metadata, _JSON)
        if path == "/v2/models":
            return lambda: (200, self._models, _JSON)
        if path == "/metrics":
            return lambda: (200, generate_latest(REGISTRY), [(b"content-type", CONTENT_TYPE_LATEST.encode())])
        return None

    def _served(self, name: str, version: str | None) -> Served:
        if name != self.model_name:
            raise NotFoundError(f"model {excerpt(name, 80)} not found; this runtime serves {self.model_name}")
        served = self.runtime.served
        if served is None:
            raise NotReady(f"model {self.model_name} has no active version yet")
        if version is not None and version != served.version:
            raise NotFoundError(
                f"model {self.model_name} has no version {excerpt(version, 40)} here; "
                f"this runtime serves {[served.version]}"
            )
        return served

    async def _model_route(self, rest: str, method: str, scope: Scope, receive: Receive, send: Send) -> None:
        parts = rest.split("/")
        version = None
        if len(parts) >= 3 and parts[1] == "versions":
            version, tail = parts[2], parts[3:]
        else:
            tail = parts[1:]
        action = tail[0] if len(tail) == 1 else ("" if not tail else None)
        if action not in ("", "ready", "infer"):
            raise NotFoundError(f"no route {excerpt(scope['path'], 80)}")
        if action == "infer":
            if method != "POST":
                raise MethodNotAllowed(f"{excerpt(method, 10)} is not allowed on an infer route; use POST")
        elif method not in ("GET", "HEAD"):
            raise MethodNotAllowed(f"{excerpt(method, 10)} is not allowed on {excerpt(scope['path'], 80)}")
        served = self._served(parts[0], version)
        if action == "":
            await _respond(send, 200, served.metadata)
        elif action == "ready":
            await _respond(send, 200, orjson.dumps({"name": self.model_name, "ready": True}))
        else:
            await self._infer(served, scope, receive, send)

    async def _infer(self, served: Served, scope: Scope, receive: Receive, send: Send) -> None:
        body = await _body(receive)
        started = perf_counter()
        try:
            answer, json_length, prediction = served.predictor.answer_v2_body(
                body, _header(scope, _HEADER_LENGTH), self.model_name, self.runtime.decision_datatype
            )
        except InvalidInputError:
            served.metrics.reject("v2-rest")
            raise
        served.metrics.record("v2-rest", prediction.columns, prediction.predicted, perf_counter() - started)
        if json_length is None:
            await send({"type": "http.response.start", "status": 200,
                        "headers": [_JSON_TYPE, (b"content-length", b"%d" % len(answer))]})
            await send({"type": "http.response.body", "body": answer})
        else:
            await _respond(
                send,
                200,
                answer,
                [
                    (b"content-type", b"application/octet-stream"),
                    (_HEADER_LENGTH, str(json_length).encode()),
                ],
            )

    # -- admin -------------------------------------------------------------------------------
    async def _admin_gate(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Off -> 404; no or wrong token -> 401, before a byte of the body is read."""
        try:
            token = self.runtime.admin_token
            if token is None:
                raise NotFoundError("the admin API is not enabled on this runtime")
            given = _header(scope, b"authorization") or b""
            scheme, _, value = given.partition(b" ")
            if scheme.lower() != b"bearer" or not hmac.compare_digest(value.strip(), token):
                raise Unauthorized("admin API: missing or wrong bearer token")
        except ShopfloorError as exc:
            await self._fail(send, scope, exc, admin=True)
            return
        if scope["path"] == UPLOAD_PATH:
            await self._upload(scope, receive, send)
        else:
            await self._admin_small(scope, receive, send)

    async def _admin(self, scope: Scope, receive: Receive, send: Send) -> None:
        runtime = self.runtime
        path, method = scope["path"], scope["method"]
        try:
            routes: dict[str, tuple[str, Callable[[bytes], dict[str, Any]]]] = {
                UPLOAD_PATH: ("POST", lambda body: runtime.install(body, _activate_flag(scope))),
                "/admin/v1/activate": (
                    "POST",
                    lambda body: runtime.activate(_json_object(body).get("version")),
                ),
                "/admin/v1/rollback": ("POST", lambda body: runtime.rollback()),
                "/admin/v1/status": ("GET", lambda body: runtime.status()),
            }
            if path not in routes:
                raise NotFoundError(f"no admin route {excerpt(path, 80)}")
            allowed, operation = routes[path]
            if method != allowed:
                raise MethodNotAllowed(f"{excerpt(method, 10)} is not allowed on {path}; use {allowed}")
            body = await _body(receive)
            # Installing self-tests and measures latency: off the event loop, so serving goes on.
            result = await asyncio.to_thread(operation, body)
            await _respond(send, 200, orjson.dumps(result, default=str))
        except ShopfloorError as exc:
            await self._fail(send, scope, exc, admin=True)
        except ConnectionResetError:
            return
        except Exception as exc:
            await self._internal(send, scope, exc)


class NotReady(ConflictError):
    """The runtime has no active version yet."""

    http_status = HTTPStatus.SERVICE_UNAVAILABLE


def _activate_flag(scope: Scope) -> bool:
    query = parse_qs(bytes(scope.get("query_string", b"")).decode("latin-1"))
    value = (query.get("activate") or ["false"])[-1].lower()
    if value not in ("true", "false", "1", "0"):
        raise InvalidInputError(f"activate must be true or false, got {excerpt(value, 20)}")
    return value in ("true", "1")


def _json_object(body: bytes) -> dict[str, Any]:
    try:
        document = orjson.loads(body or b"{}")
    except orjson.JSONDecodeError:
        raise InvalidInputError("admin request body must be a JSON object") from None
    if not isinstance(document, dict):
        raise InvalidInputError("admin request body must be a JSON object")
    return document


# -- serving -------------------------------------------------------------------------------------


class EdgeServer:
    """uvicorn (httptools, uvloop) running :class:`EdgeApp` with the limits of ``limits``."""

    def __init__(
        self,
        runtime: EdgeRuntime,
        host: str = settings.DEFAULT_HOST,
        port: int = settings.EDGE_PORT,
        limits: Limits | None = None,
        grace_period: float = 5.0,
    ) -> None:
        self.runtime = runtime
        self.host = host
        self.port = port
        self.limits = limits or Limits()
        self.app = EdgeApp(runtime, self.limits)
        on_refused = lambda status, message: runtime.refusals.refused("rest", status, message)  # noqa: E731
        self._uvicorn = guarded_server(
            self.app, host, port, self.limits, on_refused, grace_period=grace_period,
            access_log=False, lifespan="off", loop="none",
            proxy_headers=False,  # the app reads no client address or scheme: one layer less
        )

    async def serve(self, sock: socket.socket) -> None:
        # What is loaded now lives as long as the process: frozen, it keeps full collections
        # short. Collected and frozen just after start, not before: off the way to ready.
        asyncio.get_running_loop().call_later(FREEZE_AFTER_SECONDS, _collect_and_freeze)
        try:
            await self._uvicorn.serve(sockets=[sock])
        finally:
            sock.close()

    def run(self, announce: Callable[[str], None] | None = None) -> None:
        """Bind, serve until SIGINT/SIGTERM, exit cleanly (uvicorn re-raises the signal it caught:
        a recording handler installed first absorbs it)."""
        sock = listen(self.host, self.port)
        if log.isEnabledFor(logging.DEBUG):
            log.debug("imported packages: %s", " ".join(loaded_packages()))
        heavy = [p for p in HEAVY_PACKAGES if p in sys.modules]
        if heavy:
            log.warning("the edge runtime imported %s; it should not", heavy)
        received: list[int] = []
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, lambda s, _frame: received.append(s))
        if announce is not None:
            active = self.runtime.served.version if self.runtime.served else "no version yet"
            admin = "on" if self.runtime.admin_token else "off"
            announce(
                f"edge runtime: {self.runtime.model_name} {active} on http://{self.host}:{self.port} "
                f"(admin API {admin})"
            )
        if _loop() == "uvloop":
            import uvloop

            uvloop.run(self.serve(sock))
        else:
            asyncio.run(self.serve(sock))
        log.info("edge runtime stopped%s", f" (signal {received[0]})" if received else "")


def _collect_and_freeze() -> None:
    gc.collect()
    gc.freeze()


def _loop() -> str:
    try:
        import uvloop  # noqa: F401
    except ImportError:  # pragma: no cover - uvloop has no wheels for some platforms
        return "asyncio"
    return "uvloop"
