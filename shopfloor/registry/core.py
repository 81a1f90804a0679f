"""The model registry: immutable, verified model versions plus per-environment aliases.

Storage layout below the backend root (filesystem directory or ``s3://bucket/prefix``)::

    <model>/<version>/...                 the version (files and documents: shopfloor.contract)
    <model>/_reservations/<version>       version id claim (create-if-absent)
    <model>/_aliases/<env>/<alias>.json   alias document (contract.AliasDocument): version + history

Guarantees (every backend, via ``Backend.write_if``):

* Version ids ("v0001", ...) are claimed by an atomic create-if-absent reservation before any
  byte is uploaded, so two publishers never write into the same version and an id is never
  reused, even after a failed publish.
* A version is checked before it is published: every JSON part parses through the contract
  and every LiteRT file loads (see :func:`shopfloor.registry.assemble.describe_version`).
* The manifest is uploaded LAST and created-if-absent; a version without a manifest (upload
  in progress or abandoned) is invisible to ``list_versions``/``show``/``fetch``.
* ``fetch`` verifies every file's size and sha256 in a temporary directory beside ``dest``
  and renames it into place only when all match: ``dest`` holds a verified copy or nothing.
* An alias moves by compare-and-swap of its one JSON document (re-read, apply, conditional
  write, retry on conflict), then re-reads to verify its history entry survived, so
  concurrent moves are serialised and no history entry is lost.

Reading accepts every manifest schema the contract reads (a version published by an older
shopfloor stays readable); publishing writes the newest.
"""

from __future__ import annotations

import json
import os
import random
import re
import shutil
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path

from shopfloor import contract
from shopfloor.contract import MANIFEST, AliasDocument, AliasMove, FileEntry, SignatureDoc, VersionManifest
from shopfloor.errors import ConflictError, IntegrityError, excerpt
from shopfloor.lineage import code_version, create_new, sha256_file
from shopfloor.registry.assemble import describe_version, open_regular
from shopfloor.registry.backends import Backend, backend_for
from shopfloor.registry.errors import (
    AliasError,
    AssemblyError,
    DestinationNotEmptyError,
    InvalidNameError,
    StorageError,
    VersionExistsError,
    VersionNotFoundError,
)
from shopfloor.settings import CLOUD_ENV, DEFAULT_MODEL_NAME, registry_location

#: Alias names the project moves: a registered model starts as candidate, serves as champion.
CANDIDATE = "candidate"
CHAMPION = "champion"
#: Largest manifest or alias document read (an alias keeps every move: ~200 bytes each).
MAX_DOCUMENT_BYTES = 16 << 20

_VERSION = re.compile(r"v(\d{4,12})")
_NAME = re.compile(r"[a-z0-9][a-z0-9._-]{0,62}")
_ALIAS_SUFFIX = ".json"


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="microseconds")


def _check_name(value: str, what: str) -> str:
    """Model, alias and environment names: lowercase letters, digits, '.', '_', '-' (whole string)."""
    if not isinstance(value, str) or not _NAME.fullmatch(value):
        raise InvalidNameError(f"invalid {what} {excerpt(value)}: use 1-63 lowercase letters, digits, "
                               "'.', '_', '-', starting with a letter or digit")
    return value


def check_version(version: str) -> str:
    """Version ids are ``v`` + four to twelve digits (the whole string)."""
    if not isinstance(version, str) or not _VERSION.fullmatch(version):
        raise InvalidNameError(f"invalid version name {excerpt(version)}: expected v0001, v0002, ...")
    return version


@dataclass(frozen=True)
class VersionEntry:
    """One published version as a listing sees it: its manifest, or why it cannot be read."""

    version: str
    manifest: VersionManifest | None = None
    problem: str | None = None


@dataclass(frozen=True)
class Listing:
    """Everything ``models list`` shows; unreadable parts are marked, not fatal."""

    versions: tuple[VersionEntry, ...]
    aliases: Mapping[str, str | None] = field(default_factory=dict)
    problems: tuple[str, ...] = ()


class Registry:
    """One model's versions and aliases on a storage backend."""

    def __init__(self, backend: Backend, model_name: str = DEFAULT_MODEL_NAME) -> None:
        self.backend = backend
        self.model = _check_name(model_name, "model name")

    def __repr__(self) -> str:
        return f"Registry({self.backend.describe()!r}, model={self.model!r})"

    # -- keys -------------------------------------------------------------------------------
    def _vkey(self, version: str, rel: str = "") -> str:
        return f"{self.model}/{version}/{rel}" if rel else f"{self.model}/{version}"

    def _akey(self, alias: str, env: str) -> str:
        return (f"{self.model}/_aliases/{_check_name(env, 'environment')}/"
                f"{_check_name(alias, 'alias')}{_ALIAS_SUFFIX}")

    def _where(self, key: str) -> str:
        return f"{self.backend.describe()}/{key}"

    def _taken(self) -> set[int]:
        """Every version number claimed or holding objects (published or not)."""
        numbers: set[int] = set()
        for key in self.backend.list(self.model):
            parts = key.split("/")
            name = parts[2] if len(parts) > 2 and parts[1] == "_reservations" else parts[1]
            m = _VERSION.fullmatch(name)
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
    ) -> VersionManifest:
        """Check ``version_dir`` and store it as the next version (or ``version``).

        Refuses, naming the file, a directory whose parts do not load (see
        :func:`~shopfloor.registry.assemble.describe_version`). Files go first, the manifest
        last, so readers never see a partial version. An explicit ``version`` that is already
        claimed raises ``VersionExistsError``.
        """
        if version is not None:
            check_version(version)
        root = Path(version_dir)
        content = describe_version(root)
        if champion is not None:
            self.show(champion)  # the champion it was compared with must exist here
        files = {rel: _file_entry(root / rel, rel) for rel in content.files}
        draft = replace(
            content.manifest, model=self.model, version=version or "v0000", created_at=_now(),
            run_id=str(run_id), files=files, champion=champion,
            code_version=content.manifest.code_version or code_version(),
        )
        _encode(draft)  # anything JSON cannot carry is refused before an id is claimed

        claimed = self._reserve(version, run_id)
        manifest = VersionManifest.from_dict({**draft.to_dict(), "version": claimed})
        data = _encode(manifest)
        for rel in files:
            self.backend.upload(self._vkey(claimed, rel), root / rel)
        key = self._vkey(claimed, MANIFEST)
        # A lost create means someone else wrote it, unless our own write answered late (a
        # retried conditional PUT): then the stored bytes are ours.
        if not self.backend.write_if(key, data, None) and self.backend.read(key, MAX_DOCUMENT_BYTES) != data:
            raise VersionExistsError(f"{self.model} {claimed} already has a manifest: versions are immutable")
        return manifest

    def _reserve(self, version: str | None, run_id: str) -> str:
        claim = contract.dumps({"run_id": str(run_id), "at": _now()}).encode()
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
        raise VersionExistsError(f"could not allocate a version id for {self.model}: too much contention")

    def list_versions(self) -> list[str]:
        """Published versions (those with a manifest), oldest first."""
        found = []
        for key in self.backend.list(self.model):
            parts = key.split("/")
            if len(parts) == 3 and parts[2] == MANIFEST and _VERSION.fullmatch(parts[1]):
                found.append(parts[1])
        return sorted(found, key=lambda v: int(v[1:]))

    def _read_manifest(self, version: str) -> tuple[VersionManifest, bytes]:
        key = self._vkey(check_version(version), MANIFEST)
        raw = self.backend.read(key, MAX_DOCUMENT_BYTES)
        if raw is None:
            raise VersionNotFoundError(
                f"{self.model} has no published version {version} in {self.backend.describe()}")
        where = f"{self.model}/{version}/{MANIFEST}"
        try:
            loaded = json.loads(raw)
        except (UnicodeDecodeError, ValueError) as exc:
            raise IntegrityError(f"{where} is not valid JSON: {exc}", MANIFEST) from None
        manifest = VersionManifest.from_dict(loaded, where)
        if manifest.version != version or manifest.model != self.model:
            raise IntegrityError(f"{where} describes {manifest.model} {manifest.version}", MANIFEST)
        return manifest, raw

    def show(self, version: str) -> VersionManifest:
        """The manifest of a published version (any schema the contract reads)."""
        return self._read_manifest(version)[0]

    def manifest_bytes(self, version: str) -> bytes:
        """The exact stored bytes of a version's manifest (what a signature covers)."""
        return self._read_manifest(version)[1]

    # -- detached signatures (the version itself never changes) -----------------------------
    def _skey(self, version: str, key_id: str = "") -> str:
        base = f"{self.model}/_signatures/{check_version(version)}"
        return f"{base}/{key_id}.json" if key_id else base

    def add_signature(self, version: str, doc: SignatureDoc) -> bool:
        """Store a detached signature beside ``version`` (create-if-absent); True when new,
        False when this key's identical signature is there already. The signature must be
        over this version's stored manifest; it is not checked cryptographically here (the
        registry holds no trust: sites do)."""
        import hashlib

        raw = self.manifest_bytes(version)
        if (doc.model, doc.version) != (self.model, version):
            raise IntegrityError(f"signature is for {doc.model} {doc.version}, not {self.model} {version}")
        if doc.manifest_sha256 != hashlib.sha256(raw).hexdigest():
            raise IntegrityError(f"signature by key {doc.key_id} is over another manifest than "
                                 f"{self.model} {version}'s")
        key = self._skey(version, doc.key_id)
        if self.backend.write_if(key, contract.dumps(doc.to_dict()).encode(), None):
            return True
        existing = self._read_signature(key)
        if existing.signature != doc.signature:
            raise ConflictError(f"{self.model} {version} already has a different signature by key "
                                f"{doc.key_id}")
        return False

    def _read_signature(self, key: str) -> SignatureDoc:
        data = self.backend.read(key, contract.MAX_SIGNATURE_BYTES)
        if data is None:
            raise IntegrityError(f"signature {self._where(key)} disappeared", key)
        try:
            loaded = json.loads(data)
        except (UnicodeDecodeError, ValueError) as exc:
            raise IntegrityError(f"signature {self._where(key)} is not valid JSON: {exc}", key) from None
        return SignatureDoc.from_dict(loaded, f"signature {self._where(key)}")

    def signatures(self, version: str) -> list[SignatureDoc]:
        """Every detached signature of a published version (by key id)."""
        self.manifest_bytes(version)
        prefix = self._skey(version)
        keys = sorted(k for k in self.backend.list(prefix)
                      if k.startswith(prefix + "/") and k.count("/") == 3 and k.endswith(".json"))
        docs = [self._read_signature(k) for k in keys[:64]]
        for key, doc in zip(keys, docs, strict=False):
            if key != self._skey(version, doc.key_id) or (doc.model, doc.version) != (self.model, version):
                raise IntegrityError(f"signature {self._where(key)} describes {doc.model} {doc.version} "
                                     f"key {doc.key_id}", key)
        return docs

    def listing(self, env: str = CLOUD_ENV) -> Listing:
        """Every published version with its manifest and the env's aliases; a version or
        alias document that cannot be read is marked with the reason instead of failing all."""
        entries = []
        for version in self.list_versions():
            try:
                entries.append(VersionEntry(version, self.show(version)))
            except (IntegrityError, StorageError) as exc:  # this version's problem, not the registry's
                entries.append(VersionEntry(version, problem=str(exc)))
            except VersionNotFoundError:
                continue  # removed between listing and reading
        aliases: dict[str, str | None] = {}
        problems = []
        for name in self._alias_names(env):
            try:
                aliases[name] = self.resolve(name, env)
            except (IntegrityError, InvalidNameError) as exc:
                problems.append(str(exc))
        return Listing(tuple(entries), aliases, tuple(problems))

    def fetch(self, version: str, dest: Path) -> Path:
        """Download a version to ``dest`` after verifying every file against the manifest.

        Refuses (``IntegrityError`` naming the file) a changed, missing or unexpected file;
        on any failure nothing is left at ``dest``. Files and directories get the one
        artifact mode rule (:data:`shopfloor.lineage.FILE_MODE`), so another user can read
        a version fetched onto a shared mount.
        """
        manifest, raw = self._read_manifest(version)
        files = manifest.files
        stored = {k.split("/", 2)[2]: size for k, size in self.backend.list(self._vkey(version)).items()}
        for rel in sorted(files):
            if rel not in stored:
                raise IntegrityError(f"{version}/{rel} is in the manifest but missing from storage", rel)
            if stored[rel] != files[rel].size:
                raise IntegrityError(f"{version}/{rel} has {stored[rel]} bytes, manifest says "
                                     f"{files[rel].size}", rel)
        for rel in sorted(set(stored) - set(files) - {MANIFEST}):
            raise IntegrityError(f"{version}/{rel} is stored but not in the manifest", rel)

        dest = Path(dest)
        if dest.is_symlink() or (dest.exists() and (not dest.is_dir() or any(dest.iterdir()))):
            raise DestinationNotEmptyError(f"fetch destination {dest} exists and is not an empty directory")
        dest.parent.mkdir(parents=True, exist_ok=True)
        tmp = dest.parent / f".{dest.name}.fetch-{uuid.uuid4().hex[:12]}"
        os.mkdir(tmp)  # not mkdtemp: its 0700 would hide the version from other users
        try:
            for rel, entry in sorted(files.items()):
                target = tmp.joinpath(*rel.split("/"))
                target.parent.mkdir(parents=True, exist_ok=True)
                try:
                    self.backend.download(self._vkey(version, rel), target)
                except FileNotFoundError:
                    raise IntegrityError(f"{version}/{rel} disappeared from storage", rel) from None
                if target.stat().st_size != entry.size or sha256_file(target) != entry.sha256:
                    raise IntegrityError(f"{version}/{rel} does not match its manifest sha256/size "
                                         "(stored file changed)", rel)
            with create_new(tmp / MANIFEST) as fh:
                fh.write(raw)
            if dest.exists():
                dest.rmdir()
            os.rename(tmp, dest)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        return dest

    # -- aliases ----------------------------------------------------------------------------
    def _alias_doc(self, alias: str, env: str) -> tuple[AliasDocument, str | None]:
        key = self._akey(alias, env)
        got = self.backend.read_versioned(key, MAX_DOCUMENT_BYTES)
        if got is None:
            return AliasDocument(self.model, env, alias, None), None
        where = self._where(key)
        try:
            loaded = json.loads(got[0])
        except (UnicodeDecodeError, ValueError) as exc:
            raise IntegrityError(f"alias file {where} is not valid JSON: {exc}", key) from None
        doc = AliasDocument.from_dict(loaded, f"alias file {where}")
        if (doc.model, doc.env, doc.alias) != (self.model, env, alias):
            raise IntegrityError(f"alias file {where} describes {doc.model}/{doc.env}/{doc.alias}", key)
        return doc, got[1]

    def _move(self, alias: str, env: str,
              decide: Callable[[AliasDocument], tuple[str, str, str] | None]) -> AliasDocument:
        """Compare-and-swap loop on the alias document; ``decide`` returns (action, version,
        reason) of the move to make, or None when there is nothing to do."""
        key = self._akey(alias, env)
        for attempt in range(200):
            doc, token = self._alias_doc(alias, env)
            move = decide(doc)
            if move is None:
                return doc
            action, version, reason = move
            entry = AliasMove(id=uuid.uuid4().hex, at=_now(), action=action, version=version,
                              previous=doc.version, reason=reason)
            new = AliasDocument(self.model, env, alias, version, (*doc.history, entry))
            if self.backend.write_if(key, contract.dumps(new.to_dict()).encode(), token):
                # Re-read-verify: our entry must have survived (guards servers that ignore If-Match).
                check, _ = self._alias_doc(alias, env)
                if any(e.id == entry.id for e in check.history):
                    return new
            time.sleep(random.uniform(0, 0.002 * min(attempt + 1, 20)))
        raise AliasError(f"alias {alias} ({env}) of {self.model}: too much contention, gave up")

    def set_alias(self, alias: str, version: str, env: str = CLOUD_ENV, reason: str = "",
                  *, action: str = "set") -> AliasDocument:
        """Point ``alias`` in ``env`` at a published version; returns the alias document."""
        self._akey(alias, env)  # names first: a bad name is refused before anything is read
        self.show(version)

        def decide(doc: AliasDocument) -> tuple[str, str, str] | None:
            return None if doc.version == version else (action, version, reason)

        return self._move(alias, env, decide)

    def resolve(self, alias: str, env: str = CLOUD_ENV) -> str | None:
        """The version an alias points at, or None."""
        return self._alias_doc(alias, env)[0].version

    def alias_history(self, alias: str, env: str = CLOUD_ENV) -> list[AliasMove]:
        """Every move of an alias, oldest first."""
        return list(self._alias_doc(alias, env)[0].history)

    def _alias_names(self, env: str) -> list[str]:
        prefix = f"{self.model}/_aliases/{_check_name(env, 'environment')}"
        keys = [k for k in self.backend.list(prefix) if k.endswith(_ALIAS_SUFFIX) and k.count("/") == 3]
        return sorted(k.rsplit("/", 1)[1][: -len(_ALIAS_SUFFIX)] for k in keys)

    def aliases(self, env: str = CLOUD_ENV) -> dict[str, str | None]:
        """alias -> version for one environment (an unreadable alias file is an IntegrityError)."""
        return {name: self.resolve(name, env) for name in self._alias_names(env)}

    def promote(self, version: str, env: str = CLOUD_ENV, reason: str = "promoted") -> AliasDocument:
        """Make ``version`` the champion in ``env``; the previous champion stays in history."""
        return self.set_alias(CHAMPION, version, env, reason, action="promote")

    def rollback(self, env: str = CLOUD_ENV, alias: str = CHAMPION,
                 reason: str = "rollback") -> AliasDocument:
        """Move ``alias`` back to the version it pointed at before the current one.

        History is replayed as a stack (set/promote push, rollback pops), so repeated
        rollbacks walk further back instead of toggling between two versions.
        """

        def decide(doc: AliasDocument) -> tuple[str, str, str]:
            stack: list[str] = []
            for e in doc.history:
                if e.action == "rollback":
                    if stack:
                        stack.pop()
                else:
                    stack.append(e.version)
            if len(stack) < 2:
                raise AliasError(f"nothing to roll back to: {alias} ({env}) of {self.model} has no "
                                 "earlier version")
            return "rollback", stack[-2], reason

        return self._move(alias, env, decide)

    # -- selection rules --------------------------------------------------------------------
    def newest_published(self) -> str | None:
        """The most recently published version, or None."""
        versions = self.list_versions()
        return versions[-1] if versions else None

    def champion_or_newest(self, env: str = CLOUD_ENV) -> str | None:
        """What to SERVE: the env's champion, else the newest published version, else None."""
        return self.resolve(CHAMPION, env) or self.newest_published()

    def candidate_or_newest(self, env: str = CLOUD_ENV) -> str | None:
        """What to DEPLOY next: the env's candidate, else the newest published version, else None."""
        return self.resolve(CANDIDATE, env) or self.newest_published()


def _file_entry(path: Path, rel: str) -> FileEntry:
    """sha256 and size of a regular file, read without following a symbolic link."""
    import hashlib

    digest, size = hashlib.sha256(), 0
    with os.fdopen(open_regular(path, rel), "rb") as fh:
        while chunk := fh.read(1 << 20):
            digest.update(chunk)
            size += len(chunk)
    return FileEntry(digest.hexdigest(), size)


def _encode(manifest: VersionManifest) -> bytes:
    try:
        return contract.dumps(manifest.to_dict()).encode()
    except ValueError as exc:  # NaN or infinity copied from the evidence
        raise AssemblyError(f"the version's evidence holds a value JSON cannot carry: {exc}",
                            contract.EVIDENCE["verdict"]) from None


def open_registry(location: str | Path | None = None, model_name: str = DEFAULT_MODEL_NAME) -> Registry:
    """A registry from ``s3://bucket/prefix``, ``file://path`` or a path (None: the default,
    ``SHOPFLOOR_REGISTRY`` or ``~/.shopfloor/registry``); the backend comes from the URI
    scheme (:data:`shopfloor.registry.backends.BACKENDS`)."""
    return Registry(backend_for(location if location is not None else registry_location()), model_name)
