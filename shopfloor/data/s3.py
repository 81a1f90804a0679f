"""The one S3 code path: a ``minio`` client configured from the environment.

Credentials come only from the environment (or a mounted Kubernetes secret that sets it),
never from pipeline parameters, so they never land in compiled YAML or logs.
"""

from __future__ import annotations

import os
from urllib.parse import urlparse

from minio import Minio
from minio.error import S3Error


def client() -> Minio:
    """A minio client from ``SHOPFLOOR_S3_ENDPOINT`` (or ``AWS_ENDPOINT_URL``) and AWS-style keys."""
    endpoint = os.environ.get("SHOPFLOOR_S3_ENDPOINT") or os.environ.get("AWS_ENDPOINT_URL")
    if not endpoint:
        raise RuntimeError("set SHOPFLOOR_S3_ENDPOINT (e.g. http://minio.kubeflow:9000) to read s3:// data")
    parsed = urlparse(endpoint if "://" in endpoint else f"http://{endpoint}")
    return Minio(
        parsed.netloc,
        access_key=os.environ.get("AWS_ACCESS_KEY_ID"),
        secret_key=os.environ.get("AWS_SECRET_ACCESS_KEY"),
        region=os.environ.get("AWS_REGION", "us-east-1"),
        secure=parsed.scheme == "https",
    )


def read_object(bucket: str, key: str) -> bytes:
    """Read one object whole; a missing bucket or key raises DataLoadError naming it."""
    from shopfloor.data.loader import DataLoadError

    try:
        response = client().get_object(bucket, key)
    except S3Error as exc:
        raise DataLoadError(f"cannot read s3://{bucket}/{key}: {exc.code}") from exc
    try:
        return response.read()
    finally:
        response.close()
        response.release_conn()


def stat_object(bucket: str, key: str) -> None:
    """Check that an object exists and is readable with these credentials (no download)."""
    from shopfloor.data.loader import DataLoadError

    try:
        client().stat_object(bucket, key)
    except S3Error as exc:
        raise DataLoadError(f"cannot read s3://{bucket}/{key}: {exc.code}") from exc
