"""REST + gRPC predictor server: kserve's data plane and endpoints, bound where we say.

Why not ``kserve.ModelServer.start()``: kserve 0.21 hard-codes the REST bind address to
``0.0.0.0`` (``RESTServer`` builds ``uvicorn.Config(host="0.0.0.0")``) and gRPC to ``[::]``.
A predictor on a developer box or an edge gateway must not listen on every interface by
default, so this module composes the same kserve building blocks with a chosen host:

* REST: a fresh FastAPI app with kserve's own V1/V2 routers (``register_v1_endpoints``,
  ``register_v2_endpoints``), its ``/`` liveness and ``/metrics`` handler, and its exception
  handlers; served by ``uvicorn.Server`` on ``host:http_port``.
* gRPC: ``grpc.aio`` server with kserve's ``InferenceServicer`` and its
  ``ExceptionToStatusInterceptor``, bound to ``host:grpc_port``.

400-not-500: kserve maps ``InvalidInput`` to 400 / INVALID_ARGUMENT and ``ModelNotFound``
to 404 / NOT_FOUND; the model raises those for every bad request. What kserve leaves to
FastAPI is a V2 body that is not valid JSON or not an inference request: FastAPI answers
422 and a non-JSON error shape, so a ``RequestValidationError`` handler turns that into
400 ``{"error": ...}`` as the Open Inference Protocol requires. V1 bodies are parsed by
kserve's data plane, which already raises ``InvalidInput`` for malformed JSON.

Kserve's per-request timing middleware and gRPC logging interceptor (a log line per call)
are left out: they cost throughput and duplicate what ``/metrics`` measures.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import signal
from collections.abc import Sequence
from concurrent import futures
from http import HTTPStatus
from typing import Any

import grpc
import uvicorn
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, ORJSONResponse
from grpc import aio
from kserve import errors
from kserve.constants.constants import MAX_GRPC_MESSAGE_LENGTH
from kserve.model import BaseKServeModel
from kserve.model_repository import ModelRepository
from kserve.protocol.dataplane import DataPlane
from kserve.protocol.grpc import grpc_predict_v2_pb2 as pb
from kserve.protocol.grpc import grpc_predict_v2_pb2_grpc
from kserve.protocol.grpc.interceptors import ExceptionToStatusInterceptor
from kserve.protocol.grpc.servicer import InferenceServicer
from kserve.protocol.model_repository_extension import ModelRepositoryExtension
from kserve.protocol.rest.server import metrics_handler
from kserve.protocol.rest.v1_endpoints import register_v1_endpoints
from kserve.protocol.rest.v2_endpoints import register_v2_endpoints

log = logging.getLogger(__name__)
DEFAULT_HOST = "127.0.0.1"


class ShopfloorDataPlane(DataPlane):
    """kserve's data plane, with model metadata that says what is served.

    kserve 0.21 returns ``platform: ""`` and no ``versions``; clients and operators need both
    (which runtime, which registry version).
    """

    async def model_metadata(self, model_name: str) -> dict[str, Any]:
        metadata: dict[str, Any] = await super().model_metadata(model_name)
        model = self.get_model_from_registry(model_name)
        metadata["platform"] = getattr(model, "platform", "") or ""
        versions = getattr(model, "versions", None)
        if versions:
            metadata["versions"] = list(versions)
        return metadata


class _Servicer(InferenceServicer):
    """kserve's gRPC servicer, passing ``versions`` through (kserve drops it)."""

    def __init__(self, data_plane: DataPlane, extension: ModelRepositoryExtension) -> None:
        super().__init__(data_plane, extension)
        self._plane = data_plane

    async def ModelMetadata(self, request: pb.ModelMetadataRequest, context: Any) -> pb.ModelMetadataResponse:
        metadata = await self._plane.model_metadata(model_name=request.name)
        return pb.ModelMetadataResponse(
            name=metadata["name"],
            versions=metadata.get("versions", []),
            platform=metadata["platform"],
            inputs=metadata["inputs"],
            outputs=metadata["outputs"],
        )

    async def RepositoryModelLoad(self, request: Any, context: Any) -> Any:
        await context.abort(grpc.StatusCode.UNIMPLEMENTED, "model load/unload is disabled on this predictor")

    async def RepositoryModelUnload(self, request: Any, context: Any) -> Any:
        await context.abort(grpc.StatusCode.UNIMPLEMENTED, "model load/unload is disabled on this predictor")


async def _request_validation_handler(request: Request, exc: Exception) -> JSONResponse:
    """FastAPI's 422 for an unparsable or malformed V2 body -> 400 with a readable message."""
    problems = []
    found = list(getattr(exc, "errors", list)())
    # The V2 body is typed Union[InferenceRequest, bytes]: the "not bytes" branch is noise.
    found = [e for e in found if tuple(e.get("loc", ()))[:2] != ("body", "bytes")] or found
    for error in found[:5]:
        loc = [str(p) for p in error.get("loc", ()) if p not in ("body", "InferenceRequest")]
        where = ".".join(loc) or "body"
        detail = error.get("msg", "invalid")
        if error.get("type") == "json_invalid":
            where, detail = "body", f"malformed JSON ({error.get('ctx', {}).get('error', 'invalid')})"
        problems.append(f"{where}: {detail}")
    message = "invalid inference request: " + ("; ".join(problems) or str(exc))
    return JSONResponse(status_code=HTTPStatus.BAD_REQUEST, content={"error": message})


class _JsonByDefault:
    """A V2 infer body without a JSON content type and without the binary-extension header is
    JSON (tritonclient sends no content type): say so, so FastAPI parses it instead of handing
    kserve raw bytes that it then refuses. Pure ASGI: a header scan, no body copy."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http" and scope["method"] == "POST" and scope["path"].endswith("/infer"):
            headers = scope["headers"]
            names = {k for k, _ in headers}
            if b"inference-header-content-length" not in names and not any(
                k == b"content-type" and v.startswith(b"application/json") for k, v in headers
            ):
                scope = dict(scope)
                scope["headers"] = [(k, v) for k, v in headers if k != b"content-type"] + [
                    (b"content-type", b"application/json")
                ]
        await self.app(scope, receive, send)


def create_app(data_plane: DataPlane, extension: ModelRepositoryExtension) -> FastAPI:
    """The REST app: kserve's endpoints and error mapping, plus the 400 for malformed bodies."""
    app = FastAPI(
        title="shopfloor predictor", docs_url=None, redoc_url=None, default_response_class=ORJSONResponse
    )
    app.add_api_route("/", data_plane.live, methods=["GET"])
    app.add_api_route("/metrics", metrics_handler, methods=["GET"])
    register_v1_endpoints(app, data_plane, extension)
    register_v2_endpoints(app, data_plane, extension)
    # A predictor serves one fixed registry version: no unauthenticated load/unload over HTTP.
    app.router.routes[:] = [r for r in app.router.routes if "/repository/" not in getattr(r, "path", "")]
    app.add_exception_handler(errors.InvalidInput, errors.invalid_input_handler)
    app.add_exception_handler(errors.InferenceError, errors.inference_error_handler)
    app.add_exception_handler(errors.ModelNotFound, errors.model_not_found_handler)
    app.add_exception_handler(errors.ModelNotReady, errors.model_not_ready_handler)
    app.add_exception_handler(NotImplementedError, errors.not_implemented_error_handler)
    app.add_exception_handler(errors.UnsupportedProtocol, errors.unsupported_protocol_error_handler)
    app.add_exception_handler(errors.ServerNotLive, errors.server_not_live_handler)
    app.add_exception_handler(errors.ServerNotReady, errors.server_not_ready_handler)
    app.add_exception_handler(RequestValidationError, _request_validation_handler)
    app.add_exception_handler(Exception, errors.generic_exception_handler)
    app.add_middleware(_JsonByDefault)
    return app


def _grpc_address(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


class PredictorServer:
    """Serve loaded kserve models over REST and (optionally) gRPC on ``host``."""

    def __init__(
        self,
        models: Sequence[BaseKServeModel],
        host: str = DEFAULT_HOST,
        http_port: int = 8080,
        grpc_port: int | None = 8081,
        grpc_workers: int = 4,
        grace_period: float = 10.0,
        access_log: bool = False,
    ) -> None:
        if not models:
            raise ValueError("no models to serve")
        self.repository = ModelRepository()
        for model in models:
            if not model.ready:
                model.load()
            self.repository.update(model)
        self.host = host
        self.http_port = http_port
        self.grpc_port = grpc_port
        self.grpc_workers = grpc_workers
        self.grace_period = grace_period
        self.data_plane = ShopfloorDataPlane(model_registry=self.repository)
        self.extension = ModelRepositoryExtension(model_registry=self.repository)
        self.app = create_app(self.data_plane, self.extension)
        self._uvicorn = uvicorn.Server(
            uvicorn.Config(
                self.app,
                host=host,
                port=http_port,
                log_config=None,
                access_log=access_log,
                timeout_graceful_shutdown=int(grace_period),
                loop="auto",
            )
        )
        self._grpc: aio.Server | None = None

    async def _start_grpc(self) -> None:
        if self.grpc_port is None:
            return
        server = aio.server(
            futures.ThreadPoolExecutor(max_workers=self.grpc_workers),
            interceptors=(ExceptionToStatusInterceptor(),),
            options=[
                ("grpc.max_send_message_length", MAX_GRPC_MESSAGE_LENGTH),
                ("grpc.max_receive_message_length", MAX_GRPC_MESSAGE_LENGTH),
            ],
        )
        grpc_predict_v2_pb2_grpc.add_GRPCInferenceServiceServicer_to_server(
            _Servicer(self.data_plane, self.extension), server
        )
        address = _grpc_address(self.host, self.grpc_port)
        if server.add_insecure_port(address) == 0:
            raise OSError(f"cannot bind gRPC to {address}")
        await server.start()
        self._grpc = server
        log.info("gRPC listening on %s", address)

    async def serve(self) -> None:
        """Run until SIGINT/SIGTERM (uvicorn's handlers) or :meth:`request_stop`."""
        await self._start_grpc()
        # Everything loaded so far (kserve, numpy, pandas, the model) lives for the whole
        # process: moving it out of the collector's generations keeps full collections short,
        # so they do not show up as latency spikes under load.
        gc.collect()
        gc.freeze()
        try:
            log.info("REST listening on http://%s:%s", self.host, self.http_port)
            await self._uvicorn.serve()
        finally:
            if self._grpc is not None:
                await self._grpc.stop(grace=self.grace_period)
            for name in list(self.repository.get_models()):
                self.repository.unload(name)

    def request_stop(self) -> None:
        """Ask a running :meth:`serve` to shut down gracefully (thread-safe enough: a flag)."""
        self._uvicorn.should_exit = True

    def run(self) -> None:
        """Blocking entry point for ``python -m shopfloor.serving``.

        uvicorn re-raises the signal it caught once it has shut down; a recording handler
        installed first absorbs that, so gRPC is stopped and the process exits 0.
        """
        received: list[int] = []
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, lambda s, _frame: received.append(s))
        asyncio.run(self.serve())
        log.info("predictor stopped%s", f" (signal {received[0]})" if received else "")
