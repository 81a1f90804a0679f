"""The predictor's REST surface, tried as a careless or hostile client would (issue 7).

The real entry point in a subprocess, on loopback. The shared V2 cases (tests/v2_cases.py)
must each answer in their class with a bounded JSON error, never 5xx; then probes of what a
plant-network neighbour could do: unload the model, send huge or never-ending bodies, hold
connections open, flood the log.
"""

from __future__ import annotations

import contextlib
import json
import re
import socket
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pandas as pd
import pytest

from shopfloor import contract, settings
from shopfloor.data import schema
from shopfloor.errors import MAX_MESSAGE_CHARS, ConflictError
from shopfloor.inference.features import Featurizer
from shopfloor.inference.runtime import LiteRTModel
from tests.integration.predictor import MODEL, Predictor, running_predictor
from tests.v2_cases import INFER, V2_CASES, V2Case, dumps, request, tensors

VERSION = "v0001"


@pytest.fixture(scope="module")
def predictor(version_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Predictor]:
    """Default limits, as a user starts it."""
    with running_predictor(version_dir, tmp_path_factory.mktemp("rest")) as running:
        yield running


@pytest.fixture(scope="module")
def tight(version_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Predictor]:
    """Small limits, so the connection cap and the timeouts can be reached in a test."""
    flags = ("--max-connections", "4", "--read-timeout", "1", "--idle-timeout", "1",
             "--max-body-bytes", "4096")
    with running_predictor(version_dir, tmp_path_factory.mktemp("tight"), *flags) as running:
        yield running


def _send(url: str, case: V2Case) -> httpx.Response:
    path = case.path.format(model=MODEL, version=VERSION)
    return httpx.request(case.method, url + path, headers=case.headers, content=case.body, timeout=30)


@pytest.mark.parametrize("case", V2_CASES, ids=[c.description for c in V2_CASES])
def test_shared_v2_cases(predictor: Predictor, case: V2Case) -> None:
    response = _send(predictor.url, case)
    assert response.status_code // 100 == int(case.expected[0]), (response.status_code, response.text[:300])
    if case.expected == "4xx":
        message = response.json()["error"]
        assert isinstance(message, str) and 0 < len(message) <= MAX_MESSAGE_CHARS
        assert len(response.content) < 2 * MAX_MESSAGE_CHARS


# --- item 1: the model repository is not reachable; readiness means the model answers ---------


def test_nobody_can_unload_the_model(predictor: Predictor) -> None:
    url = predictor.url
    for action in ("unload", "load"):
        assert httpx.post(f"{url}/v2/repository/models/{MODEL}/{action}").status_code == 404
    assert httpx.post(f"{url}/v2/repository/index").status_code == 404
    assert httpx.post(url + INFER.format(model=MODEL), content=dumps(request())).status_code == 200
    assert httpx.get(f"{url}/v2/health/ready").json() == {"ready": True}
    assert httpx.get(f"{url}/v2/models/{MODEL}/ready").json() == {"name": MODEL, "ready": True}


@pytest.mark.parametrize("path", ["/openapi.json", "/docs", "/redoc", "/docs/oauth2-redirect"])
def test_no_api_explorer(predictor: Predictor, path: str) -> None:
    assert httpx.get(predictor.url + path).status_code == 404


def test_server_metadata_does_not_offer_the_repository_extension(predictor: Predictor) -> None:
    assert "model_repository_extension" not in httpx.get(f"{predictor.url}/v2").json()["extensions"]


def test_readiness_is_false_until_the_model_can_answer(version_dir: Path) -> None:
    """In process: a server whose model has not loaded reports not ready (503), and ready
    once it has; kserve's own readiness says ready regardless."""
    import asyncio

    from kserve.model_repository import ModelRepository

    from shopfloor.serving.model import FailureModel
    from shopfloor.serving.server import ShopfloorDataPlane, create_app

    repository = ModelRepository()
    model = FailureModel(MODEL, version_dir)
    repository.update(model)
    plane = ShopfloorDataPlane(model_registry=repository)
    assert asyncio.run(plane.ready()) is False

    async def probe() -> tuple[int, int]:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=create_app(plane)),
                                     base_url="http://t") as client:
            before = (await client.get("/v2/health/ready")).status_code
            model.load()
            after = (await client.get("/v2/health/ready")).status_code
            return before, after

    assert asyncio.run(probe()) == (503, 200)
    assert asyncio.run(ShopfloorDataPlane(model_registry=ModelRepository()).ready()) is False


# --- item 10: wrong versions are 404, the right one is served ----------------------------------


def test_versions(predictor: Predictor) -> None:
    url, body = predictor.url, dumps(request())
    assert httpx.post(f"{url}/v2/models/{MODEL}/versions/{VERSION}/infer", content=body).status_code == 200
    for other in ("v9999", "v0001x", "latest"):
        for path in (f"/versions/{other}/infer", f"/versions/{other}", f"/versions/{other}/ready"):
            method = "POST" if path.endswith("infer") else "GET"
            content = body if method == "POST" else None
            response = httpx.request(method, f"{url}/v2/models/{MODEL}{path}", content=content)
            assert response.status_code == 404 and other in response.json()["error"], (path, response.text)
    assert httpx.get(f"{url}/v2/models/{MODEL}/versions/{VERSION}").json()["versions"] == [VERSION]


# --- item 4: body size, batch size, headers, connections, timeouts ------------------------------


def _raw_request(port: int, head: bytes, body: bytes = b"", *, timeout: float = 10) -> bytes:
    """Send bytes on a fresh connection; return everything the server answers before closing."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.sendall(head)
        try:
            for start in range(0, len(body), 65536):
                sock.sendall(body[start : start + 65536])
        except (BrokenPipeError, ConnectionResetError):
            pass  # the server answered and closed before the whole body was sent
        chunks = []
        try:
            while chunk := sock.recv(65536):
                chunks.append(chunk)
        except (ConnectionResetError, TimeoutError):
            pass
    return b"".join(chunks)


def _status(answer: bytes) -> int:
    match = re.match(rb"HTTP/1\.1 (\d{3}) ", answer)
    assert match, answer[:200]
    return int(match.group(1))


def test_declared_oversized_body_is_refused_before_it_is_sent(predictor: Predictor) -> None:
    path = INFER.format(model=MODEL).encode()
    head = (b"POST " + path + b" HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\n"
            b"content-length: 52428800\r\n\r\n")
    start = time.monotonic()
    answer = _raw_request(predictor.http_port, head)  # not one byte of the 50 MB body
    assert _status(answer) == 413 and time.monotonic() - start < 5
    assert f"larger than {settings.MAX_BODY_BYTES} bytes".encode() in answer


def test_chunked_oversized_body_is_refused_as_it_grows(predictor: Predictor) -> None:
    path = INFER.format(model=MODEL).encode()
    head = b"POST " + path + b" HTTP/1.1\r\nhost: x\r\ntransfer-encoding: chunked\r\n\r\n"
    chunk = b"[" * 60000
    chunks = 2 * settings.MAX_BODY_BYTES // len(chunk)
    body = (b"%x\r\n" % len(chunk) + chunk + b"\r\n") * chunks + b"0\r\n\r\n"
    assert _status(_raw_request(predictor.http_port, head, body)) == 413


def test_the_body_limit_is_a_flag(tight: Predictor) -> None:
    small = dumps(request())
    assert len(small) < 4096
    assert httpx.post(tight.url + INFER.format(model=MODEL), content=small).status_code == 200
    big = dumps(request(id="x" * 8000))
    response = httpx.post(tight.url + INFER.format(model=MODEL), content=big)
    assert response.status_code == 413 and "larger than 4096 bytes" in response.json()["error"]


def test_batch_cap(predictor: Predictor, real_frame: pd.DataFrame) -> None:
    rows = real_frame.head(settings.MAX_BATCH + 1)
    body = {"inputs": tensors({n: rows[n].tolist() for n in schema.INPUT_COLUMNS})}
    response = httpx.post(predictor.url + INFER.format(model=MODEL), content=dumps(body))
    assert response.status_code == 400
    assert f"exceeds this predictor's maximum of {settings.MAX_BATCH}" in response.json()["error"]


def test_oversized_headers_and_garbage_are_refused_and_counted(predictor: Predictor) -> None:
    before = httpx.get(f"{predictor.url}/metrics").text
    head = b"GET /v2/health/ready HTTP/1.1\r\nhost: x\r\n" + b"x-junk: " + b"j" * 200_000 + b"\r\n\r\n"
    assert _status(_raw_request(predictor.http_port, head)) == 400
    assert _status(_raw_request(predictor.http_port, b"\x16\x03\x01 not http at all\r\n\r\n")) == 400
    after = httpx.get(f"{predictor.url}/metrics").text
    name = "shopfloor_refused_requests_total"
    assert _metric(after, name, protocol="rest", status="400") - _metric(
        before, name, protocol="rest", status="400") == 2
    time.sleep(0.3)
    assert "uvicorn.error" not in predictor.log()  # its unthrottled warning per bad request is filtered


def test_connection_cap(tight: Predictor) -> None:
    ready = b"GET /v2/health/ready HTTP/1.1\r\nhost: x\r\n\r\n"
    held = [socket.create_connection(("127.0.0.1", tight.http_port), timeout=5) for _ in range(4)]
    try:
        time.sleep(0.2)
        answer = _raw_request(tight.http_port, ready)
        assert _status(answer) == 503 and b"open connections" in answer
    finally:
        for sock in held:
            sock.close()
    time.sleep(0.3)
    assert _status(_raw_request(tight.http_port, ready, timeout=5)) == 200


def test_a_connection_that_sends_nothing_is_closed(tight: Predictor) -> None:
    with socket.create_connection(("127.0.0.1", tight.http_port), timeout=10) as sock:
        start = time.monotonic()
        assert sock.recv(1024) == b""  # closed by the server after the idle timeout
        assert time.monotonic() - start < 5


def test_a_request_that_never_finishes_times_out(tight: Predictor) -> None:
    path = INFER.format(model=MODEL).encode()
    head = b"POST " + path + b" HTTP/1.1\r\nhost: x\r\ncontent-length: 100\r\n\r\n"
    with socket.create_connection(("127.0.0.1", tight.http_port), timeout=10) as sock:
        sock.sendall(head + b'{"inputs":')  # and then nothing more
        start = time.monotonic()
        answer = b""
        while chunk := sock.recv(4096):
            answer += chunk
        assert _status(answer) == 408 and time.monotonic() - start < 5


def test_a_request_trickled_byte_by_byte_times_out(tight: Predictor) -> None:
    """A slow-loris client (one header byte every 0.3 s) is cut off by the read timeout (1 s)."""
    import select

    answer = b""
    with socket.create_connection(("127.0.0.1", tight.http_port), timeout=10) as sock:
        start = time.monotonic()
        for byte in b"GET /v2/health/ready HTTP/1.1\r\nhost: x\r\nx-slow: " + b"z" * 100:
            try:
                sock.sendall(bytes([byte]))
            except (BrokenPipeError, ConnectionResetError):
                break
            if select.select([sock], [], [], 0.3)[0]:
                with contextlib.suppress(ConnectionResetError):
                    answer = sock.recv(4096)
                break
        elapsed = time.monotonic() - start
    assert answer == b"" or _status(answer) == 408
    assert elapsed < 5, elapsed


# --- item 5: refusals are bounded in the answer and in the log, counted, never a traceback ------


def _metric(text: str, name: str, **labels: str) -> float:
    total = 0.0
    for line in text.splitlines():
        if (line.startswith(name + "{") or line.startswith(name + " ")) and all(
                f'{k}="{v}"' in line for k, v in labels.items()):
            total += float(line.rsplit(" ", 1)[1])
    return total


def test_refused_requests_are_short_in_answer_and_log_and_counted(predictor: Predictor) -> None:
    url = predictor.url + INFER.format(model=MODEL)
    huge = "Q" * 300_000
    before_log = len(predictor.log())
    start = time.monotonic()
    before = httpx.get(f"{predictor.url}/metrics").text
    bodies = [request(inputs=[{**t, "data": [huge, "L"]} if t["name"] == "product_type" else t
                              for t in tensors()]),
              request(inputs=[{**t, "datatype": huge} if t["name"] == "torque_nm" else t for t in tensors()]),
              request(inputs=[{**t, "name": huge} if t["name"] == "torque_nm" else t for t in tensors()])]
    for i in range(60):
        response = httpx.post(url, content=dumps(bodies[i % 3]), timeout=30)
        assert response.status_code == 400 and len(response.content) < 2 * MAX_MESSAGE_CHARS
    after = httpx.get(f"{predictor.url}/metrics").text
    refused = _metric(after, "shopfloor_refused_requests_total", protocol="rest", status="400") - _metric(
        before, "shopfloor_refused_requests_total", protocol="rest", status="400")
    assert refused == 60
    time.sleep(0.5)
    windows = 1 + int((time.monotonic() - start) // 10)
    written = predictor.log()[before_log:]
    assert "Traceback" not in written and "Q" * 100 not in written
    lines = written.splitlines()
    # At most 10 lines per 10 s window (plus one "not logged" summary each; the window that was
    # open when this test began may end during it), each one short.
    assert 0 < len(lines) <= 11 * (windows + 1) < 60, (windows, len(lines))
    assert all(len(line) < 400 for line in lines), lines[:3]


def test_metrics_count_rejections_per_model(predictor: Predictor) -> None:
    before = httpx.get(f"{predictor.url}/metrics").text
    body = request(inputs=tensors()[:-1])
    assert httpx.post(predictor.url + INFER.format(model=MODEL), content=dumps(body)).status_code == 400
    after = httpx.get(f"{predictor.url}/metrics").text
    name = "shopfloor_rejected_requests_total"
    assert _metric(after, name, model_name=MODEL, protocol="v2-rest") - _metric(
        before, name, model_name=MODEL, protocol="v2-rest") == 1


# --- concurrency: many clients at once, each gets its own answer --------------------------------


def test_concurrent_clients_get_their_own_answers(predictor: Predictor, version_dir: Path,
                                                  real_frame: pd.DataFrame) -> None:
    featurizer = Featurizer.from_version(version_dir)
    edge = contract.load_manifest(version_dir).edge_format  # what the predictor serves by default
    assert edge is not None
    lite = LiteRTModel(version_dir / contract.litert_file(edge))
    batches = [real_frame.iloc[i * 13 : i * 13 + 1 + i % 17] for i in range(64)]
    expected = [lite.predict_proba(featurizer.transform(b)).astype(np.float32) for b in batches]
    url = predictor.url + INFER.format(model=MODEL)

    def call(i: int) -> bool:
        rows = batches[i]
        body = dumps({"id": str(i), "inputs": tensors({n: rows[n].tolist() for n in schema.INPUT_COLUMNS})})
        answer: dict[str, Any] = json.loads(httpx.post(url, content=body, timeout=30).content)
        probability = next(o["data"] for o in answer["outputs"] if o["name"] == "failure_probability")
        return answer["id"] == str(i) and np.array_equal(np.float32(probability), expected[i])

    with ThreadPoolExecutor(16) as pool:
        results = list(pool.map(call, list(range(64)) * 3))
    assert all(results)


def test_a_taken_rest_port_is_one_line(version_dir: Path, tmp_path: Path) -> None:
    import subprocess
    import sys

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = subprocess.run(
            [sys.executable, "-m", "shopfloor.serving", "--model-dir", str(version_dir),
             "--http-port", str(port), "--grpc-port", "0"],
            capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode == ConflictError.exit_code, result.stderr
    assert f"error: cannot listen on 127.0.0.1:{port} for REST" in result.stderr
    assert "Traceback" not in result.stderr


def test_answers_are_not_held_back_by_nagle() -> None:
    """The REST socket is made here (to refuse a taken port in one line): its connections must
    send a response's head and body at once, or every answer waits for a delayed ACK (~40 ms)."""
    from shopfloor.serving.http import listen

    listener = listen("127.0.0.1", 0, "REST")
    try:
        listener.listen()
        with socket.create_connection(listener.getsockname(), timeout=5):
            accepted, _ = listener.accept()
            with accepted:
                assert accepted.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) != 0
    finally:
        listener.close()


def test_keep_alive_requests_answer_without_delay(predictor: Predictor) -> None:
    body = dumps(request())
    with httpx.Client() as client:
        client.post(predictor.url + INFER.format(model=MODEL), content=body)
        start = time.perf_counter()
        for _ in range(40):
            assert client.post(predictor.url + INFER.format(model=MODEL), content=body).status_code == 200
        per_request = (time.perf_counter() - start) / 40
    assert per_request < 0.035, f"{per_request * 1000:.1f} ms per request"


def test_upgrade_requests_are_plain_http_and_quiet(predictor: Predictor) -> None:
    head = (b"GET /v2/health/ready HTTP/1.1\r\nhost: x\r\nconnection: upgrade, close\r\n"
            b"upgrade: websocket\r\nsec-websocket-key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
            b"sec-websocket-version: 13\r\n\r\n")
    before = len(predictor.log())
    answer = _raw_request(predictor.http_port, head)
    assert _status(answer) == 200 and answer.endswith(b'{"ready":true}')
    time.sleep(0.3)
    assert "upgrade" not in predictor.log()[before:].lower()
