"""The edge runtime's limits, as a careless or hostile neighbour on the plant network meets them,
and the command's one-line refusals of bad options. Small limits, so they can be reached."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.edge_runtime import (
    MODEL,
    SHOPFLOOR,
    Runtime,
    SignedVersions,
    make_signed_versions,
    running_runtime,
)
from tests.v2_cases import INFER, dumps, request

LIMIT = 4096


@pytest.fixture(scope="module")
def versions(tmp_path_factory: pytest.TempPathFactory) -> SignedVersions:
    return make_signed_versions(tmp_path_factory.mktemp("edge-limit-versions"))


@pytest.fixture(scope="module")
def tight(versions: SignedVersions, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Runtime]:
    root = tmp_path_factory.mktemp("edge-tight")
    flags = (
        "--max-connections",
        "4",
        "--read-timeout",
        "1",
        "--idle-timeout",
        "1",
        "--max-body-bytes",
        str(LIMIT),
        "--max-batch",
        "8",
        "--pull",
        str(versions.registry),
    )
    with running_runtime(root / "store", root, *flags, trust=versions.trust) as running:
        yield running


def _raw(runtime: Runtime, data: bytes, wait: float = 5.0) -> bytes:
    with socket.create_connection(("127.0.0.1", runtime.port), timeout=wait) as conn:
        if data:
            conn.sendall(data)
        chunks = []
        try:
            while chunk := conn.recv(65536):
                chunks.append(chunk)
        except TimeoutError:
            pass
    return b"".join(chunks)


def _status(response: bytes) -> int:
    return int(response.split(b" ", 2)[1])


def test_a_declared_body_over_the_limit_is_refused_before_it_is_sent(tight: Runtime) -> None:
    head = (
        f"POST {INFER.format(model=MODEL)} HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\n"
        f"content-length: {10 * LIMIT}\r\n\r\n"
    ).encode()
    response = _raw(tight, head)
    assert _status(response) == 413
    assert b"larger than 4096 bytes" in response


def test_a_chunked_body_is_refused_once_it_grows_past_the_limit(tight: Runtime) -> None:
    head = (
        f"POST {INFER.format(model=MODEL)} HTTP/1.1\r\nhost: x\r\ntransfer-encoding: chunked\r\n"
        "content-type: application/json\r\n\r\n"
    ).encode()
    chunk = b"x" * 1024
    body = b"".join(b"%x\r\n%s\r\n" % (len(chunk), chunk) for _ in range(8))
    assert _status(_raw(tight, head + body)) == 413


def test_a_batch_over_the_limit_is_400(tight: Runtime) -> None:
    from tests.v2_cases import ROWS, tensors

    many = {name: values * 5 for name, values in ROWS.items()}  # 10 rows, limit 8
    body = dumps({"inputs": tensors(many)})
    assert len(body) < LIMIT
    head = (
        f"POST {INFER.format(model=MODEL)} HTTP/1.1\r\nhost: x\r\ncontent-length: {len(body)}\r\n"
        "connection: close\r\n\r\n"
    ).encode()
    response = _raw(tight, head + body)
    assert _status(response) == 400 and b"batch" in response


def test_oversized_headers_are_refused(tight: Runtime) -> None:
    head = f"GET /v2/health/live HTTP/1.1\r\nhost: x\r\nx-junk: {'a' * 70_000}\r\n\r\n".encode()
    assert _status(_raw(tight, head)) == 400


def test_a_slow_request_times_out_and_a_full_house_is_503(tight: Runtime) -> None:
    started = time.monotonic()
    response = _raw(
        tight,
        f"POST {INFER.format(model=MODEL)} HTTP/1.1\r\nhost: x\r\ncontent-length: 100\r\n\r\n{{".encode(),
    )
    assert _status(response) == 408
    assert time.monotonic() - started < 4
    held = [socket.create_connection(("127.0.0.1", tight.port), timeout=5) for _ in range(4)]
    try:
        time.sleep(0.2)
        extra = _raw(tight, b"")  # answered at connect: sending first would meet a reset
        assert _status(extra) == 503 and b"open connections" in extra
    finally:
        for conn in held:
            conn.close()
    time.sleep(1.2)  # the held connections are gone: it answers again
    body = dumps(request())
    head = (
        f"POST {INFER.format(model=MODEL)} HTTP/1.1\r\nhost: x\r\ncontent-length: {len(body)}\r\n"
        "connection: close\r\n\r\n"
    ).encode()
    response = _raw(tight, head + body)
    assert _status(response) == 200
    assert json.loads(response.split(b"\r\n\r\n", 1)[1])["model_version"] == "v0002"


def _serve(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(SHOPFLOOR), "edge", "serve", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "COLUMNS": "200"},
        check=False,
    )


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (("--trust", "missing.yaml"), 3, "trust file not found"),
        (("--admin-token-file", "missing.token"), 3, "admin token file not found"),
        (("--admin-token-file", "weak.token"), 2, "at least 16 characters"),
        (("--version", "v0001"), 2, "--version needs --pull"),
        (("--port", "70000"), 2, "--port out of range"),
        (("--log-level", "LOUD"), 2, "--log-level must be one of"),
        (("--profile", "no-such-profile"), 3, "no-such-profile"),
    ],
)
def test_bad_options_are_one_line_errors(
    versions: SignedVersions, tmp_path: Path, args: tuple[str, ...], code: int, message: str
) -> None:
    (tmp_path / "weak.token").write_text("short\n")
    extra = () if "--trust" in args else ("--trust", str(versions.trust))
    result = _serve("--store", str(tmp_path / "store"), *extra, *args, cwd=tmp_path)
    assert result.returncode == code, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0] and "Traceback" not in result.stderr, result.stderr


def test_a_taken_port_is_one_line(versions: SignedVersions, tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = _serve(
            "--store",
            str(tmp_path / "store"),
            "--trust",
            str(versions.trust),
            "--port",
            str(port),
            "--pull",
            str(versions.registry),
            cwd=tmp_path,
        )
    assert result.returncode == 4, result.stderr
    assert f"cannot listen on 127.0.0.1:{port}" in result.stderr.strip().splitlines()[-1]
    assert "Traceback" not in result.stderr
