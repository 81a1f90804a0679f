"""The admin upload's archive format: what the runtime unpacks, and every odd archive it refuses
before the store sees anything (the store then verifies the version itself)."""

from __future__ import annotations

import gzip
import io
import tarfile
from pathlib import Path

import pytest

from shopfloor.edge.server import unpack_version
from shopfloor.errors import InvalidInputError


def _tar(members: list[tuple[str, bytes | None, str]]) -> bytes:
    """(name, data, kind) with kind file | dir | symlink | fifo."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for name, data, kind in members:
            info = tarfile.TarInfo(name)
            if kind == "dir":
                info.type = tarfile.DIRTYPE
                tar.addfile(info)
            elif kind == "symlink":
                info.type, info.linkname = tarfile.SYMTYPE, "/etc/passwd"
                tar.addfile(info)
            elif kind == "fifo":
                info.type = tarfile.FIFOTYPE
                tar.addfile(info)
            else:
                payload = data or b""
                info.size = len(payload)
                tar.addfile(info, io.BytesIO(payload))
    return buffer.getvalue()


def test_a_version_directory_without_signatures_unpacks(tmp_path: Path) -> None:
    body = _tar([("v0007/manifest.json", b"{}", "file"), ("v0007/evidence/x.json", b"{}", "file")])
    version_dir, signatures = unpack_version(body, tmp_path)
    assert version_dir == tmp_path / "v0007"
    assert (version_dir / "evidence" / "x.json").read_bytes() == b"{}"
    assert signatures == []


@pytest.mark.parametrize(
    ("members", "problem"),
    [
        ([("../evil", b"x", "file"), ("v0001/a", b"x", "file")], "one version directory"),
        ([("v0001/../../evil", b"x", "file")], "could not be unpacked"),
        ([("/abs/evil", b"x", "file"), ("v0001/a", b"x", "file")], "one version directory"),
        ([("v0001/link", None, "symlink")], "not a regular file"),
        ([("v0001/pipe", None, "fifo")], "not a regular file"),
        ([("v0001/a", b"x", "file"), ("v0002/a", b"x", "file")], "one version directory"),
        ([("signatures/k.json", b"{}", "file")], "one version directory"),
    ],
)
def test_odd_archives_are_refused(
    tmp_path: Path, members: list[tuple[str, bytes | None, str]], problem: str
) -> None:
    with pytest.raises(InvalidInputError, match=problem):
        unpack_version(_tar(members), tmp_path / "out")
    assert not (tmp_path / "evil").exists()


def test_compressed_truncated_and_non_tar_bodies_are_refused(tmp_path: Path) -> None:
    good = _tar([("v0001/a", b"x" * 4096, "file")])
    for body in (gzip.compress(good), good[:700], b"not a tar at all" * 64, b""):
        with pytest.raises(InvalidInputError, match="tar"):
            unpack_version(body, tmp_path / "out")


def test_a_bad_signature_document_is_refused_by_name(tmp_path: Path) -> None:
    from shopfloor.errors import IntegrityError

    body = _tar([("v0001/a", b"x", "file"), ("signatures/0123456789abcdef.json", b"not json", "file")])
    with pytest.raises(IntegrityError, match=r"signatures/0123456789abcdef\.json"):
        unpack_version(body, tmp_path / "out")
