"""Ed25519 keys, detached signatures over a version's manifest, and the trust file of a site.

Signing is a release step, not part of training: the registry's versions never change, and a
signature is a small document beside one (:class:`shopfloor.contract.SignatureDoc`) over the
exact bytes of its ``manifest.json``. Since the manifest holds the sha256 and size of every
file, one signature covers the whole version.

A site holds only public keys, in a trust file (several for key rotation, plus a revocation
list); private keys stay where releases are signed. :meth:`TrustStore.verify` refuses a
version that is unsigned, signed only by unknown or revoked keys, badly signed, or signed
for another model or version, naming which.

Key id: the first 16 hex characters of sha256 over the raw 32-byte public key.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import logging
import os
import sys
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from shopfloor import contract, settings
from shopfloor.contract import SignatureDoc, is_key_id
from shopfloor.errors import ConflictError, IntegrityError, InvalidInputError, NotFoundError, excerpt
from shopfloor.lineage import write_text_atomic

log = logging.getLogger(__name__)

#: Largest key, trust or manifest file read (a trust file with hundreds of keys is ~100 KiB).
MAX_KEY_BYTES = 16 << 10
MAX_TRUST_BYTES = 1 << 20
MAX_MANIFEST_BYTES = 16 << 20
#: Most signatures one version may carry to a site (each is checked).
MAX_SIGNATURES = 32
PRIVATE_SUFFIX = ".key"
PUBLIC_SUFFIX = ".pub"
TRUST_FILE = "trust.yaml"
DEV_KEY_NAME = "dev-ed25519"
DEV_COMMENT = "development key, not for plants"


class SignatureError(IntegrityError):
    """A version's signatures do not let it onto this device (the message says why)."""


@dataclass(frozen=True)
class KeyPair:
    private_path: Path
    public_path: Path
    key_id: str


def key_id(public_raw: bytes) -> str:
    """Key id of a raw 32-byte ed25519 public key."""
    return hashlib.sha256(public_raw).hexdigest()[:16]


def _read_small(path: Path, limit: int, what: str) -> bytes:
    path = Path(path)
    try:
        with open(path, "rb") as fh:
            data = fh.read(limit + 1)
    except FileNotFoundError:
        raise NotFoundError(f"{what} not found: {path}") from None
    except IsADirectoryError:
        raise InvalidInputError(f"{what} {path} is a directory, expected a file") from None
    except OSError as exc:
        raise InvalidInputError(f"cannot read {what} {path}: {exc.strerror}") from None
    if len(data) > limit:
        raise InvalidInputError(f"{what} {path} is larger than {limit} bytes")
    return data


def _name(name: str) -> str:
    if not name or len(name) > 64 or not all(c.isalnum() or c in "-_." for c in name) or name[0] == ".":
        raise InvalidInputError(f"invalid key name {excerpt(name)}: use letters, digits, '-', '_', '.'")
    return name


def generate_keypair(directory: Path, name: str = "shopfloor") -> KeyPair:
    """A new ed25519 pair in ``directory``: ``<name>.key`` (PEM PKCS8, mode 0600) and
    ``<name>.pub`` (base64 of the raw public key). Refuses to overwrite either file."""
    directory = Path(directory).expanduser()
    _name(name)
    private_path, public_path = directory / f"{name}{PRIVATE_SUFFIX}", directory / f"{name}{PUBLIC_SUFFIX}"
    for path in (private_path, public_path):
        if os.path.lexists(path):
            raise ConflictError(f"{path} exists: refusing to overwrite a key")
    try:
        directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    except OSError as exc:
        raise InvalidInputError(f"cannot make key directory {directory}: {exc.strerror or exc}") from None
    private = Ed25519PrivateKey.generate()
    pem = private.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption())
    raw = private.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0)
    try:
        fd = os.open(private_path, flags, 0o600)
    except FileExistsError:
        raise ConflictError(f"{private_path} exists: refusing to overwrite a key") from None
    except OSError as exc:
        raise InvalidInputError(f"cannot write {private_path}: {exc.strerror or exc}") from None
    with os.fdopen(fd, "wb") as fh:
        fh.write(pem)
        fh.flush()
        os.fsync(fh.fileno())
    os.chmod(private_path, 0o600)  # whatever the umask
    try:
        fd = os.open(public_path, flags, 0o644)
    except FileExistsError:
        private_path.unlink()
        raise ConflictError(f"{public_path} exists: refusing to overwrite a key") from None
    with os.fdopen(fd, "wb") as fh:
        fh.write(base64.b64encode(raw) + b"\n")
    return KeyPair(private_path, public_path, key_id(raw))


def load_private_key(path: Path) -> Ed25519PrivateKey:
    """The ed25519 private key in a PEM file (an Ed25519PrivateKey)."""

    data = _read_small(Path(path), MAX_KEY_BYTES, "private key")
    try:
        key = serialization.load_pem_private_key(data, password=None)
    except (ValueError, TypeError) as exc:
        raise InvalidInputError(f"{path} is not an unencrypted PEM private key: "
                                f"{' '.join(str(exc).split())[:120]}") from None
    if not isinstance(key, Ed25519PrivateKey):
        raise InvalidInputError(f"{path} holds a {type(key).__name__.lstrip('_')}, not an ed25519 key")
    return key


def public_raw(private: Ed25519PrivateKey) -> bytes:

    raw: bytes = private.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return raw


def decode_public_key(text: str, where: str = "public key") -> bytes:
    """Raw 32 bytes of a base64 ed25519 public key."""
    try:
        raw = base64.b64decode(text.strip(), validate=True)
    except (binascii.Error, ValueError):
        raise InvalidInputError(f"{where} is not base64") from None
    if len(raw) != 32:
        raise InvalidInputError(f"{where} is {len(raw)} bytes, an ed25519 public key is 32")
    return raw


def load_public_key(path: Path) -> bytes:
    """Raw bytes of a ``.pub`` file written by :func:`generate_keypair`."""
    return decode_public_key(_read_small(Path(path), MAX_KEY_BYTES, "public key").decode("ascii", "replace"),
                             str(path))


def manifest_identity(manifest_bytes: bytes) -> tuple[str, str]:
    """(model, version) a manifest describes, read strictly through the contract."""
    try:
        loaded = json.loads(manifest_bytes)
    except (UnicodeDecodeError, ValueError) as exc:
        raise IntegrityError(f"{contract.MANIFEST} is not valid JSON: {exc}", contract.MANIFEST) from None
    manifest = contract.VersionManifest.from_dict(loaded)
    return manifest.model, manifest.version


def sign_manifest(manifest_bytes: bytes, private_key_path: Path) -> SignatureDoc:
    """A detached signature over ``manifest_bytes`` (the exact stored bytes) with the key in
    ``private_key_path``. Ed25519 is deterministic: the same key over the same manifest gives
    the same signature, so signing twice is idempotent."""
    model, version = manifest_identity(manifest_bytes)
    private = load_private_key(private_key_path)
    return SignatureDoc(
        key_id=key_id(public_raw(private)), model=model, version=version,
        manifest_sha256=hashlib.sha256(manifest_bytes).hexdigest(),
        signature=base64.b64encode(private.sign(manifest_bytes)).decode("ascii"),
        signed_at=datetime.now(UTC).isoformat(timespec="seconds"),
    )


def parse_signature(data: bytes, where: str = "signature") -> SignatureDoc:
    """A signature document from bytes (bounded, strict)."""
    if len(data) > contract.MAX_SIGNATURE_BYTES:
        raise IntegrityError(f"{where} is larger than {contract.MAX_SIGNATURE_BYTES} bytes", where)
    try:
        loaded = json.loads(data)
    except (UnicodeDecodeError, ValueError) as exc:
        raise IntegrityError(f"{where} is not valid JSON: {exc}", where) from None
    return SignatureDoc.from_dict(loaded, where)


def read_signature_dir(directory: Path) -> list[SignatureDoc]:
    """Every ``<key_id>.json`` in a ``signatures/`` directory (none when it does not exist)."""
    directory = Path(directory)
    if not directory.is_dir():
        return []
    names = sorted(p.name for p in directory.iterdir())
    if len(names) > MAX_SIGNATURES:
        raise IntegrityError(f"{directory} holds {len(names)} files, at most {MAX_SIGNATURES} signatures "
                             "are accepted", contract.SIGNATURES_DIR)
    docs = []
    for name in names:
        path = directory / name
        if path.is_symlink() or not path.is_file() or not name.endswith(".json"):
            raise IntegrityError(f"{contract.SIGNATURES_DIR}/{name} is not a signature document",
                                 contract.SIGNATURES_DIR)
        doc = parse_signature(path.read_bytes()[: contract.MAX_SIGNATURE_BYTES + 1],
                              f"{contract.SIGNATURES_DIR}/{name}")
        if name != doc.file_name:
            raise IntegrityError(f"{contract.SIGNATURES_DIR}/{name} holds a signature by key {doc.key_id}",
                                 contract.SIGNATURES_DIR)
        docs.append(doc)
    return docs


def write_signature_dir(directory: Path, signatures: Iterable[SignatureDoc]) -> None:
    """Write signature documents as ``<directory>/<key_id>.json``."""
    for doc in signatures:
        write_text_atomic(Path(directory) / doc.file_name, contract.dumps(doc.to_dict()))


@dataclass(frozen=True)
class TrustedKey:
    id: str
    public_key: bytes
    comment: str = ""

    def to_dict(self) -> dict[str, str]:
        return {"id": self.id, "public_key": base64.b64encode(self.public_key).decode("ascii"),
                "comment": self.comment}


@dataclass(frozen=True)
class TrustStore:
    """The public keys a site accepts signatures from, and the ids it no longer accepts."""

    keys: Mapping[str, TrustedKey] = field(default_factory=dict)
    revoked: frozenset[str] = frozenset()
    source: str = "trust file"

    @classmethod
    def from_dict(cls, data: Any, source: str = "trust file") -> TrustStore:
        def bad(problem: str) -> InvalidInputError:
            return InvalidInputError(f"{source}: {problem}")

        if not isinstance(data, Mapping):
            raise bad("must be a mapping with 'keys' (and optionally 'revoked')")
        unknown = sorted(set(data) - {"keys", "revoked"})
        if unknown:
            raise bad(f"unknown field(s) {unknown}")
        entries, revoked = data.get("keys") or [], data.get("revoked") or []
        if not isinstance(entries, list) or not isinstance(revoked, list):
            raise bad("'keys' and 'revoked' must be lists")
        keys: dict[str, TrustedKey] = {}
        for i, entry in enumerate(entries):
            if not isinstance(entry, Mapping) or not {"id", "public_key"} <= set(entry) \
                    or not set(entry) <= {"id", "public_key", "comment"}:
                raise bad(f"keys[{i}] needs id and public_key (and optionally comment)")
            raw = decode_public_key(str(entry["public_key"]), f"{source}: keys[{i}].public_key")
            kid = entry["id"]
            if kid != key_id(raw):
                raise bad(f"keys[{i}]: id {excerpt(kid)} is not the id of its public key ({key_id(raw)})")
            keys[kid] = TrustedKey(kid, raw, str(entry.get("comment") or ""))
        for i, kid in enumerate(revoked):
            if not is_key_id(kid):
                raise bad(f"revoked[{i}] {excerpt(kid)} is not a key id (16 hex characters)")
        return cls(keys, frozenset(revoked), source)

    @classmethod
    def load(cls, path: Path) -> TrustStore:
        import yaml

        data = _read_small(Path(path), MAX_TRUST_BYTES, "trust file")
        try:
            loaded = yaml.safe_load(data)
        except yaml.YAMLError as exc:
            raise InvalidInputError(f"trust file {path} is not valid YAML: "
                                    f"{' '.join(str(exc).split())[:160]}") from None
        return cls.from_dict(loaded, f"trust file {path}")

    def to_dict(self) -> dict[str, Any]:
        return {"keys": [k.to_dict() for _, k in sorted(self.keys.items())], "revoked": sorted(self.revoked)}

    def save(self, path: Path) -> None:
        import yaml

        write_text_atomic(Path(path), yaml.safe_dump(self.to_dict(), sort_keys=False))

    def with_key(self, public: bytes, comment: str = "") -> TrustStore:
        kid = key_id(public)
        return TrustStore({**self.keys, kid: TrustedKey(kid, public, comment)}, self.revoked, self.source)

    def with_revoked(self, kid: str) -> TrustStore:
        return TrustStore(self.keys, self.revoked | {kid}, self.source)

    def verify(self, manifest_bytes: bytes, signatures: Sequence[SignatureDoc]) -> str:
        """The id of a trusted, unrevoked key with a valid signature over ``manifest_bytes``;
        otherwise a :class:`SignatureError` naming what is wrong with each signature."""

        model, version = manifest_identity(manifest_bytes)
        what = f"{model} {version}"
        if not signatures:
            raise SignatureError(f"{what} is unsigned: sign it with "
                                 f"`shopfloor models sign {version} --key FILE`")
        if len(signatures) > MAX_SIGNATURES:
            raise SignatureError(f"{what} carries {len(signatures)} signatures, at most {MAX_SIGNATURES} "
                                 "are checked")
        digest = hashlib.sha256(manifest_bytes).hexdigest()
        unknown: list[str] = []
        problems: list[str] = []
        for doc in signatures:
            if doc.algorithm != contract.SIGNATURE_ALGORITHM:
                problems.append(f"signature by key {doc.key_id} uses {excerpt(doc.algorithm, 20)}, "
                                f"not {contract.SIGNATURE_ALGORITHM}")
            elif (doc.model, doc.version) != (model, version):
                problems.append(f"signature by key {doc.key_id} is for {doc.model} {doc.version}, not {what}")
            elif doc.key_id in self.revoked:
                problems.append(f"key {doc.key_id} is revoked")
            elif doc.key_id not in self.keys:
                unknown.append(doc.key_id)
            else:
                try:
                    raw = base64.b64decode(doc.signature, validate=True)
                    if doc.manifest_sha256 != digest:
                        raise InvalidSignature
                    public = Ed25519PublicKey.from_public_bytes(self.keys[doc.key_id].public_key)
                    public.verify(raw, manifest_bytes)
                except (InvalidSignature, binascii.Error, ValueError):
                    problems.append(f"bad signature by key {doc.key_id} (manifest or signature changed)")
                    continue
                return doc.key_id
        if unknown:
            problems.append(f"signed only by unknown key(s) {sorted(unknown)}" if not problems
                            else f"unknown key(s) {sorted(unknown)}")
        raise SignatureError(f"{what} refused: {'; '.join(problems)}")


def ensure_dev_keypair(directory: Path | None = None) -> tuple[KeyPair, Path]:
    """The development key pair and a trust file holding its public key, made on first use
    (announced on stderr and in the log: a development key, not for plants)."""
    directory = Path(directory) if directory is not None else settings.edge_key_dir()
    private_path = directory / f"{DEV_KEY_NAME}{PRIVATE_SUFFIX}"
    public_path = directory / f"{DEV_KEY_NAME}{PUBLIC_SUFFIX}"
    trust_path = directory / TRUST_FILE
    if private_path.exists() and public_path.exists():
        raw = load_public_key(public_path)
        pair = KeyPair(private_path, public_path, key_id(raw))
    else:
        pair = generate_keypair(directory, DEV_KEY_NAME)
        raw = load_public_key(public_path)
        message = (f"created a development signing key {pair.key_id} in {directory} ({DEV_COMMENT}); "
                   "use `shopfloor keys generate` for a plant")
        log.warning(message)
        print(f"shopfloor: {message}", file=sys.stderr)
    if not trust_path.exists():
        TrustStore().with_key(raw, DEV_COMMENT).save(trust_path)
    return pair, trust_path
