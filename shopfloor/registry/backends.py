"""Storage backends for the model registry: one small interface, a table of implementations.

The registry needs only whole-object operations plus ONE atomic primitive,
``write_if(key, data, token)``: create-if-absent (``token=None``) or replace-if-unchanged
(``token`` from ``read_versioned``). Version allocation, the manifest-last commit and alias
moves are all built on it, so every backend gives the same guarantees:

* ``FilesystemBackend``: the compare and the write happen under an exclusive ``fcntl.flock``
  on a per-key lock file; the write is :func:`shopfloor.lineage.atomic_writer` (temp file,
  fsync, rename; mode 0644 masked by the umask, like every artifact), so readers see the old
  or the new document, never half of one. flock (not POSIX ``lockf``) also excludes threads
  of one process, since each call opens its own file description. Objects are never read
  through a symbolic link.
* ``S3Backend``: S3 conditional writes, ``If-None-Match: *`` to create and ``If-Match: <etag>``
  to replace (AWS S3 since 2024, MinIO, moto). A lost race is a 412 ``PreconditionFailed`` and
  the caller re-reads and retries. minio-py 7.2 has no public parameter for these headers, so
  the request goes through its ``_put_object`` (headers passed verbatim, signed as usual).

A backend is chosen by the scheme of the registry location from :data:`BACKENDS` (a plain
path is ``file``); another store (e.g. an edge site's mirror) plugs in as one more entry.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import hashlib
import io
import os
import re
import stat
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from shopfloor.errors import IntegrityError, excerpt
from shopfloor.lineage import FILE_MODE, copy_file_atomic, create_new, write_bytes_atomic
from shopfloor.registry.errors import InvalidNameError, StorageError

_LOCKS = ".locks"
#: Longest registry location accepted (a path or URI), and longest object key.
MAX_LOCATION_CHARS = 1024
#: S3 bucket names (lowercase letters, digits, dots, hyphens; 3-63 characters).
_BUCKET = re.compile(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]")


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
        """Copy one object to the new file ``path`` (in a staging directory the caller renames
        into place); a missing key raises ``FileNotFoundError``."""
        ...

    def read(self, key: str, max_bytes: int | None = None) -> bytes | None:
        """Whole object, or None when absent; more than ``max_bytes`` is an IntegrityError."""
        ...

    def read_versioned(self, key: str, max_bytes: int | None = None) -> tuple[bytes, str] | None:
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
    if (not key or len(key) > MAX_LOCATION_CHARS or key.startswith("/")
            or any(p in ("", ".", "..") for p in parts) or not key.isprintable()):
        raise InvalidNameError(f"invalid registry key {excerpt(key)}")
    return key


def _too_big(where: str, max_bytes: int) -> IntegrityError:
    return IntegrityError(f"{where} is larger than {max_bytes} bytes: refused", where)


class FilesystemBackend:
    """The embedded registry: a directory tree (local disk or a shared mount)."""

    def __init__(self, root: Path | str) -> None:
        self.root = Path(root).expanduser().resolve()
        if self.root.exists() and not self.root.is_dir():
            raise InvalidNameError(f"registry location {self.root} exists and is not a directory")

    def describe(self) -> str:
        return str(self.root)

    def _path(self, key: str) -> Path:
        return self.root.joinpath(*_check_key(key).split("/"))

    @contextlib.contextmanager
    def _storage(self, key: str, verb: str) -> Iterator[None]:
        """OS errors -> StorageError naming the object and the reason (no traceback)."""
        try:
            yield
        except OSError as exc:
            if exc.errno == errno.ELOOP:
                raise IntegrityError(f"{self.root}/{key} is a symbolic link: refused", key) from None
            raise StorageError(f"cannot {verb} {self.root}/{key}: {exc.strerror or exc}") from None

    def put(self, key: str, data: bytes) -> None:
        with self._storage(key, "write"):
            write_bytes_atomic(self._path(key), data)

    def upload(self, key: str, path: Path) -> None:
        with self._storage(key, "write"):
            copy_file_atomic(path, self._path(key))

    def _open(self, key: str) -> int | None:
        """A read descriptor of a regular file, never through a final symbolic link; None if absent."""
        try:
            flags = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)
            fd = os.open(self._path(key), flags)
        except (FileNotFoundError, NotADirectoryError):
            return None
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            os.close(fd)
            raise IntegrityError(f"{self.root}/{key} is not a regular file", key)
        return fd

    def download(self, key: str, path: Path) -> None:
        with self._storage(key, "read"):
            fd = self._open(key)
            if fd is None:
                raise FileNotFoundError(key)
            with os.fdopen(fd, "rb") as src, create_new(path) as fh:
                while chunk := src.read(1 << 20):
                    fh.write(chunk)

    def read(self, key: str, max_bytes: int | None = None) -> bytes | None:
        with self._storage(key, "read"):
            fd = self._open(key)
            if fd is None:
                return None
            with os.fdopen(fd, "rb") as fh:
                data = fh.read() if max_bytes is None else fh.read(max_bytes + 1)
        if max_bytes is not None and len(data) > max_bytes:
            raise _too_big(key, max_bytes)
        return data

    def read_versioned(self, key: str, max_bytes: int | None = None) -> tuple[bytes, str] | None:
        data = self.read(key, max_bytes)
        return None if data is None else (data, hashlib.sha256(data).hexdigest())

    @contextlib.contextmanager
    def _locked(self, key: str) -> Iterator[None]:
        lock_dir = self.root / _LOCKS
        name = hashlib.sha256(key.encode()).hexdigest()[:32] + ".lock"
        with self._storage(f"{_LOCKS}/{name}", "lock"):
            lock_dir.mkdir(parents=True, exist_ok=True)
            # Read-only is enough for flock, so a lock file another user created still works.
            fd = os.open(lock_dir / name, os.O_RDONLY | os.O_CREAT | getattr(os, "O_CLOEXEC", 0), FILE_MODE)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(fd, fcntl.LOCK_UN)
        finally:
            os.close(fd)

    def write_if(self, key: str, data: bytes, token: str | None) -> bool:
        path = self._path(key)
        with self._locked(key):
            current = self.read_versioned(key)
            if (current is None) != (token is None) or (current is not None and current[1] != token):
                return False
            with self._storage(key, "write"):
                write_bytes_atomic(path, data)
            return True

    def list(self, prefix: str) -> dict[str, int]:
        """Every object below ``prefix``. Symbolic links and other non-regular entries are
        listed too (with their own size), so a planted link shows up as an object the
        manifest does not know, instead of being followed or silently skipped."""
        base = self._path(prefix.rstrip("/")) if prefix.strip("/") else self.root
        out: dict[str, int] = {}
        with self._storage(prefix or ".", "list"):
            if not base.is_dir() or base.is_symlink():
                return {}
            for dirpath, dirnames, filenames in os.walk(base):  # does not descend into links
                here = Path(dirpath)
                rel_dir = here.relative_to(self.root)
                if any(part.startswith(".") for part in rel_dir.parts):
                    dirnames.clear()
                    continue  # temp files and locks are not objects
                linked = [d for d in dirnames if (here / d).is_symlink()]
                for name in (*filenames, *linked):
                    if name.startswith("."):
                        continue
                    out[(rel_dir / name).as_posix()] = (here / name).lstat().st_size
        return out

    def delete(self, key: str) -> None:
        with self._storage(key, "delete"), contextlib.suppress(FileNotFoundError):
            self._path(key).unlink()


class S3Backend:
    """The registry in an S3 bucket (MinIO in-cluster), through the project's minio client.

    Errors become one-line shopfloor errors naming the object (and, for transport problems,
    the endpoint), never the credentials: see :func:`shopfloor.data.s3.s3_errors`.
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

    def _errors(self, key: str, verb: str) -> contextlib.AbstractContextManager[None]:
        from shopfloor.data.s3 import s3_errors

        return s3_errors(f"{self.describe()}/{key}", verb)

    def put(self, key: str, data: bytes) -> None:
        with self._errors(key, "write"):
            self.client.put_object(self.bucket, self._name(key), io.BytesIO(data), len(data))

    def upload(self, key: str, path: Path) -> None:
        with self._errors(key, "write"):
            self.client.fput_object(self.bucket, self._name(key), str(path))

    def download(self, key: str, path: Path) -> None:
        from shopfloor.data.s3 import ObjectNotFoundError

        try:
            with self._errors(key, "read"):  # one GET streamed to disk (fget_object adds a HEAD)
                response = self.client.get_object(self.bucket, self._name(key))
                try:
                    with create_new(path) as fh:
                        for chunk in response.stream(1 << 20):
                            fh.write(chunk)
                finally:
                    response.close()
                    response.release_conn()
        except ObjectNotFoundError:
            raise FileNotFoundError(key) from None

    def read_versioned(self, key: str, max_bytes: int | None = None) -> tuple[bytes, str] | None:
        from shopfloor.data.s3 import ObjectNotFoundError

        try:
            with self._errors(key, "read"):
                response = self.client.get_object(self.bucket, self._name(key))
                try:
                    data = response.read() if max_bytes is None else response.read(max_bytes + 1)
                    token = response.headers.get("ETag", "").strip('"')
                finally:
                    response.close()
                    response.release_conn()
        except ObjectNotFoundError:
            return None
        if max_bytes is not None and len(data) > max_bytes:
            raise _too_big(key, max_bytes)
        return data, token

    def read(self, key: str, max_bytes: int | None = None) -> bytes | None:
        got = self.read_versioned(key, max_bytes)
        return None if got is None else got[0]

    def write_if(self, key: str, data: bytes, token: str | None) -> bool:
        from minio.error import S3Error

        headers = {"Content-Type": "application/json"}
        headers.update({"If-None-Match": "*"} if token is None else {"If-Match": f'"{token}"'})
        with self._errors(key, "write"):
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
        with self._errors(prefix.strip("/") or "", "list"):
            return {
                obj.object_name[cut:]: int(obj.size or 0)
                for obj in self.client.list_objects(self.bucket, prefix=full, recursive=True)
                if not obj.is_dir
            }

    def delete(self, key: str) -> None:
        with self._errors(key, "delete"):
            self.client.remove_object(self.bucket, self._name(key))


# -- choosing a backend by location ---------------------------------------------------------------
#: Makes a backend from what follows ``<scheme>://`` in a registry location.
BackendFactory = Callable[[str], Backend]


def _filesystem(rest: str) -> Backend:
    if not rest:
        raise InvalidNameError("registry URI file:// has no path")
    return FilesystemBackend(rest)


def _s3(rest: str) -> Backend:
    bucket, _, prefix = rest.partition("/")
    if not bucket:
        raise InvalidNameError(f"registry URI s3://{excerpt(rest)} has no bucket (expected s3://bucket/prefix)")
    if not _BUCKET.fullmatch(bucket):
        raise InvalidNameError(f"registry URI s3://{excerpt(rest)}: {excerpt(bucket)} is not an S3 bucket "
                               "name (3-63 lowercase letters, digits, '.', '-')")
    parts = [p for p in prefix.split("/") if p]
    if any(p in (".", "..") for p in parts):
        raise InvalidNameError(f"registry URI s3://{excerpt(rest)}: '.' and '..' cannot be in the prefix")
    return S3Backend(bucket, "/".join(parts))


#: URI scheme -> backend factory. A location without ``://`` is a filesystem path.
BACKENDS: dict[str, BackendFactory] = {"file": _filesystem, "s3": _s3}


def backend_for(location: str | Path) -> Backend:
    """The backend for a registry location: ``s3://bucket/prefix``, ``file://path`` or a path."""
    loc = str(location)
    if not loc or len(loc) > MAX_LOCATION_CHARS or not loc.isprintable():
        raise InvalidNameError(f"invalid registry location {excerpt(loc)}: empty, too long, or holds "
                               "control characters")
    scheme, sep, rest = loc.partition("://")
    if not sep:
        return FilesystemBackend(loc)
    factory = BACKENDS.get(scheme)
    if factory is None:
        raise InvalidNameError(f"unsupported registry URI {excerpt(loc)}: use a path or one of "
                               f"{', '.join(f'{s}://' for s in sorted(BACKENDS))}")
    return factory(rest)
