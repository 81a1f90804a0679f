"""REST + gRPC predictor server: kserve's data plane and models, our routes and limits.

Why not ``kserve.ModelServer.start()``: kserve 0.21 hard-codes the REST bind address to
``0.0.0.0`` and gRPC to ``[::]``; a predictor on a developer box or an edge gateway must not
listen on every interface by default. And kserve's app exposes more than a predictor of one
fixed registry version should: so this module composes kserve's building blocks itself.

* REST: a FastAPI app with exactly the predictor's routes: V1 (models, ready, ``:predict``)
  through kserve's V1 handlers, V2 health, metadata and inference through ours. Not served:
  the model-repository extension (``/v2/repository/...``: anyone on the network could unload
  the model), ``:explain``, ``/docs`` and ``/openapi.json``. V2 inference bodies (JSON and the
  binary-data extension) are parsed by the serving core (:func:`shopfloor.inference.codec.parse_request`),
  then handed to kserve's data plane as kserve's request type; a request for another model
  version than the one served is 404.
* gRPC: ``grpc.aio`` with kserve's servicer, versions checked, repository calls disabled,
  messages capped at the body limit.
* Limits (:mod:`shopfloor.serving.http`): body size (413), header size, connections (503),
  read and idle timeouts (408, close).
* Errors: every refusal answers with a bounded message (400 / INVALID_ARGUMENT, 404 /
  NOT_FOUND, ...) and goes to one :class:`~shopfloor.inference.RefusalLog`: counted
  (``shopfloor_refused_requests_total``) and logged as one short line, rate-limited. Only
  an unexpected exception logs a traceback (and answers 500 / INTERNAL): that is a bug.

Kserve's per-request timing middleware and gRPC logging interceptor (a log line per call)
are left out: they cost throughput and duplicate what ``/metrics`` measures.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import signal
import warnings
from collections.abc import Sequence
from http import HTTPStatus
from typing import Any, NoReturn

import grpc
import orjson
from fastapi import FastAPI, Request
from fastapi.responses import Response
from grpc import aio
from grpc_interceptor import AsyncExceptionToStatusInterceptor
from kserve import errors as kserve_errors
from kserve.model import BaseKServeModel
from kserve.model_repository import ModelRepository
from kserve.protocol.dataplane import DataPlane
from kserve.protocol.grpc import grpc_predict_v2_pb2 as pb
from kserve.protocol.grpc import grpc_predict_v2_pb2_grpc
from kserve.protocol.grpc.servicer import InferenceServicer
from kserve.protocol.infer_type import InferRequest, InferResponse
from kserve.protocol.model_repository_extension import ModelRepositoryExtension
from kserve.protocol.rest.server import metrics_handler
from kserve.protocol.rest.v1_endpoints import V1Endpoints
from starlette.exceptions import HTTPException as StarletteHTTPException

from shopfloor import settings
from shopfloor.errors import ConflictError, NotFoundError, ShopfloorError, bounded
from shopfloor.inference.codec import HEADER_LENGTH, parse_request
from shopfloor.inference.refusals import RefusalLog
from shopfloor.serving import codec
from shopfloor.serving.http import BodyLimit, Limits, address, guarded_server, listen
from shopfloor.serving.metrics import serving_metrics

__all__ = ["DEFAULT_HOST", "Limits", "PredictorServer", "create_app"]

log = logging.getLogger(__name__)
# kserve's V1 handler answers with FastAPI's ORJSONResponse, which FastAPI now flags on every use.
warnings.filterwarnings("ignore", message="ORJSONResponse is deprecated")
DEFAULT_HOST = settings.DEFAULT_HOST
#: Extensions of the Open Inference Protocol this server implements (no model repository).
EXTENSIONS = ["binary_tensor_data"]


class VersionNotServed(NotFoundError):
    """A request named a model version this predictor does not serve."""


def _served_model(repository: ModelRepository, name: str, version: str | None) -> BaseKServeModel:
    """The model ``name`` (and ``version``, when one is asked for), or the matching 404."""
    model = repository.get_model(name)
    if model is None:
        raise kserve_errors.ModelNotFound(name)
    if version:
        versions = list(getattr(model, "versions", None) or [])
        if version not in versions:
            raise VersionNotServed(
                f"model {bounded(name, 80)!r} has no version {bounded(version, 80)!r} here; "
                f"this predictor serves {versions}")
    return model


class ShopfloorDataPlane(DataPlane):
    """kserve's data plane, with metadata that says what is served and readiness that means it.

    kserve 0.21 returns ``platform: ""``, no ``versions``, advertises the repository extension
    this server does not offer, and reports ready whatever the models' state.
    """

    def metadata(self) -> dict[str, Any]:
        metadata: dict[str, Any] = super().metadata()
        metadata["extensions"] = list(EXTENSIONS)
        return metadata

    async def model_metadata(self, model_name: str) -> dict[str, Any]:
        metadata: dict[str, Any] = await super().model_metadata(model_name)
        model = self.get_model_from_registry(model_name)
        versions = list(getattr(model, "versions", None) or [])
        return {
            "name": metadata["name"],
            **({"versions": versions} if versions else {}),
            "platform": getattr(model, "platform", "") or "",
            "inputs": metadata["inputs"],
            "outputs": metadata["outputs"],
        }

    async def ready(self) -> bool:
        """Ready only when there is a model and every model can answer."""
        models = list(self.model_registry.get_models().values())
        return bool(models) and all(model.ready for model in models)


class _V2Routes:
    """The V2 REST endpoints this predictor serves."""

    def __init__(self, data_plane: ShopfloorDataPlane) -> None:
        self.data_plane = data_plane

    def _model(self, name: str, version: str | None) -> BaseKServeModel:
        return _served_model(self.data_plane.model_registry, name, version)

    async def metadata(self) -> dict[str, Any]:
        return self.data_plane.metadata()

    async def live(self) -> dict[str, bool]:
        return {"live": True}

    async def ready(self) -> Response:
        ready = await self.data_plane.ready()
        return Response(orjson.dumps({"ready": ready}), status_code=200 if ready else 503,
                        media_type="application/json")

    async def models(self) -> dict[str, list[str]]:
        return {"models": list(self.data_plane.model_registry.get_models())}

    async def model_metadata(self, model_name: str, model_version: str | None = None) -> dict[str, Any]:
        self._model(model_name, model_version)
        return await self.data_plane.model_metadata(model_name)

    async def model_ready(self, model_name: str, model_version: str | None = None) -> dict[str, Any]:
        model = self._model(model_name, model_version)
        if not model.ready:
            raise kserve_errors.ModelNotReady(model_name)
        return {"name": model_name, "ready": True}

    async def infer(self, request: Request, model_name: str, model_version: str | None = None) -> Response:
        model = self._model(model_name, model_version)
        if not model.ready:
            raise kserve_errors.ModelNotReady(model_name)
        parsed = parse_request(await request.body(), request.headers.get(HEADER_LENGTH))
        infer_request = codec.to_kserve_request(parsed, model_name)
        headers = dict(request.headers)
        response, response_headers = await self.data_plane.infer(model_name, infer_request, headers)
        if not isinstance(response, InferResponse):
            raise TypeError(f"model {model_name} answered a V2 request with {type(response).__name__}")
        body, json_length = codec.rest_body(response)
        extra = {k: v for k, v in response_headers.items()
                 if k.lower() not in ("content-length", "content-type")}
        if json_length is None:
            return Response(orjson.dumps(body), media_type="application/json", headers=extra)
        extra[HEADER_LENGTH] = str(json_length)
        return Response(body, media_type="application/octet-stream", headers=extra)


def _path(request: Request) -> str:
    return bounded(request.url.path, 80)


def _refusal_handlers(refusals: RefusalLog) -> dict[Any, Any]:
    """Exception -> (status, bounded message) handlers; every one counts and logs the refusal."""

    def handler(status: HTTPStatus) -> Any:
        async def handle(request: Request, exc: Exception) -> Response:
            message = bounded(str(exc) or status.phrase)
            refusals.refused("rest", int(status), f"{request.method} {_path(request)}: {message}")
            return Response(orjson.dumps({"error": message}), status_code=int(status),
                            media_type="application/json")

        return handle

    async def http_exception(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, StarletteHTTPException)
        message = bounded(str(exc.detail))
        refusals.refused("rest", exc.status_code, f"{request.method} {_path(request)}: {message}")
        return Response(orjson.dumps({"error": message}), status_code=exc.status_code,
                        media_type="application/json", headers=getattr(exc, "headers", None))

    async def unexpected(request: Request, exc: Exception) -> Response:
        log.error("internal error serving %s %s", request.method, _path(request), exc_info=exc)
        return Response(orjson.dumps({"error": "internal server error"}), status_code=500,
                        media_type="application/json")

    handlers: dict[Any, Any] = {
        kserve_errors.InvalidInput: handler(HTTPStatus.BAD_REQUEST),
        kserve_errors.ModelNotFound: handler(HTTPStatus.NOT_FOUND),
        kserve_errors.ModelNotReady: handler(HTTPStatus.SERVICE_UNAVAILABLE),
        kserve_errors.ServerNotReady: handler(HTTPStatus.SERVICE_UNAVAILABLE),
        kserve_errors.UnsupportedProtocol: handler(HTTPStatus.BAD_REQUEST),
        StarletteHTTPException: http_exception,
        Exception: unexpected,
    }
    for category in ShopfloorError.__subclasses__():
        handlers[category] = handler(HTTPStatus(category.http_status))
    return handlers


def create_app(data_plane: ShopfloorDataPlane, refusals: RefusalLog | None = None,
               limits: Limits | None = None) -> Any:
    """The REST application: the predictor's routes and error mapping, behind the body limit."""
    refusals = refusals or serving_metrics().refusals
    limits = limits or Limits()
    app = FastAPI(title="shopfloor predictor", docs_url=None, redoc_url=None, openapi_url=None,
                  exception_handlers=_refusal_handlers(refusals))
    app.add_api_route("/", data_plane.live, methods=["GET"])
    app.add_api_route("/metrics", metrics_handler, methods=["GET"])
    v1 = V1Endpoints(data_plane)
    app.add_api_route("/v1/models", v1.models, methods=["GET"])
    app.add_api_route("/v1/models/{model_name}", v1.model_ready, methods=["GET"])
    app.add_api_route("/v1/models/{model_name}:predict", v1.predict, methods=["POST"], response_model=None)
    v2 = _V2Routes(data_plane)
    app.add_api_route("/v2", v2.metadata, methods=["GET"])
    app.add_api_route("/v2/health/live", v2.live, methods=["GET"])
    app.add_api_route("/v2/health/ready", v2.ready, methods=["GET"], response_model=None)
    app.add_api_route("/v2/models", v2.models, methods=["GET"])
    for prefix in ("/v2/models/{model_name}", "/v2/models/{model_name}/versions/{model_version}"):
        app.add_api_route(prefix, v2.model_metadata, methods=["GET"])
        app.add_api_route(f"{prefix}/ready", v2.model_ready, methods=["GET"])
        app.add_api_route(f"{prefix}/infer", v2.infer, methods=["POST"], response_model=None)
    return BodyLimit(app, limits.max_body_bytes,
                     on_refused=lambda status, message: refusals.refused("rest", status, message))


class _Servicer(InferenceServicer):
    """kserve's gRPC servicer: versions checked and reported, repository calls disabled."""

    def __init__(self, data_plane: ShopfloorDataPlane, extension: ModelRepositoryExtension) -> None:
        super().__init__(data_plane, extension)
        self._plane = data_plane

    async def ModelReady(self, request: pb.ModelReadyRequest, context: Any) -> pb.ModelReadyResponse:
        model = _served_model(self._plane.model_registry, request.name, request.version or None)
        return pb.ModelReadyResponse(ready=bool(model.ready))

    async def ModelMetadata(self, request: pb.ModelMetadataRequest, context: Any) -> pb.ModelMetadataResponse:
        _served_model(self._plane.model_registry, request.name, request.version or None)
        metadata = await self._plane.model_metadata(model_name=request.name)
        return pb.ModelMetadataResponse(
            name=metadata["name"],
            versions=metadata.get("versions", []),
            platform=metadata["platform"],
            inputs=metadata["inputs"],
            outputs=metadata["outputs"],
        )

    async def ModelInfer(self, request: pb.ModelInferRequest, context: Any) -> pb.ModelInferResponse:
        model = _served_model(self._plane.model_registry, request.model_name, request.model_version or None)
        if not model.ready:
            raise kserve_errors.ModelNotReady(request.model_name)
        self.validate_grpc_request(request)
        infer_request = InferRequest.from_grpc(request)
        response, _ = await self._plane.infer(model_name=request.model_name, request=infer_request)
        if not isinstance(response, InferResponse):
            raise TypeError(f"model {request.model_name} answered with {type(response).__name__}")
        return response.to_grpc()

    async def RepositoryModelLoad(self, request: Any, context: Any) -> Any:
        await context.abort(grpc.StatusCode.UNIMPLEMENTED, "model load/unload is disabled on this predictor")

    async def RepositoryModelUnload(self, request: Any, context: Any) -> Any:
        await context.abort(grpc.StatusCode.UNIMPLEMENTED, "model load/unload is disabled on this predictor")


class _ErrorsToStatus(AsyncExceptionToStatusInterceptor):
    """Exceptions -> gRPC status with a bounded message; refusals counted and logged briefly."""

    def __init__(self, refusals: RefusalLog) -> None:
        super().__init__()
        self.refusals = refusals

    async def handle_exception(self, ex: Exception, request_or_iterator: Any, context: Any,
                               method_name: str) -> NoReturn:
        code: grpc.StatusCode | None = None
        if isinstance(ex, kserve_errors.InvalidInput | kserve_errors.UnsupportedProtocol):
            code = grpc.StatusCode.INVALID_ARGUMENT
        elif isinstance(ex, kserve_errors.ModelNotFound):
            code = grpc.StatusCode.NOT_FOUND
        elif isinstance(ex, kserve_errors.ModelNotReady | kserve_errors.ServerNotReady):
            code = grpc.StatusCode.UNAVAILABLE
        elif isinstance(ex, ShopfloorError):
            code = {400: grpc.StatusCode.INVALID_ARGUMENT, 404: grpc.StatusCode.NOT_FOUND,
                    409: grpc.StatusCode.ALREADY_EXISTS}.get(int(ex.http_status), grpc.StatusCode.INTERNAL)
        if code is None or code == grpc.StatusCode.INTERNAL:
            log.error("internal error in gRPC %s", method_name, exc_info=ex)
            await context.abort(grpc.StatusCode.INTERNAL, "internal server error")
            raise ex  # not reached: abort raises
        message = bounded(str(ex) or code.name)
        self.refusals.refused("grpc", code.name, f"{method_name}: {message}")
        await context.abort(code, message)
        raise ex  # not reached: abort raises


class PredictorServer:
    """Serve loaded kserve models over REST and (optionally) gRPC on ``host``."""

    def __init__(
        self,
        models: Sequence[BaseKServeModel],
        host: str = DEFAULT_HOST,
        http_port: int = settings.HTTP_PORT,
        grpc_port: int | None = settings.GRPC_PORT,
        grace_period: float = 10.0,
        access_log: bool = False,
        limits: Limits | None = None,
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
        self.grace_period = grace_period
        self.limits = limits or Limits()
        self.refusals = serving_metrics().refusals
        self.data_plane = ShopfloorDataPlane(model_registry=self.repository)
        self.extension = ModelRepositoryExtension(model_registry=self.repository)
        self.app = create_app(self.data_plane, self.refusals, self.limits)
        on_refused = lambda status, message: self.refusals.refused("rest", status, message)  # noqa: E731
        self._uvicorn = guarded_server(
            self.app, host, http_port, self.limits, on_refused, grace_period=grace_period,
            access_log=access_log, loop="auto",
        )
        self._grpc: aio.Server | None = None

    async def _start_grpc(self) -> None:
        if self.grpc_port is None:
            return
        size = self.limits.max_body_bytes
        server = aio.server(
            interceptors=(_ErrorsToStatus(self.refusals),),
            options=[
                ("grpc.max_send_message_length", size),
                ("grpc.max_receive_message_length", size),
                ("grpc.max_connection_idle_ms", int(self.limits.idle_timeout * 1000)),
            ],
            # As many calls in flight as REST connections: bounds memory the same way.
            maximum_concurrent_rpcs=self.limits.max_connections,
        )
        grpc_predict_v2_pb2_grpc.add_GRPCInferenceServiceServicer_to_server(
            _Servicer(self.data_plane, self.extension), server
        )
        grpc_address = address(self.host, self.grpc_port)
        listen(self.host, self.grpc_port, "gRPC").close()  # refuse a taken port in our words
        try:
            bound = server.add_insecure_port(grpc_address)
        except RuntimeError:  # grpcio raises where older versions returned 0
            bound = 0
        if bound == 0:
            raise ConflictError(f"cannot listen on {grpc_address} for gRPC: the port is in use or "
                                "not allowed")
        await server.start()
        self._grpc = server
        log.info("gRPC listening on %s", grpc_address)

    async def serve(self) -> None:
        """Run until SIGINT/SIGTERM (uvicorn's handlers) or :meth:`request_stop`."""
        http_socket = listen(self.host, self.http_port, "REST")
        try:
            await self._start_grpc()
        except BaseException:
            http_socket.close()
            raise
        # Everything loaded so far (kserve, numpy, the model) lives for the whole process:
        # moving it out of the collector's generations keeps full collections short, so they
        # do not show up as latency spikes under load.
        gc.collect()
        gc.freeze()
        try:
            log.info("REST listening on http://%s:%s", self.host, self.http_port)
            await self._uvicorn.serve(sockets=[http_socket])
        finally:
            http_socket.close()
            if self._grpc is not None:
                await self._grpc.stop(grace=self.grace_period)

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
