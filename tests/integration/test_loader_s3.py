"""s3:// data through the minio client against an S3-protocol server on loopback (moto), and
against endpoints that are dead or answer like a broken proxy (issue 7 item 6)."""

from __future__ import annotations

import io
import time

import pandas as pd
import pytest

from shopfloor.data import loader, s3
from shopfloor.errors import ExternalServiceError, InvalidInputError, NotFoundError
from tests.conftest import use_s3
from tests.fixtures.endpoints import answering, dead_endpoint


@pytest.fixture
def s3_env(s3_endpoint: str, monkeypatch: pytest.MonkeyPatch) -> str:
    use_s3(monkeypatch, s3_endpoint, "plant")
    return s3_endpoint


def test_s3_csv_and_parquet_load_like_local(s3_env: str, real_frame: pd.DataFrame) -> None:
    client = s3.client()
    csv = loader.embedded_path().read_bytes()
    client.put_object("plant", "line1/ai4i.csv", io.BytesIO(csv), len(csv))
    buf = io.BytesIO()
    real_frame.to_parquet(buf, index=False)
    client.put_object("plant", "line1/ai4i.parquet", io.BytesIO(buf.getvalue()), len(buf.getvalue()))
    from_csv = loader.load("s3://plant/line1/ai4i.csv")
    from_parquet = loader.load("s3://plant/line1/ai4i.parquet")
    assert from_csv.version == from_parquet.version == loader.load().version
    pd.testing.assert_frame_equal(from_csv.frame, real_frame)


def test_missing_object_and_bucket_are_named(s3_env: str) -> None:
    with pytest.raises(NotFoundError, match=r"cannot read s3://plant/nope\.csv: NoSuchKey"):
        loader.load("s3://plant/nope.csv")
    with pytest.raises(NotFoundError, match=r"cannot read s3://plant/nope\.csv: NoSuchKey"):
        loader.check_source("s3://plant/nope.csv")
    with pytest.raises(NotFoundError, match="NoSuchBucket"):
        s3.read_object("no-such-bucket", "x.csv")


def test_an_object_over_the_size_limit_is_refused(s3_env: str) -> None:
    s3.client().put_object("plant", "big.csv", io.BytesIO(b"x" * 2048), 2048)
    with pytest.raises(InvalidInputError, match="larger than 1024 bytes"):
        s3.read_object("plant", "big.csv", max_bytes=1024)
    assert s3.read_object("plant", "big.csv", max_bytes=2048) == b"x" * 2048


def test_missing_endpoint_is_explained(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SHOPFLOOR_S3_ENDPOINT", raising=False)
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    with pytest.raises(InvalidInputError, match="set SHOPFLOOR_S3_ENDPOINT"):
        loader.load("s3://plant/x.csv")


def _refused(call: object, endpoint: str, *words: str) -> None:
    start = time.monotonic()
    with pytest.raises(ExternalServiceError) as info:
        call()  # type: ignore[operator]
    assert time.monotonic() - start < 10, "retries/timeouts are not bounded"
    message = str(info.value)
    assert "\n" not in message and endpoint in message and "s3://plant/x.csv" in message, message
    assert all(w in message for w in words), message
    assert "testing-secret" not in message and info.value.exit_code == 7


def _credentials(monkeypatch: pytest.MonkeyPatch, endpoint: str) -> None:
    monkeypatch.setenv("SHOPFLOOR_S3_ENDPOINT", endpoint)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing-secret")


def test_dead_endpoint_is_one_line_naming_it(monkeypatch: pytest.MonkeyPatch) -> None:
    endpoint = dead_endpoint()
    _credentials(monkeypatch, endpoint)
    for call in (lambda: s3.read_object("plant", "x.csv"), lambda: s3.stat_object("plant", "x.csv"),
                 lambda: loader.check_source("s3://plant/x.csv"), lambda: loader.load("s3://plant/x.csv")):
        _refused(call, endpoint, "unreachable")


@pytest.mark.parametrize("status, body", [(502, b"<html>Bad Gateway</html>"), (403, b""), (500, b"")])
def test_endpoint_answering_like_a_broken_proxy(monkeypatch: pytest.MonkeyPatch, status: int,
                                                body: bytes) -> None:
    with answering(status, body) as server:
        _credentials(monkeypatch, server.url)
        _refused(lambda: loader.load("s3://plant/x.csv"), server.url, str(status))
        _refused(lambda: loader.check_source("s3://plant/x.csv"), server.url)


def test_run_on_a_dead_data_endpoint_is_one_line_exit_7(monkeypatch: pytest.MonkeyPatch) -> None:
    from typer.testing import CliRunner

    from shopfloor.cli import app

    endpoint = dead_endpoint()
    _credentials(monkeypatch, endpoint)
    result = CliRunner().invoke(app, ["run", "--data", "s3://plant/x.csv"], env={"COLUMNS": "200"})
    lines = [ln for ln in result.output.splitlines() if ln.strip()]
    assert result.exit_code == 7, result.output
    assert any(ln.startswith("error:") and endpoint in ln for ln in lines)
    assert "Traceback" not in result.output
