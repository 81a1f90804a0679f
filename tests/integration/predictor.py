"""Run the real predictor (``python -m shopfloor.serving``) in a subprocess on free loopback ports.

Shared by the serving integration tests: each gets its own process (own event loop, own
metrics registry), flags as a user passes them, and the log file to check what it wrote.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

MODEL = "ai4i-failure"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass(frozen=True)
class Predictor:
    url: str
    grpc: str
    http_port: int
    grpc_port: int
    proc: subprocess.Popen[bytes]
    log_path: Path

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")


@contextlib.contextmanager
def running_predictor(
    version_dir: Path, log_dir: Path, *flags: str, timeout: float = 60
) -> Iterator[Predictor]:
    """Start the predictor on ``version_dir`` with ``flags``; stop it (SIGTERM) afterwards."""
    http_port, grpc_port = free_port(), free_port()
    log_path = log_dir / f"predictor-{http_port}.log"
    log = log_path.open("wb")  # a file, not a pipe: an unread pipe fills up and blocks the server
    cmd = [sys.executable, "-m", "shopfloor.serving", "--model-dir", str(version_dir), "--model-name", MODEL,
           "--http-port", str(http_port), "--grpc-port", str(grpc_port), "--log-level", "WARNING", *flags]
    proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT,
                            env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"})
    url = f"http://127.0.0.1:{http_port}"
    deadline = time.monotonic() + timeout
    try:
        while True:
            if proc.poll() is not None:
                out = log_path.read_text(errors="replace")[-5000:]
                pytest.fail(f"predictor exited with {proc.returncode}:\n{out}")
            try:
                if httpx.get(f"{url}/v2/health/ready", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"predictor did not become ready in {timeout:.0f} s")
            time.sleep(0.2)
        yield Predictor(url, f"127.0.0.1:{grpc_port}", http_port, grpc_port, proc, log_path)
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()
