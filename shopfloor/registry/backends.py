"""Storage backends for the model registry: one small interface, two implementations.

The registry needs only whole-object operations plus ONE atomic primitive,
``write_if(key, data, token)``: create-if-absent (``token=None``) or replace-if-unchanged
(``token`` from ``read_versioned``). Version allocation, the manifest-last commit and alias
moves are all built on it, so both backends give the same guarantees:

* ``FilesystemBackend``: the compare and the write happen under an exclusive ``fcntl.flock``
  on a per-key lock file; the write is temp file + ``os.replace``, so readers see the old or
  the new document, never half of one. flock (not POSIX ``lockf``) also excludes threads of
  one process, since each call opens its own file description.
* ``S3Backend``: S3 conditional writes, ``If-None-Match: *`` to create and ``If-Match: <etag>``
  to replace (AWS S3 since 2024, MinIO, moto). A lost race is a 412 ``PreconditionFailed`` and
  the caller re-reads and retries. minio-py 7.2 has no public parameter for these headers, so
  the request goes through its ``_put_object`` (headers passed verbatim, signed as usual).
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import io
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

_LOCKS = ".locks"


@runtime_checkable
class Backend(Protocol):
    """Object storage as the registry sees it: ``/``-separated keys below one root."""

    def describe(self) -> str:
        """Where the registry lives, for messages (never credentials)."""
        ...

    def put(self, key: str, data: bytes) -> None:
        """Unconditional whole-object write (used for immutable, freshly reserved keys)."""
        ...

    def upload(self, key: str, path: Path) -> None: ...

    def download(self, key: str, path: Path) -> None:
        """Copy one object to ``path``; a missing key raises ``FileNotFoundError``."""
        ...

    def read(self, key: str) -> bytes | None:
        """Whole object, or None when absent."""
        ...

    def read_versioned(self, key: str) -> tuple[bytes, str] | None:
        """Object and its change token (for ``write_if``), or None when absent."""
        ...

    def write_if(self, key: str, data: bytes, token: str | None) -> bool:
        """Atomically write when the object is absent (token None) or unchanged; else False."""
        ...

    def list(self, prefix: str) -> dict[str, int]:
        """Every object below ``prefix`` (recursive): key -> size in bytes."""
        ...

    def delete(self, key: str) -> None: ...


def _check_key(key: str) -> str:
    parts = key.split("/")
    if not key or key.startswith("/") or any(p in ("", ".", "..") for p in parts):
        raise ValueError(f"invalid registry key {key!r}")
    return key


class FilesystemBackend:
    """The embedded registry: a directory tree (local disk or a shared mount)."""

    def __init__(self, root: Path | str) -> None:
        self.root = Path(root).expanduser().resolve()

    def describe(self) -> str:
        return str(self.root)

    def _path(self, key: str) -> Path:
        return self.root.joinpath(*_check_key(key).split("/"))

    def _replace(self, path: Path, write: Any) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.tmp-")
        try:
            with os.fdopen(fd, "wb") as fh:
                write(fh)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, path)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise

    def put(self, key: str, data: bytes) -> None:
        self._replace(self._path(key), lambda fh: fh.write(data))

    def upload(self, key: str, path: Path) -> None:
        def copy(fh: Any) -> None:
            with open(path, "rb") as src:
                shutil.copyfileobj(src, fh, 1 << 20)

        self._replace(self._path(key), copy)

    def download(self, key: str, path: Path) -> None:
        src = self._path(key)
        if not src.is_file():
            raise FileNotFoundError(key)
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(src, path)

    def read(self, key: str) -> bytes | None:
        try:
            return self._path(key).read_bytes()
        except (FileNotFoundError, NotADirectoryError):
            return None

    def read_versioned(self, key: str) -> tuple[bytes, str] | None:
        data = self.read(key)
        return None if data is None else (data, hashlib.sha256(data).hexdigest())

    @contextlib.contextmanager
    def _locked(self, key: str) -> Iterator[None]:
        lock_dir = self.root / _LOCKS
        lock_dir.mkdir(parents=True, exist_ok=True)
        name = hashlib.sha256(key.encode()).hexdigest()[:32] + ".lock"
        with open(lock_dir / name, "a+b") as fh:
            fcntl.flock(fh.fileno(), fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(fh.fileno(), fcntl.LOCK_UN)

    def write_if(self, key: str, data: bytes, token: str | None) -> bool:
        path = self._path(key)
        with self._locked(key):
            current = self.read_versioned(key)
            if (current is None) != (token is None) or (current is not None and current[1] != token):
                return False
            self._replace(path, lambda fh: fh.write(data))
            return True

    def list(self, prefix: str) -> dict[str, int]:
        base = self._path(prefix.rstrip("/")) if prefix.strip("/") else self.root
        if not base.is_dir():
            return {}
        out: dict[str, int] = {}
        for p in base.rglob("*"):
            rel = p.relative_to(self.root)
            if any(part.startswith(".") for part in rel.parts) or not p.is_file():
                continue  # temp files and locks are not objects
            out[rel.as_posix()] = p.stat().st_size
        return out

    def delete(self, key: str) -> None:
        with contextlib.suppress(FileNotFoundError):
            self._path(key).unlink()


class S3Backend:
    """The registry in an S3 bucket (MinIO in-cluster), through the project's minio client.

    Errors become ``OSError("S3 <code> on s3://bucket/prefix/key")``: the location and the
    S3 error code, never the endpoint credentials.
    """

    def __init__(self, bucket: str, prefix: str = "", client: Any = None) -> None:
        if client is None:
            from shopfloor.data.s3 import client as make_client

            client = make_client()
        self.client = client
        self.bucket = bucket
        self.prefix = prefix.strip("/")

    def describe(self) -> str:
        return f"s3://{self.bucket}/{self.prefix}".rstrip("/")

    def _name(self, key: str) -> str:
        _check_key(key)
        return f"{self.prefix}/{key}" if self.prefix else key

    @contextlib.contextmanager
    def _errors(self, key: str, missing: type[Exception] | None = None) -> Iterator[None]:
        """S3 and transport errors -> OSError naming the object; NoSuchKey -> ``missing``."""
        from minio.error import S3Error
        from urllib3.exceptions import HTTPError

        try:
            yield
        except S3Error as exc:
            if missing is not None and exc.code in ("NoSuchKey", "NotFound"):
                raise missing(key) from None
            raise OSError(f"S3 {exc.code} on {self.describe()}/{key}") from None
        except HTTPError as exc:
            raise OSError(f"S3 endpoint unreachable for {self.describe()}: {type(exc).__name__}") from None

    def put(self, key: str, data: bytes) -> None:
        with self._errors(key):
            self.client.put_object(self.bucket, self._name(key), io.BytesIO(data), len(data))

    def upload(self, key: str, path: Path) -> None:
        with self._errors(key):
            self.client.fput_object(self.bucket, self._name(key), str(path))

    def download(self, key: str, path: Path) -> None:
        with self._errors(key, FileNotFoundError):  # one GET streamed to disk (fget_object adds a HEAD)
            response = self.client.get_object(self.bucket, self._name(key))
            try:
                Path(path).parent.mkdir(parents=True, exist_ok=True)
                with open(path, "wb") as fh:
                    for chunk in response.stream(1 << 20):
                        fh.write(chunk)
            finally:
                response.close()
                response.release_conn()

    def read_versioned(self, key: str) -> tuple[bytes, str] | None:
        try:
            with self._errors(key, LookupError):
                response = self.client.get_object(self.bucket, self._name(key))
                try:
                    return response.read(), response.headers.get("ETag", "").strip('"')
                finally:
                    response.close()
                    response.release_conn()
        except LookupError:
            return None

    def read(self, key: str) -> bytes | None:
        got = self.read_versioned(key)
        return None if got is None else got[0]

    def write_if(self, key: str, data: bytes, token: str | None) -> bool:
        from minio.error import S3Error

        headers = {"Content-Type": "application/json"}
        headers.update({"If-None-Match": "*"} if token is None else {"If-Match": f'"{token}"'})
        with self._errors(key):
            try:
                # Private in minio 7.2 (pinned <7.3): put_object would turn these into x-amz-meta-*.
                self.client._put_object(self.bucket, self._name(key), data, headers=headers)
            except S3Error as exc:
                # 412: condition failed; 409: concurrent conditional write; 404: If-Match on a gone key.
                if exc.code in ("PreconditionFailed", "ConditionalRequestConflict", "NoSuchKey"):
                    return False
                raise
        return True

    def list(self, prefix: str) -> dict[str, int]:
        if prefix.strip("/"):
            full = self._name(prefix.strip("/")) + "/"
        else:
            full = f"{self.prefix}/" if self.prefix else ""
        cut = len(self.prefix) + 1 if self.prefix else 0
        with self._errors(prefix):
            return {
                obj.object_name[cut:]: int(obj.size or 0)
                for obj in self.client.list_objects(self.bucket, prefix=full, recursive=True)
                if not obj.is_dir
            }

    def delete(self, key: str) -> None:
        with self._errors(key):
            self.client.remove_object(self.bucket, self._name(key))
