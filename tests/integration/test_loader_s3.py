"""s3:// data through the minio client against an S3-protocol server on loopback (moto)."""

from __future__ import annotations

import io

import pandas as pd
import pytest

from shopfloor.data import loader, s3
from tests.conftest import use_s3


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


def test_missing_object_is_named(s3_env: str) -> None:
    with pytest.raises(loader.DataLoadError, match=r"cannot read s3://plant/nope.csv: NoSuchKey"):
        loader.load("s3://plant/nope.csv")
    with pytest.raises(loader.DataLoadError, match=r"cannot read s3://plant/nope.csv: NoSuchKey"):
        loader.check_source("s3://plant/nope.csv")


def test_missing_endpoint_is_explained(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SHOPFLOOR_S3_ENDPOINT", raising=False)
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    with pytest.raises(RuntimeError, match="set SHOPFLOOR_S3_ENDPOINT"):
        loader.load("s3://plant/x.csv")
