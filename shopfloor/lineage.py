"""Lineage manifests: every artifact directory answers "where do I come from?".

Each step writes ``manifest.json`` beside its files: data version, code version, parameters,
figures and the sha256 of every file, so a model found anywhere (registry, edge box) can be
traced to the exact data, code and decisions that let it through.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import os
import stat
import subprocess
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, BinaryIO

import shopfloor
from shopfloor.contract import MANIFEST
from shopfloor.settings import GIT_SHA

#: Mode of every file shopfloor writes (artifacts, lineage manifests, reports, registry
#: objects, fetched versions): 0644, further masked by the process umask (so 0644 under the
#: usual 022, 0640 under 027). Artifacts are read by other users (the serving user of a
#: registry on a shared mount, reviewers, the KFP UI), so no file is private by accident
#: (``tempfile.mkstemp`` alone would make it 0600) and none is writable by others.
#: Directories get 0777 masked by the umask, as ``mkdir`` makes them.
FILE_MODE = 0o644


def code_version() -> str:
    """Git SHA of the source tree when available (image builds pass SHOPFLOOR_GIT_SHA)."""
    env = GIT_SHA.get()
    if env:
        return env
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            cwd=Path(shopfloor.__file__).parent,
            capture_output=True,
            text=True,
            timeout=5,
            check=True,
        )
        return out.stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return f"shopfloor-{shopfloor.__version__}"


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def file_hashes(directory: Path) -> dict[str, str]:
    """sha256 of every file below ``directory`` (relative POSIX paths), manifest excluded."""
    root = Path(directory)
    return {
        p.relative_to(root).as_posix(): sha256_file(p)
        for p in sorted(root.rglob("*"))
        if p.is_file() and p.name != MANIFEST
    }


class NotRegularFileError(OSError):
    """``path`` cannot be read as a regular file; ``kind`` says why, for the caller's message:
    ``missing``, ``link`` (a symbolic link), ``special`` (FIFO, device, directory, socket) or
    ``unreadable`` (``strerror`` says why)."""

    def __init__(self, kind: str, path: Path, strerror: str = "") -> None:
        super().__init__(strerror or kind)
        self.kind = kind
        self.path = path
        self.strerror = strerror


def open_regular(path: Path) -> int:
    """A read descriptor of ``path`` only if it is a regular file: never follows a final
    symbolic link and never blocks on a FIFO (what a hostile run or store directory may hold).
    Anything else is a :class:`NotRegularFileError`."""
    flags = os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)
    try:
        fd = os.open(path, flags)
    except FileNotFoundError:
        raise NotRegularFileError("missing", Path(path)) from None
    except OSError as exc:
        kind = "link" if exc.errno == errno.ELOOP else "unreadable"
        raise NotRegularFileError(kind, Path(path), exc.strerror or "") from None
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise NotRegularFileError("special", Path(path))
    os.set_blocking(fd, True)
    return fd


def create_new(path: Path) -> BinaryIO:
    """Create ``path`` (it must not exist, and is never a link) with :data:`FILE_MODE` for
    writing. Only for files staged in a private directory that is itself renamed into place
    (a registry fetch): everything else goes through :func:`atomic_writer`."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)
    return os.fdopen(os.open(path, flags, FILE_MODE), "wb")


@contextlib.contextmanager
def atomic_writer(path: Path) -> Iterator[BinaryIO]:
    """The one way shopfloor writes a file: a temp file beside ``path``, fsync, rename.

    Readers see the old file or the new one, never half of one; on any failure the temp
    file is removed and ``path`` is untouched. The file is created with :data:`FILE_MODE`
    (the kernel applies the umask), and never through a symbolic link.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.parent / f".{path.name}.{uuid.uuid4().hex[:12]}.tmp"
    try:
        with create_new(tmp) as fh:
            yield fh
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def write_bytes_atomic(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically (see :func:`atomic_writer`)."""
    with atomic_writer(path) as fh:
        fh.write(data)


def copy_file_atomic(source: Path, path: Path) -> None:
    """Copy the regular file ``source`` to ``path`` atomically, streamed (see :func:`atomic_writer`)."""
    with open(source, "rb") as src, atomic_writer(path) as fh:
        while chunk := src.read(1 << 20):
            fh.write(chunk)


def write_text_atomic(path: Path, text: str) -> None:
    """Write UTF-8 ``text`` to ``path`` atomically (see :func:`atomic_writer`)."""
    write_bytes_atomic(path, text.encode("utf-8"))


def write_json_atomic(path: Path, payload: Any) -> None:
    """JSON (sorted keys) written atomically; serialised first, so a bad payload writes nothing."""
    write_text_atomic(path, json.dumps(payload, indent=2, sort_keys=True, default=str) + "\n")


def write_manifest(directory: Path, kind: str, *, data_version: str, **fields: Any) -> dict[str, Any]:
    """Write the manifest of an artifact directory, hashing the files it holds now."""
    manifest = {
        "kind": kind,
        "data_version": data_version,
        "code_version": code_version(),
        "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
        **fields,
        "files": file_hashes(directory),
    }
    write_json_atomic(Path(directory) / MANIFEST, manifest)
    return manifest


def read_manifest(directory: Path) -> dict[str, Any]:
    return json.loads((Path(directory) / MANIFEST).read_text())
