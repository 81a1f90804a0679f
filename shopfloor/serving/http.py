"""Limits of the REST surface, below FastAPI: body size, header size, timeouts, connections.

A predictor on a plant network must not let one client (broken or hostile) take its memory
or its connections. Two layers, because each limit has to act before the part it protects:

* :class:`BodyLimit`, an ASGI middleware: a body larger than the limit gets 413 before
  anything parses it; a declared ``content-length`` over the limit is refused before a byte
  of the body is read, a chunked body as soon as it grows past the limit.
* :func:`guarded_protocol`, uvicorn's httptools protocol with connection limits: at most
  ``max_connections`` open (more are answered 503 and closed at once), request line and
  headers at most :data:`MAX_HEADER_BYTES`, a new connection must start a request within the
  idle timeout, a started request must arrive completely within the read timeout (else
  408 and close), and an idle keep-alive connection closes after the idle timeout.
"""

from __future__ import annotations

import asyncio
import logging
import socket
from collections.abc import Callable
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any

import orjson
import uvicorn
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from shopfloor import settings
from shopfloor.errors import ConflictError

#: Request line plus headers of one request (uvicorn's h11 default is 16 KiB; httptools has none).
MAX_HEADER_BYTES = 64 * 1024

#: (status, message) -> None: where a refusal is reported (counted and logged, rate-limited).
OnRefused = Callable[[int, str], None]


@dataclass(frozen=True)
class Limits:
    """What one client may take: bytes per body, open connections, seconds per request / idle."""

    max_body_bytes: int = settings.MAX_BODY_BYTES
    max_connections: int = settings.MAX_CONNECTIONS
    read_timeout: float = settings.READ_TIMEOUT_SECONDS
    idle_timeout: float = settings.IDLE_TIMEOUT_SECONDS


def error_response(status: int, message: str) -> bytes:
    """A complete HTTP/1.1 response with the V2 error body, closing the connection."""
    body = orjson.dumps({"error": message})
    return (
        f"HTTP/1.1 {status} {HTTPStatus(status).phrase}\r\ncontent-type: application/json\r\n"
        f"content-length: {len(body)}\r\nconnection: close\r\n\r\n"
    ).encode("ascii") + body


class BodyLimit:
    """Refuse request bodies over ``max_bytes`` with 413, before the application reads them."""

    def __init__(self, app: Any, max_bytes: int, on_refused: OnRefused | None = None) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.on_refused = on_refused

    async def _refuse(self, send: Any, status: int, message: str) -> None:
        if self.on_refused is not None:
            self.on_refused(status, message)
        body = orjson.dumps({"error": message})
        await send({"type": "http.response.start", "status": status,
                    "headers": [(b"content-type", b"application/json"),
                                (b"content-length", str(len(body)).encode()), (b"connection", b"close")]})
        await send({"type": "http.response.body", "body": body})

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared: bytes | None = None
        chunked = False
        for name, value in scope["headers"]:
            if name == b"content-length":
                declared = value
            elif name == b"transfer-encoding":
                chunked = True
        if declared is None and not chunked:
            await self.app(scope, receive, send)  # no body
            return
        too_large = f"request body larger than {self.max_bytes} bytes"
        if declared is not None and (not declared.isdigit() or int(declared) > self.max_bytes):
            await self._refuse(send, 413 if declared.isdigit() else 400,
                               too_large if declared.isdigit() else "invalid content-length")
            return
        chunks: list[bytes] = []
        total = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            part = message.get("body", b"")
            total += len(part)
            if total > self.max_bytes:
                await self._refuse(send, 413, too_large)
                return
            chunks.append(part)
            if not message.get("more_body", False):
                break
        body = b"".join(chunks)
        delivered = False

        async def replay() -> Any:
            nonlocal delivered
            if not delivered:
                delivered = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)


def _not_parser_warning(record: logging.LogRecord) -> bool:
    return record.getMessage() != "Invalid HTTP request received."


def quiet_parser_warnings() -> None:
    """Drop uvicorn's unthrottled warning per unparsable request (the refusal log has it)."""
    logging.getLogger("uvicorn.error").addFilter(_not_parser_warning)


def guarded_protocol(limits: Limits, on_refused: OnRefused | None = None) -> type[HttpToolsProtocol]:
    """uvicorn's httptools protocol with the connection, header and timeout limits of ``limits``."""

    def refused(status: int, message: str) -> None:
        if on_refused is not None:
            on_refused(status, message)

    class GuardedHttpToolsProtocol(HttpToolsProtocol):
        _refused_connection = False
        _header_bytes = 0
        _reject_reason: str | None = None
        _idle_timer: asyncio.TimerHandle | None = None
        _read_timer: asyncio.TimerHandle | None = None

        def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
            if len(self.server_state.connections) >= limits.max_connections:
                self._refused_connection = True
                self.transport = transport
                message = f"more than {limits.max_connections} open connections; try again later"
                transport.write(error_response(503, message))
                transport.close()
                refused(503, message)
                return
            super().connection_made(transport)
            self._idle_timer = self.loop.call_later(limits.idle_timeout, self._on_idle)

        def connection_lost(self, exc: Exception | None) -> None:
            self._cancel(read=True)
            if not self._refused_connection:
                super().connection_lost(exc)

        def data_received(self, data: bytes) -> None:
            if not self._refused_connection:
                super().data_received(data)

        def _cancel(self, read: bool = False) -> None:
            if self._idle_timer is not None:
                self._idle_timer.cancel()
                self._idle_timer = None
            if read and self._read_timer is not None:
                self._read_timer.cancel()
                self._read_timer = None

        def _on_idle(self) -> None:
            self._idle_timer = None
            if not self.transport.is_closing() and (self.cycle is None or self.cycle.response_complete):
                self.transport.close()

        def _on_read_timeout(self) -> None:
            self._read_timer = None
            if self.transport.is_closing():
                return
            message = f"request not received within {limits.read_timeout:g} s"
            if self.cycle is None or not self.cycle.response_started:
                self.transport.write(error_response(408, message))
            refused(408, message)
            self.transport.close()

        def on_message_begin(self) -> None:
            super().on_message_begin()
            self._cancel(read=True)
            self._header_bytes = 0
            self._read_timer = self.loop.call_later(limits.read_timeout, self._on_read_timeout)

        def _count_header(self, size: int) -> None:
            self._header_bytes += size
            if self._header_bytes > MAX_HEADER_BYTES:
                self._reject_reason = f"request line and headers larger than {MAX_HEADER_BYTES} bytes"
                raise ValueError("headers too large")  # the parser fails: send_400_response below

        def send_400_response(self, msg: str) -> None:
            """uvicorn's answer to a request it cannot parse: counted and logged like every refusal
            (uvicorn's own warning for it is filtered out, see :func:`quiet_parser_warnings`)."""
            refused(400, self._reject_reason or msg)
            self._reject_reason = None
            super().send_400_response(msg)

        def on_url(self, url: bytes) -> None:
            self._count_header(len(url))
            super().on_url(url)

        def on_header(self, name: bytes, value: bytes) -> None:
            self._count_header(len(name) + len(value))
            super().on_header(name, value)

        def _unsupported_upgrade_warning(self) -> None:
            """An Upgrade header is answered as plain HTTP (this server has no WebSocket routes),
            without uvicorn's two warning lines per such request."""

        def on_message_complete(self) -> None:
            super().on_message_complete()
            if self._read_timer is not None:
                self._read_timer.cancel()
                self._read_timer = None

    return GuardedHttpToolsProtocol


def address(host: str, port: int) -> str:
    """``host:port``, an IPv6 host in brackets."""
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def listen(host: str, port: int, what: str = "") -> socket.socket:
    """A socket bound to ``host:port`` for a server to take over: a taken port is one line
    naming it (and ``what`` listens there), not a traceback."""
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    # Accepted connections inherit this: a response's head and body go out without waiting
    # for the client's delayed ACK (Nagle), as on the sockets uvicorn makes itself.
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        purpose = f" for {what}" if what else ""
        raise ConflictError(f"cannot listen on {address(host, port)}{purpose}: "
                            f"{exc.strerror or exc}") from None
    return sock


def guarded_server(app: Any, host: str, port: int, limits: Limits, on_refused: OnRefused, *,
                   grace_period: float, **config: Any) -> uvicorn.Server:
    """A uvicorn server for ``app`` that enforces ``limits`` (keep-alive from the idle timeout,
    the guarded protocol, no WebSockets) and logs no per-request parser warning: the one set-up
    of the cloud predictor and the edge runtime. ``config`` adds uvicorn options per server."""
    quiet_parser_warnings()
    return uvicorn.Server(uvicorn.Config(
        app, host=host, port=port, log_config=None,
        timeout_graceful_shutdown=int(grace_period),
        timeout_keep_alive=max(1, round(limits.idle_timeout)),
        http=guarded_protocol(limits, on_refused),
        ws="none",  # no WebSocket routes: no upgrade handling either
        **config,
    ))
