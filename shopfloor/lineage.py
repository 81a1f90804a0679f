"""Lineage manifests: every artifact directory answers "where do I come from?".

Each step writes ``manifest.json`` beside its files: data version, code version, parameters,
figures and the sha256 of every file, so a model found anywhere (registry, edge box) can be
traced to the exact data, code and decisions that let it through.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import shopfloor

MANIFEST = "manifest.json"


def code_version() -> str:
    """Git SHA of the source tree when available (image builds pass SHOPFLOOR_GIT_SHA)."""
    env = os.environ.get("SHOPFLOOR_GIT_SHA")
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


def write_text_atomic(path: Path, text: str) -> None:
    """Write via a temp file in the same directory and rename: readers never see half a file,
    and a failure leaves no temp file behind. Mode 0644: artifacts are read by other users
    (KFP UI, reviewers), while mkstemp alone would make them 0600."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


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
