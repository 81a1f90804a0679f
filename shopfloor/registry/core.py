"""The model registry: immutable, verified model versions plus per-environment aliases.

Storage layout below the backend root (filesystem directory or ``s3://bucket/prefix``)::

    <model>/<version>/...                 the version (layout: shopfloor.registry.assemble)
    <model>/_reservations/<version>       version id claim (create-if-absent)
    <model>/_aliases/<env>/<alias>.json   alias document: current version + full history

Guarantees (both backends, via ``Backend.write_if``):

* Version ids ("v0001", ...) are claimed by an atomic create-if-absent reservation before any
  byte is uploaded, so two publishers never write into the same version and an id is never
  reused, even after a failed publish.
* ``manifest.json`` is uploaded LAST and created-if-absent; a version without a manifest
  (upload in progress or abandoned) is invisible to ``list_versions``/``show``/``fetch``.
* ``fetch`` verifies every file's size and sha256 in a temporary directory beside ``dest``
  and renames it into place only when all match: ``dest`` holds a verified copy or nothing.
* An alias moves by compare-and-swap of its one JSON document (re-read, apply, conditional
  write, retry on conflict), then re-reads to verify its history entry survived, so
  concurrent moves are serialised and no history entry is lost.
"""

from __future__ import annotations

import json
import os
import random
import re
import shutil
import tempfile
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path, PurePosixPath
from typing import Any

from shopfloor.lineage import MANIFEST, code_version, sha256_file
from shopfloor.registry.assemble import describe_version
from shopfloor.registry.backends import Backend, FilesystemBackend, S3Backend
from shopfloor.registry.errors import (
    AliasError,
    AssemblyError,
    IntegrityError,
    RegistryError,
    VersionExistsError,
    VersionNotFoundError,
)

DEFAULT_MODEL = "ai4i-failure"
#: Embedded default: per user, independent of the working directory, so ``shopfloor serve``
#: finds what ``shopfloor models register`` stored from anywhere. SHOPFLOOR_REGISTRY overrides.
DEFAULT_ROOT = Path("~/.shopfloor/registry")
ENV_VAR = "SHOPFLOOR_REGISTRY"
SCHEMA = 1
#: Alias names the project moves: a registered model starts as candidate, serves as champion.
CANDIDATE = "candidate"
CHAMPION = "champion"

_VERSION = re.compile(r"^v(\d{4,})$")
_NAME = re.compile(r"^[a-z0-9][a-z0-9._-]{0,62}$")


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="microseconds")


def _dumps(payload: Any) -> bytes:
    return (json.dumps(payload, indent=2, sort_keys=True) + "\n").encode()


def _check_name(value: str, what: str) -> str:
    if not isinstance(value, str) or not _NAME.match(value):
        raise ValueError(f"invalid {what} {value!r}: use lowercase letters, digits, '.', '_', '-'")
    return value


def check_version(version: str) -> str:
    """Version ids are ``v`` + at least four digits; anything else is unknown by definition."""
    if not isinstance(version, str) or not _VERSION.match(version):
        raise VersionNotFoundError(f"invalid version name {version!r}: expected v0001, v0002, ...")
    return version


def _safe_rel(rel: str) -> bool:
    p = PurePosixPath(rel)
    return bool(rel) and not p.is_absolute() and ".." not in p.parts and rel != MANIFEST


class Registry:
    """One model's versions and aliases on a storage backend."""

    def __init__(self, backend: Backend, model_name: str = DEFAULT_MODEL) -> None:
        self.backend = backend
        self.model = _check_name(model_name, "model name")

    def __repr__(self) -> str:
        return f"Registry({self.backend.describe()!r}, model={self.model!r})"

    # -- keys -------------------------------------------------------------------------------
    def _vkey(self, version: str, rel: str = "") -> str:
        return f"{self.model}/{version}/{rel}" if rel else f"{self.model}/{version}"

    def _akey(self, alias: str, env: str) -> str:
        return f"{self.model}/_aliases/{_check_name(env, 'environment')}/{_check_name(alias, 'alias')}.json"

    def _taken(self) -> set[int]:
        """Every version number claimed or holding objects (published or not)."""
        numbers: set[int] = set()
        for key in self.backend.list(self.model):
            parts = key.split("/")
            name = parts[2] if len(parts) > 2 and parts[1] == "_reservations" else parts[1]
            m = _VERSION.match(name)
            if m:
                numbers.add(int(m.group(1)))
        return numbers

    # -- versions ---------------------------------------------------------------------------
    def publish(
        self,
        version_dir: Path,
        *,
        run_id: str,
        champion: str | None = None,
        version: str | None = None,
    ) -> dict[str, Any]:
        """Store ``version_dir`` as the next version (or ``version``); returns its manifest.

        Files go first, the manifest last, so readers never see a partial version. An
        explicit ``version`` that is already claimed raises ``VersionExistsError``.
        """
        root = Path(version_dir)
        fields = describe_version(root)
        if champion is not None:
            self.show(champion)  # the champion it was compared with must exist here
        files: dict[str, dict[str, Any]] = {}
        for path in sorted(root.rglob("*")):
            rel = path.relative_to(root).as_posix()
            if path.is_symlink():
                raise AssemblyError(f"symlinks cannot be published: {rel}")
            if not path.is_file() or rel == MANIFEST:
                continue
            if any(part.startswith(".") for part in PurePosixPath(rel).parts):
                raise AssemblyError(f"hidden files cannot be published: {rel}")
            files[rel] = {"sha256": sha256_file(path), "size": path.stat().st_size}

        claimed = self._reserve(version, run_id)
        manifest: dict[str, Any] = {
            "schema": SCHEMA,
            "kind": "shopfloor-model-version",
            "model": self.model,
            "version": claimed,
            "created_at": _now(),
            "run_id": str(run_id),
            "champion": champion,
            **fields,
            "code_version": fields.get("code_version") or code_version(),
            "files": files,
        }
        for rel in files:
            self.backend.upload(self._vkey(claimed, rel), root / rel)
        if not self.backend.write_if(self._vkey(claimed, MANIFEST), _dumps(manifest), None):
            raise VersionExistsError(f"{self.model} {claimed} already has a manifest: versions are immutable")
        return manifest

    def _reserve(self, version: str | None, run_id: str) -> str:
        claim = _dumps({"run_id": str(run_id), "at": _now()})
        for _ in range(100):
            taken = self._taken()
            if version is not None:
                if int(check_version(version)[1:]) in taken:
                    raise VersionExistsError(f"{self.model} {version} already exists: versions are immutable")
                candidate = version
            else:
                candidate = f"v{max(taken, default=0) + 1:04d}"
            if self.backend.write_if(f"{self.model}/_reservations/{candidate}", claim, None):
                return candidate
            if version is not None:
                raise VersionExistsError(f"{self.model} {version} already exists: versions are immutable")
        raise RegistryError(f"could not allocate a version id for {self.model}: too much contention")

    def list_versions(self) -> list[str]:
        """Published versions (those with a manifest), oldest first."""
        found = []
        for key in self.backend.list(self.model):
            parts = key.split("/")
            if len(parts) == 3 and parts[2] == MANIFEST and _VERSION.match(parts[1]):
                found.append(parts[1])
        return sorted(found, key=lambda v: int(v[1:]))

    def show(self, version: str) -> dict[str, Any]:
        """The manifest of a published version."""
        raw = self.backend.read(self._vkey(check_version(version), MANIFEST))
        if raw is None:
            raise VersionNotFoundError(
                f"{self.model} has no published version {version} in {self.backend.describe()}")
        try:
            manifest: dict[str, Any] = json.loads(raw)
        except ValueError as exc:
            raise IntegrityError(f"{version}/{MANIFEST} is not valid JSON", MANIFEST) from exc
        if manifest.get("version") != version or manifest.get("model") != self.model:
            raise IntegrityError(f"{version}/{MANIFEST} describes {manifest.get('model')} "
                                 f"{manifest.get('version')}", MANIFEST)
        return manifest

    def fetch(self, version: str, dest: Path) -> Path:
        """Download a version to ``dest`` after verifying every file against the manifest.

        Refuses (``IntegrityError`` naming the file) a changed, missing or unexpected file;
        on any failure nothing is left at ``dest``.
        """
        manifest = self.show(version)
        files: dict[str, dict[str, Any]] = manifest.get("files", {})
        for rel in files:
            if not _safe_rel(rel):
                raise IntegrityError(f"{version}: manifest lists an unsafe path {rel!r}", rel)
        stored = {k.split("/", 2)[2]: size for k, size in self.backend.list(self._vkey(version)).items()}
        for rel in sorted(files):
            if rel not in stored:
                raise IntegrityError(f"{version}/{rel} is in the manifest but missing from storage", rel)
            if stored[rel] != files[rel]["size"]:
                raise IntegrityError(f"{version}/{rel} has {stored[rel]} bytes, manifest says "
                                     f"{files[rel]['size']}", rel)
        for rel in sorted(set(stored) - set(files) - {MANIFEST}):
            raise IntegrityError(f"{version}/{rel} is stored but not in the manifest", rel)

        dest = Path(dest)
        if dest.exists() and (not dest.is_dir() or any(dest.iterdir())):
            raise FileExistsError(f"fetch destination {dest} exists and is not empty")
        dest.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(dir=dest.parent, prefix=f".{dest.name}.fetch-"))
        try:
            for rel, meta in sorted(files.items()):
                target = tmp.joinpath(*rel.split("/"))
                target.parent.mkdir(parents=True, exist_ok=True)
                try:
                    self.backend.download(self._vkey(version, rel), target)
                except FileNotFoundError:
                    raise IntegrityError(f"{version}/{rel} disappeared from storage", rel) from None
                if target.stat().st_size != meta["size"] or sha256_file(target) != meta["sha256"]:
                    raise IntegrityError(f"{version}/{rel} does not match its manifest sha256/size "
                                         "(stored file changed)", rel)
            (tmp / MANIFEST).write_bytes(_dumps(manifest))
            if dest.exists():
                dest.rmdir()
            os.rename(tmp, dest)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        return dest

    # -- aliases ----------------------------------------------------------------------------
    def _alias_doc(self, alias: str, env: str) -> tuple[dict[str, Any], str | None]:
        got = self.backend.read_versioned(self._akey(alias, env))
        if got is None:
            return {"model": self.model, "env": env, "alias": alias, "version": None, "history": []}, None
        return json.loads(got[0]), got[1]

    def _move(self, alias: str, env: str, decide: Callable[[dict[str, Any]], dict[str, Any] | None],
              ) -> dict[str, Any]:
        """Compare-and-swap loop on the alias document; ``decide`` returns the new entry."""
        key = self._akey(alias, env)
        for attempt in range(200):
            doc, token = self._alias_doc(alias, env)
            entry = decide(doc)
            if entry is None:
                return doc
            entry = {"id": uuid.uuid4().hex, "at": _now(), "previous": doc.get("version"), **entry}
            doc["history"].append(entry)
            doc["version"] = entry["version"]
            if self.backend.write_if(key, _dumps(doc), token):
                # Re-read-verify: our entry must have survived (guards servers that ignore If-Match).
                check, _ = self._alias_doc(alias, env)
                if any(e.get("id") == entry["id"] for e in check.get("history", [])):
                    return doc
            time.sleep(random.uniform(0, 0.002 * min(attempt + 1, 20)))
        raise AliasError(f"alias {alias} ({env}) of {self.model}: too much contention, gave up")

    def set_alias(self, alias: str, version: str, env: str = "cloud", reason: str = "",
                  *, action: str = "set") -> dict[str, Any]:
        """Point ``alias`` in ``env`` at a published version; returns the alias document."""
        self.show(version)

        def decide(doc: dict[str, Any]) -> dict[str, Any] | None:
            if doc.get("version") == version:
                return None
            return {"action": action, "version": version, "reason": reason}

        return self._move(alias, env, decide)

    def resolve(self, alias: str, env: str = "cloud") -> str | None:
        """The version an alias points at, or None."""
        version: str | None = self._alias_doc(alias, env)[0].get("version")
        return version

    def alias_history(self, alias: str, env: str = "cloud") -> list[dict[str, Any]]:
        """Every move of an alias, oldest first (entries carry version, previous, action, reason)."""
        history: list[dict[str, Any]] = self._alias_doc(alias, env)[0].get("history", [])
        return history

    def aliases(self, env: str = "cloud") -> dict[str, str | None]:
        """alias -> version for one environment."""
        prefix = f"{self.model}/_aliases/{_check_name(env, 'environment')}"
        keys = [k for k in self.backend.list(prefix) if k.endswith(".json")]
        names = [k.rsplit("/", 1)[1][: -len(".json")] for k in keys]
        return {name: self.resolve(name, env) for name in sorted(names)}

    def promote(self, version: str, env: str = "cloud", reason: str = "promoted") -> dict[str, Any]:
        """Make ``version`` the champion in ``env``; the previous champion stays in history."""
        return self.set_alias(CHAMPION, version, env, reason, action="promote")

    def rollback(self, env: str = "cloud", alias: str = CHAMPION, reason: str = "rollback") -> dict[str, Any]:
        """Move ``alias`` back to the version it pointed at before the current one.

        History is replayed as a stack (set/promote push, rollback pops), so repeated
        rollbacks walk further back instead of toggling between two versions.
        """

        def decide(doc: dict[str, Any]) -> dict[str, Any]:
            stack: list[str] = []
            for e in doc.get("history", []):
                if e.get("action") == "rollback":
                    if stack:
                        stack.pop()
                else:
                    stack.append(e["version"])
            if len(stack) < 2:
                raise AliasError(f"nothing to roll back to: {alias} ({env}) of {self.model} has no "
                                 "earlier version")
            return {"action": "rollback", "version": stack[-2], "reason": reason}

        return self._move(alias, env, decide)

    def newest(self, env: str = "cloud") -> str | None:
        """The champion in ``env`` if any, else the newest published version, else None."""
        champion = self.resolve(CHAMPION, env)
        if champion:
            return champion
        versions = self.list_versions()
        return versions[-1] if versions else None


def default_location() -> str:
    """SHOPFLOOR_REGISTRY if set, else the embedded ``~/.shopfloor/registry``."""
    return os.environ.get(ENV_VAR) or str(DEFAULT_ROOT.expanduser())


def open_registry(location: str | Path | None = None, model_name: str = DEFAULT_MODEL) -> Registry:
    """A registry from ``s3://bucket/prefix``, ``file://path`` or a path (None: default)."""
    loc = str(location) if location is not None else default_location()
    if loc.startswith("s3://"):
        bucket, _, prefix = loc[len("s3://"):].partition("/")
        if not bucket:
            raise ValueError(f"registry URI {loc!r} has no bucket (expected s3://bucket/prefix)")
        return Registry(S3Backend(bucket, prefix), model_name)
    if loc.startswith("file://"):
        loc = loc[len("file://"):]
    elif "://" in loc:
        raise ValueError(f"unsupported registry URI {loc!r}: use a path or s3://bucket/prefix")
    return Registry(FilesystemBackend(loc), model_name)
