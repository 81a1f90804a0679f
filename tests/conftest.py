"""Shared fixtures: the real embedded data and a way to run the real CLI."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest

from shopfloor.data import loader

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def real_frame() -> pd.DataFrame:
    """The vendored AI4I 2020 table, canonicalised (a fresh copy per use is the caller's job)."""
    return loader.load().frame


def run_cli(
    *args: str, cwd: Path, timeout: float = 600, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """Run ``python -m shopfloor ARGS`` as a user would, capturing its output. The model
    registry defaults to ``cwd/registry`` so tests never touch the user's own registry."""
    env = {**os.environ, "COLUMNS": "200", "TF_CPP_MIN_LOG_LEVEL": "2",
           "SHOPFLOOR_REGISTRY": str(cwd / "registry"), **(env or {})}
    return subprocess.run(
        [sys.executable, "-m", "shopfloor", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


@pytest.fixture(scope="session")
def s3_endpoint() -> Iterator[str]:
    """One S3-protocol server (moto) on a free loopback port for the whole test session."""
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


def use_s3(monkeypatch: pytest.MonkeyPatch, endpoint: str, bucket: str, *, access: str = "testing",
           secret: str = "testing") -> None:
    """Point shopfloor's S3 client at ``endpoint`` (environment only, as in production) and
    make sure ``bucket`` exists."""
    from shopfloor.data import s3

    monkeypatch.setenv("SHOPFLOOR_S3_ENDPOINT", endpoint)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", access)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", secret)
    client = s3.client()
    if not client.bucket_exists(bucket):
        client.make_bucket(bucket)
