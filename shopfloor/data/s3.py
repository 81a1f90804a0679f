"""The one S3 code path: a ``minio`` client configured from the environment.

Credentials come only from the environment (or a mounted Kubernetes secret that sets it),
never from pipeline parameters, so they never land in compiled YAML or logs.

Every S3 call goes through :func:`s3_errors`, which turns S3 and transport failures into one
line naming the endpoint (scheme, host and port: never credentials) and the problem:
a missing object or bucket is a :class:`~shopfloor.errors.NotFoundError`, everything else
(unreachable, refused, a 5xx or a non-S3 answer) an :class:`~shopfloor.errors.ExternalServiceError`.
Retries and timeouts are bounded so a dead endpoint fails within seconds: minio's defaults
(five retries, five-minute timeouts) would hold a pipeline step for minutes.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator
from urllib.parse import urlparse

from minio import Minio

from shopfloor import settings
from shopfloor.errors import ExternalServiceError, InvalidInputError, NotFoundError, bounded, excerpt

#: Seconds to establish a connection, and to wait for each read of an answer.
CONNECT_TIMEOUT_S = 3.0
READ_TIMEOUT_S = 20.0
#: Transport retries: connection failures (the request never left) and 5xx answers.
RETRIES = 2
#: Largest object read whole into memory (a sensor table): bigger is refused, not swapped.
MAX_OBJECT_BYTES = 1 << 30


class ObjectNotFoundError(NotFoundError):
    """The bucket exists but the key does not."""


class BucketNotFoundError(NotFoundError):
    """The bucket does not exist (or these credentials cannot see it)."""


def endpoint_url() -> str:
    """The configured endpoint as ``scheme://host[:port]``: what the client uses, and what
    messages name (any ``user:password@`` in the variable is dropped)."""
    raw = settings.S3_ENDPOINT.get() or settings.AWS_ENDPOINT_URL.get()
    if not raw:
        raise InvalidInputError(
            f"set {settings.S3_ENDPOINT.name} (e.g. http://minio.kubeflow:9000) to use s3:// locations")
    parsed = urlparse(raw if "://" in raw else f"http://{raw}")
    try:
        port = parsed.port
    except ValueError:
        port = -1
    if parsed.scheme not in ("http", "https") or not parsed.hostname or port == -1 \
            or any(c.isspace() for c in raw):
        raise InvalidInputError(
            f"{settings.S3_ENDPOINT.name} {excerpt(raw)} is not an http(s)://host[:port] URL")
    host = f"[{parsed.hostname}]" if ":" in parsed.hostname else parsed.hostname
    return f"{parsed.scheme}://{host}" + (f":{port}" if port is not None else "")


def client() -> Minio:
    """A minio client for :func:`endpoint_url` with AWS-style keys and bounded retries/timeouts."""
    import certifi
    import urllib3

    url = endpoint_url()
    parsed = urlparse(url)
    http = urllib3.PoolManager(
        timeout=urllib3.Timeout(connect=CONNECT_TIMEOUT_S, read=READ_TIMEOUT_S),
        maxsize=10,
        cert_reqs="CERT_REQUIRED",
        ca_certs=settings.SSL_CERT_FILE.get() or certifi.where(),
        retries=urllib3.Retry(total=RETRIES, connect=RETRIES, read=1, status=RETRIES, other=0,
                              backoff_factor=0.2, status_forcelist=(500, 502, 503, 504)),
    )
    return Minio(
        parsed.netloc,
        access_key=settings.AWS_ACCESS_KEY_ID.get(),
        secret_key=settings.AWS_SECRET_ACCESS_KEY.get(),
        region=settings.AWS_REGION.get(),
        secure=parsed.scheme == "https",
        http_client=http,
    )


def _transport_problem(exc: BaseException) -> str:
    """What went wrong on the wire, in a few words (urllib3 wraps the cause in MaxRetryError)."""
    from urllib3.exceptions import (
        ConnectTimeoutError,
        MaxRetryError,
        NewConnectionError,
        ProtocolError,
        ReadTimeoutError,
        ResponseError,
        SSLError,
    )

    cause = exc.reason if isinstance(exc, MaxRetryError) and exc.reason is not None else exc
    if isinstance(cause, ResponseError):  # status retries exhausted: "too many 502 error responses"
        status = re.search(r"\b(\d{3})\b", str(cause))
        return f"answered HTTP {status.group(1) if status else '5xx'} on all {RETRIES + 1} tries"
    if isinstance(cause, NewConnectionError):  # before its base class ConnectTimeoutError
        reason = cause.__cause__ or cause.__context__
        return f"is unreachable ({getattr(reason, 'strerror', None) or 'connection failed'})"
    if isinstance(cause, ConnectTimeoutError):
        return f"did not accept a connection within {CONNECT_TIMEOUT_S:g} s"
    if isinstance(cause, ReadTimeoutError):
        return f"did not answer within {READ_TIMEOUT_S:g} s"
    if isinstance(cause, SSLError):
        return f"TLS failed ({type(cause).__name__})"
    if isinstance(cause, ProtocolError):
        return "dropped the connection"
    return f"failed ({type(cause).__name__})"


@contextlib.contextmanager
def s3_errors(location: str, verb: str = "read") -> Iterator[None]:
    """S3 and transport errors inside the block -> one-line shopfloor errors naming
    ``location`` (``s3://bucket/key``), what was being done and the endpoint, never the
    credentials. ``verb``: read, write, list or delete."""
    from minio.error import InvalidResponseError, MinioException, S3Error, ServerError
    from urllib3.exceptions import HTTPError

    try:
        yield
    except S3Error as exc:
        if exc.code in ("NoSuchKey", "NotFound", "ResourceNotFound"):
            raise ObjectNotFoundError(bounded(f"cannot {verb} {location}: {exc.code}")) from None
        if exc.code == "NoSuchBucket":
            raise BucketNotFoundError(bounded(f"cannot {verb} {location}: NoSuchBucket")) from None
        raise ExternalServiceError(bounded(
            f"cannot {verb} {location}: S3 {exc.code} from {_endpoint_or_unknown()}")) from None
    except InvalidResponseError as exc:  # a proxy's HTML page, an empty 403, a bare 502
        status = getattr(exc, "_code", "?")
        raise ExternalServiceError(bounded(
            f"cannot {verb} {location}: S3 endpoint {_endpoint_or_unknown()} answered HTTP {status} "
            "without an S3 error document (not an S3 server, or a proxy in the way?)")) from None
    except ServerError as exc:
        raise ExternalServiceError(bounded(
            f"cannot {verb} {location}: S3 endpoint {_endpoint_or_unknown()} answered HTTP "
            f"{exc.status_code}")) from None
    except HTTPError as exc:
        raise ExternalServiceError(bounded(
            f"cannot {verb} {location}: S3 endpoint {_endpoint_or_unknown()} {_transport_problem(exc)}"
        )) from None
    except MinioException as exc:
        raise ExternalServiceError(bounded(
            f"cannot {verb} {location}: {type(exc).__name__} from S3 endpoint {_endpoint_or_unknown()}"
        )) from None


def _endpoint_or_unknown() -> str:
    try:
        return endpoint_url()
    except InvalidInputError:
        return "(unset)"


def read_object(bucket: str, key: str, max_bytes: int = MAX_OBJECT_BYTES) -> bytes:
    """Read one object whole; a missing bucket or key is a NotFoundError naming it."""
    location = f"s3://{bucket}/{key}"
    with s3_errors(location):
        response = client().get_object(bucket, key)
        try:
            data = response.read(max_bytes + 1)
        finally:
            response.close()
            response.release_conn()
    if len(data) > max_bytes:
        raise InvalidInputError(f"{location} is larger than {max_bytes} bytes")
    return data


def stat_object(bucket: str, key: str) -> None:
    """Check that an object exists and is readable with these credentials (no download)."""
    with s3_errors(f"s3://{bucket}/{key}"):
        client().stat_object(bucket, key)
