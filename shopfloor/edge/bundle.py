"""Signed air-gapped bundles: one archive carries a version into a site with no route out.

A bundle is an uncompressed POSIX tar with:

* ``bundle.json``: the index (model, version, target site/profile, image architecture, and
  the sha256 and size of every other member);
* ``bundle.sig.json``: an ed25519 signature over the index's exact bytes by a release key;
* ``version/...``: the registry version's files and its ``manifest.json``, unchanged;
* ``signatures/<key_id>.json``: the version's own detached signatures (the store checks one);
* ``manifests/*.yaml``: the site's Kubernetes objects rendered from the edge chart (optional);
* ``images/<name>.tar``: a container image archive for the site's architecture (optional).

Import trusts nothing in the archive until the index signature, every member's sha256, the
version's signature, the image architecture and a LiteRT load of the model have all been
checked; only then is anything installed. Extraction is bounded (member count, member and
total size) and takes regular files under the expected prefixes only: never a link, a
device, an absolute path or ``..``.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
import tarfile
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path, PurePosixPath
from typing import Any

from shopfloor import contract
from shopfloor.errors import IntegrityError, InvalidInputError, NotFoundError

#: Names inside a bundle.
INDEX = "bundle.json"
INDEX_SIGNATURE = "bundle.sig.json"
VERSION_PREFIX = "version"
SIGNATURES_PREFIX = contract.SIGNATURES_DIR
MANIFESTS_PREFIX = "manifests"
IMAGES_PREFIX = "images"
BUNDLE_KIND = "shopfloor-edge-bundle"
BUNDLE_SCHEMA = 1
INDEX_SIGNATURE_KIND = "shopfloor-edge-bundle-signature"
ARCHES: tuple[str, ...] = ("amd64", "arm64")

#: Bounds of what import reads from an archive it does not trust yet.
MAX_MEMBERS = 512
MAX_DOCUMENT_BYTES = 1 << 20
MAX_MEMBER_BYTES = 2 << 30
MAX_TOTAL_BYTES = 4 << 30

#: Where K3s picks things up on its own (relative to the data dir, /var/lib/rancher/k3s).
K3S_MANIFESTS = ("server", "manifests")
K3S_IMAGES = ("agent", "images")
#: A filesystem registry on the node that the site's runtime pulls from (``--pull file://...``).
K3S_REGISTRY = ("storage", "shopfloor", "registry")

Log = Callable[[str], None]


def _quiet(_: str) -> None:
    return None


@dataclass(frozen=True)
class BundleIndex:
    """``bundle.json``: what the bundle holds and for whom; signed as a whole."""

    model: str
    version: str
    created_at: str
    files: dict[str, contract.FileEntry]
    site: str | None = None
    profile: str | None = None
    image_arch: str | None = None
    schema_version: int = BUNDLE_SCHEMA

    def to_dict(self) -> dict[str, Any]:
        return {
            "schema_version": self.schema_version,
            "kind": BUNDLE_KIND,
            "model": self.model,
            "version": self.version,
            "created_at": self.created_at,
            "site": self.site,
            "profile": self.profile,
            "image_arch": self.image_arch,
            "files": {k: v.to_dict() for k, v in sorted(self.files.items())},
        }

    def encode(self) -> bytes:
        return contract.dumps(self.to_dict()).encode()

    @classmethod
    def from_bytes(cls, raw: bytes) -> BundleIndex:
        try:
            data = json.loads(raw)
        except (UnicodeDecodeError, ValueError) as exc:
            raise IntegrityError(f"{INDEX} is not valid JSON: {exc}", INDEX) from None
        if not isinstance(data, dict) or data.get("kind") != BUNDLE_KIND:
            raise IntegrityError(f"{INDEX} is not a shopfloor edge bundle index", INDEX)
        if data.get("schema_version") != BUNDLE_SCHEMA:
            raise IntegrityError(
                f"{INDEX} has schema {data.get('schema_version')!r}; this shopfloor reads {BUNDLE_SCHEMA}",
                INDEX,
            )
        files: dict[str, contract.FileEntry] = {}
        raw_files = data.get("files")
        if not isinstance(raw_files, dict):
            raise IntegrityError(f"{INDEX}: 'files' must be an object", INDEX)
        for name, meta in raw_files.items():
            _check_member_name(name)
            sha = meta.get("sha256") if isinstance(meta, dict) else None
            size = meta.get("size") if isinstance(meta, dict) else None
            if not isinstance(sha, str) or len(sha) != 64 or not isinstance(size, int) or size < 0:
                raise IntegrityError(f"{INDEX}: entry {name!r} needs a sha256 and a size", INDEX)
            files[name] = contract.FileEntry(sha, size)
        strings: dict[str, str] = {}
        for key in ("model", "version", "created_at"):
            if not isinstance(data.get(key), str):
                raise IntegrityError(f"{INDEX}: field {key!r} must be a string", INDEX)
            strings[key] = data[key]
        optional: dict[str, str | None] = {}
        for key in ("site", "profile", "image_arch"):
            value = data.get(key)
            if value is not None and not isinstance(value, str):
                raise IntegrityError(f"{INDEX}: field {key!r} must be a string or null", INDEX)
            optional[key] = value
        if optional["image_arch"] is not None and optional["image_arch"] not in ARCHES:
            raise IntegrityError(f"{INDEX}: unknown image architecture {optional['image_arch']!r}", INDEX)
        return cls(
            model=strings["model"],
            version=strings["version"],
            created_at=strings["created_at"],
            files=files,
            site=optional["site"],
            profile=optional["profile"],
            image_arch=optional["image_arch"],
        )


@dataclass(frozen=True)
class ExportReport:
    path: Path
    model: str
    version: str
    bytes: int
    members: int
    manifests: int
    image_arch: str | None
    seconds: float


@dataclass(frozen=True)
class ImportReport:
    model: str
    version: str
    target: str
    installed: list[str] = field(default_factory=list)
    active: str | None = None
    seconds: float = 0.0

    @property
    def message(self) -> str:
        where = ", ".join(self.installed) or self.target
        return f"{self.model} {self.version} verified and installed into {where}"


# -- names -----------------------------------------------------------------------------------
def _check_member_name(name: str) -> str:
    p = PurePosixPath(name)
    raw_parts = name.split("/")
    if (
        not name
        or p.is_absolute()
        or {"", ".", ".."} & set(raw_parts)
        or "\\" in name
        or "\n" in name
        or "\x00" in name
        or len(name) > 400
    ):
        raise IntegrityError(f"bundle member {name[:80]!r} has an unsafe path: refused", name[:80])
    if name in (INDEX, INDEX_SIGNATURE):
        return name
    top = p.parts[0]
    if top not in (VERSION_PREFIX, SIGNATURES_PREFIX, MANIFESTS_PREFIX, IMAGES_PREFIX) or len(p.parts) < 2:
        raise IntegrityError(
            f"bundle member {name[:80]!r} is not where a bundle keeps anything: refused", name[:80]
        )
    if top != VERSION_PREFIX and len(p.parts) != 2:
        raise IntegrityError(f"bundle member {name[:80]!r} is nested too deep: refused", name[:80])
    return name


def _sha256(path: Path) -> contract.FileEntry:
    digest, size = hashlib.sha256(), 0
    with open(path, "rb") as fh:
        while chunk := fh.read(1 << 20):
            digest.update(chunk)
            size += len(chunk)
    return contract.FileEntry(digest.hexdigest(), size)


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


# -- the index signature ----------------------------------------------------------------------
def sign_index(index_bytes: bytes, private_key_path: Path) -> dict[str, Any]:
    """A detached ed25519 signature over the index's exact bytes by a release key."""
    import base64

    from shopfloor.edge import signing

    private = signing.load_private_key(Path(private_key_path))
    return {
        "schema_version": 1,
        "kind": INDEX_SIGNATURE_KIND,
        "algorithm": contract.SIGNATURE_ALGORITHM,
        "key_id": signing.key_id(signing.public_raw(private)),
        "index_sha256": hashlib.sha256(index_bytes).hexdigest(),
        "signature": base64.b64encode(private.sign(index_bytes)).decode("ascii"),
        "signed_at": _now(),
    }


def verify_index(index_bytes: bytes, doc: Any, trust: Any) -> str:
    """The trusted key id whose signature over the index holds; else IntegrityError naming why."""
    import base64
    import binascii

    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

    if not isinstance(doc, dict) or doc.get("kind") != INDEX_SIGNATURE_KIND:
        raise IntegrityError(
            f"bundle is unsigned: {INDEX_SIGNATURE} is not a bundle signature", INDEX_SIGNATURE
        )
    kid = doc.get("key_id")
    if doc.get("algorithm") != contract.SIGNATURE_ALGORITHM or not isinstance(kid, str):
        raise IntegrityError("bundle signature uses an unknown algorithm or key id", INDEX_SIGNATURE)
    if kid in trust.revoked:
        raise IntegrityError(f"bundle is signed by key {kid}, which is revoked", INDEX_SIGNATURE)
    if kid not in trust.keys:
        raise IntegrityError(
            f"bundle is signed only by unknown key {kid[:16]!r}: not in the trust file", INDEX_SIGNATURE
        )
    try:
        raw = base64.b64decode(str(doc.get("signature")), validate=True)
        if doc.get("index_sha256") != hashlib.sha256(index_bytes).hexdigest():
            raise InvalidSignature
        Ed25519PublicKey.from_public_bytes(trust.keys[kid].public_key).verify(raw, index_bytes)
    except (InvalidSignature, binascii.Error, ValueError):
        raise IntegrityError(
            f"bad bundle signature by key {kid} (index or signature changed)", INDEX_SIGNATURE
        ) from None
    return kid


# -- image archives --------------------------------------------------------------------------
def image_architecture(archive: Path) -> str | None:
    """Architecture recorded in a ``docker save`` or OCI image archive, or None if it says none."""
    try:
        with tarfile.open(archive, "r:") as tar:

            def read(name: str) -> Any:
                try:
                    member = tar.getmember(name)
                except KeyError:
                    return None
                if not member.isreg() or member.size > MAX_DOCUMENT_BYTES:
                    return None
                fh = tar.extractfile(member)
                return json.loads(fh.read()) if fh else None

            manifest = read("manifest.json")
            if isinstance(manifest, list) and manifest and isinstance(manifest[0], dict):
                config = read(str(manifest[0].get("Config", "")))
                if isinstance(config, dict) and isinstance(config.get("architecture"), str):
                    return str(config["architecture"])
            index = read("index.json")
            if isinstance(index, dict):
                for entry in index.get("manifests") or []:
                    arch = (
                        (entry.get("platform") or {}).get("architecture") if isinstance(entry, dict) else None
                    )
                    if isinstance(arch, str):
                        return arch
    except (tarfile.TarError, OSError, ValueError, UnicodeDecodeError) as exc:
        raise IntegrityError(
            f"image archive {archive.name} is not a readable image tar: {exc}", archive.name
        ) from None
    return None


# -- export ----------------------------------------------------------------------------------
def render_site_manifests(site: Any, registry: Any, version: str) -> list[tuple[str, str]]:
    """The site's Kubernetes objects from the edge chart, through the real helm binary, as one
    multi-document file for K3s's ``server/manifests``. The runtime in them pulls the version
    from the site's plant registry mirror, so the site needs one in the inventory."""
    from dataclasses import replace

    import yaml

    from shopfloor.edge import helm

    if not site.registry:
        raise InvalidInputError(
            f"site {site.name} has no registry mirror in the inventory: the edge chart's "
            "runtime pulls its version from the plant's S3/MinIO mirror (add registry: "
            "s3://..., or export with --profile and no manifests)"
        )
    target = replace(site, mode="direct") if site.mode == "bundle" else site
    digest = helm.manifest_digest(registry.manifest_bytes(version))
    values = helm.site_values(target, version, model=registry.model, manifest_digest=digest,
                              manifest=registry.show(version))
    objects = helm.render(values, namespace=site.namespace, release=site.name)
    problems = helm.validation_errors(objects)
    if problems:
        raise IntegrityError(
            f"the edge chart rendered invalid objects for {site.name}: " + "; ".join(problems[:5])
        )
    return [("objects.yaml", yaml.safe_dump_all(objects, sort_keys=False))]


def export_bundle(
    registry: Any,
    version: str,
    output: Path,
    *,
    release_key: Path,
    site: Any = None,
    profile: Any = None,
    manifests: Sequence[tuple[str, str]] = (),
    image_archive: Path | None = None,
    image_arch: str | None = None,
    log: Log = _quiet,
) -> ExportReport:
    """Write ``output``: the version, its signatures, rendered ``manifests`` ((name, yaml) pairs),
    an optional image archive, the checksum index and the release key's signature over it.

    Refuses an unsigned version, an image whose recorded architecture differs from
    ``image_arch`` or from the profile's, and a version that does not fit the profile.
    """
    started = time.perf_counter()
    output = Path(output)
    if output.exists() and output.is_dir():
        raise InvalidInputError(f"-o {output} is a directory; give a file name")
    manifest = registry.show(version)
    signatures = list(registry.signatures(version))
    if not signatures:
        raise IntegrityError(
            f"{registry.model} {version} is unsigned: sign it first: "
            f"shopfloor models sign {version} --key FILE"
        )
    if profile is not None:
        from shopfloor.edge.profiles import check_fits

        problems = check_fits(manifest, profile)
        if problems:
            raise InvalidInputError(f"{version} does not fit profile {profile.name}: " + "; ".join(problems))
    if image_archive is not None:
        image_archive = Path(image_archive)
        if not image_archive.is_file():
            raise NotFoundError(f"--image-archive {image_archive} is not a file")
        if image_arch is None:
            raise InvalidInputError("--image-archive needs --image-arch amd64|arm64")
        if image_arch not in ARCHES:
            raise InvalidInputError(f"--image-arch {image_arch!r} is not one of {list(ARCHES)}")
        recorded = image_architecture(image_archive)
        if recorded is not None and recorded != image_arch:
            raise InvalidInputError(f"image archive {image_archive.name} is for {recorded}, not {image_arch}")
        if profile is not None and profile.arch != image_arch:
            raise InvalidInputError(f"image is for {image_arch} but profile {profile.name} is {profile.arch}")
    elif image_arch is not None:
        raise InvalidInputError("--image-arch is only for --image-archive")

    output.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=".bundle-", dir=output.parent) as tmp:
        stage = Path(tmp)
        vdir = registry.fetch(version, stage / VERSION_PREFIX)
        members: dict[str, Path] = {}
        for path in sorted(vdir.rglob("*")):
            if path.is_file():
                members[f"{VERSION_PREFIX}/{path.relative_to(vdir).as_posix()}"] = path
        sigdir = stage / SIGNATURES_PREFIX
        sigdir.mkdir()
        for doc in signatures:
            path = sigdir / doc.file_name
            path.write_text(contract.dumps(doc.to_dict()))
            members[f"{SIGNATURES_PREFIX}/{path.name}"] = path
        mdir = stage / MANIFESTS_PREFIX
        mdir.mkdir()
        for name, text in manifests:
            path = mdir / name
            path.write_text(text)
            members[_check_member_name(f"{MANIFESTS_PREFIX}/{name}")] = path
        if image_archive is not None:
            members[_check_member_name(f"{IMAGES_PREFIX}/{image_archive.name}")] = image_archive
        index = BundleIndex(
            model=registry.model,
            version=version,
            created_at=_now(),
            files={name: _sha256(path) for name, path in members.items()},
            site=getattr(site, "name", None),
            profile=getattr(profile, "name", None),
            image_arch=image_arch,
        )
        index_bytes = index.encode()
        index_sig = sign_index(index_bytes, release_key)
        partial = output.parent / f".{output.name}.{os.getpid()}.partial"
        try:
            with tarfile.open(partial, "w:", format=tarfile.PAX_FORMAT) as tar:
                _add_bytes(tar, INDEX, index_bytes)
                _add_bytes(tar, INDEX_SIGNATURE, contract.dumps(index_sig).encode())
                for name, path in members.items():
                    info = tarfile.TarInfo(name)
                    info.size = path.stat().st_size
                    info.mode = 0o644
                    info.mtime = int(time.time())
                    with open(path, "rb") as fh:
                        tar.addfile(info, fh)
            with open(partial, "rb+") as fh:
                os.fsync(fh.fileno())
            os.replace(partial, output)
        except BaseException:
            partial.unlink(missing_ok=True)
            raise
    size = output.stat().st_size
    log(f"wrote {output} ({size} bytes, {len(members) + 2} members)")
    return ExportReport(
        output,
        registry.model,
        version,
        size,
        len(members) + 2,
        len(manifests),
        image_arch,
        time.perf_counter() - started,
    )


def _add_bytes(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    info.mode = 0o644
    info.mtime = int(time.time())
    tar.addfile(info, io.BytesIO(data))


# -- import: read and verify -----------------------------------------------------------------
@dataclass
class VerifiedBundle:
    """A bundle extracted to a private directory and verified end to end."""

    root: Path
    index: BundleIndex
    signing_key: str
    version_key: str

    @property
    def version_dir(self) -> Path:
        return self.root / VERSION_PREFIX

    def signatures(self) -> list[Any]:
        from shopfloor.edge.signing import read_signature_dir

        return read_signature_dir(self.root / SIGNATURES_PREFIX)

    def manifests(self) -> list[Path]:
        return sorted((self.root / MANIFESTS_PREFIX).glob("*.yaml"))

    def images(self) -> list[Path]:
        return sorted((self.root / IMAGES_PREFIX).glob("*"))


def _extract(bundle: Path, dest: Path) -> dict[str, contract.FileEntry]:
    """Bounded extraction of regular files only; returns what was written, hashed."""
    seen: dict[str, contract.FileEntry] = {}
    total = 0
    try:
        with tarfile.open(bundle, "r:") as tar:
            count = 0
            while True:
                member = tar.next()
                if member is None:
                    break
                count += 1
                if count > MAX_MEMBERS:
                    raise IntegrityError(f"bundle has more than {MAX_MEMBERS} members: refused")
                name = _check_member_name(member.name)
                if not member.isreg():
                    kind = "link" if (member.issym() or member.islnk()) else "non-regular file"
                    raise IntegrityError(f"bundle member {name!r} is a {kind}: refused", name)
                if name in seen:
                    raise IntegrityError(f"bundle member {name!r} appears twice: refused", name)
                limit = MAX_DOCUMENT_BYTES if name in (INDEX, INDEX_SIGNATURE) else MAX_MEMBER_BYTES
                if member.size > limit:
                    raise IntegrityError(
                        f"bundle member {name!r} has {member.size} bytes, over the limit of {limit}: refused",
                        name,
                    )
                total += member.size
                if total > MAX_TOTAL_BYTES:
                    raise IntegrityError(f"bundle holds more than {MAX_TOTAL_BYTES} bytes: refused")
                target = dest.joinpath(*PurePosixPath(name).parts)
                target.parent.mkdir(parents=True, exist_ok=True)
                source = tar.extractfile(member)
                if source is None:
                    raise IntegrityError(f"bundle member {name!r} cannot be read", name)
                digest, size = hashlib.sha256(), 0
                flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0)
                with os.fdopen(os.open(target, flags, 0o644), "wb") as out:
                    while chunk := source.read(1 << 20):
                        size += len(chunk)
                        if size > member.size:
                            raise IntegrityError(f"bundle member {name!r} is longer than its header", name)
                        digest.update(chunk)
                        out.write(chunk)
                if size != member.size:
                    raise IntegrityError(
                        f"bundle is truncated: member {name!r} has {size} of {member.size} bytes", name
                    )
                seen[name] = contract.FileEntry(digest.hexdigest(), size)
            end = tar.offset
        with open(bundle, "rb") as fh:  # a complete archive ends with two zero blocks
            fh.seek(end)
            marker = fh.read(2 * tarfile.BLOCKSIZE)
        if len(marker) != 2 * tarfile.BLOCKSIZE or marker.strip(b"\0"):
            raise IntegrityError(
                f"bundle {bundle.name} is truncated: no end-of-archive marker after {len(seen)} members"
            )
    except IntegrityError:
        raise
    except FileNotFoundError:
        raise NotFoundError(f"bundle {bundle} does not exist") from None
    except (tarfile.TarError, EOFError, OSError, UnicodeDecodeError) as exc:
        raise IntegrityError(f"bundle {bundle.name} is truncated or not a bundle: {exc}") from None
    return seen


def verify_bundle(
    bundle: Path, dest: Path, trust: Any, *, profile: Any = None, log: Log = _quiet
) -> VerifiedBundle:
    """Extract ``bundle`` into the empty private directory ``dest`` and verify everything.

    Order: bounded extraction; the index signature by a trusted key; every member against the
    index (nothing missing, nothing extra); the version's checksums and its own signature; the
    image architecture against ``profile``; a LiteRT load of the version's model files.
    """
    bundle = Path(bundle)
    if not bundle.is_file():
        raise NotFoundError(f"bundle {bundle} is not a file")
    seen = _extract(bundle, dest)
    if INDEX not in seen:
        raise IntegrityError(f"bundle has no {INDEX}: not a shopfloor bundle, or truncated", INDEX)
    if INDEX_SIGNATURE not in seen:
        raise IntegrityError("bundle is unsigned: it has no index signature", INDEX_SIGNATURE)
    index_bytes = (dest / INDEX).read_bytes()
    index = BundleIndex.from_bytes(index_bytes)
    signing_key = verify_index(
        index_bytes, contract.read_json(dest / INDEX_SIGNATURE, INDEX_SIGNATURE), trust
    )
    members = {k: v for k, v in seen.items() if k not in (INDEX, INDEX_SIGNATURE)}
    for name in sorted(set(index.files) - set(members)):
        raise IntegrityError(f"bundle is truncated or incomplete: {name} is in the index but missing", name)
    for name in sorted(set(members) - set(index.files)):
        raise IntegrityError(f"bundle member {name} is not in the signed index: refused", name)
    for name, entry in sorted(members.items()):
        want = index.files[name]
        if entry != want:
            raise IntegrityError(
                f"bundle member {name} does not match the signed index sha256/size (tampered)", name
            )
    log(f"bundle index signed by trusted key {signing_key}; {len(members)} members match")

    version_dir = dest / VERSION_PREFIX
    manifest_path = version_dir / contract.MANIFEST
    if not manifest_path.is_file():
        raise IntegrityError("bundle carries no version manifest", contract.MANIFEST)
    manifest_bytes = manifest_path.read_bytes()
    manifest = contract.VersionManifest.from_dict(json.loads(manifest_bytes), f"bundle {contract.MANIFEST}")
    if (manifest.model, manifest.version) != (index.model, index.version):
        raise IntegrityError(
            f"bundle index names {index.model} {index.version} but the version is "
            f"{manifest.model} {manifest.version}"
        )
    present = {p.relative_to(version_dir).as_posix() for p in version_dir.rglob("*") if p.is_file()}
    present.discard(contract.MANIFEST)
    if present != set(manifest.files):
        missing, extra = sorted(set(manifest.files) - present), sorted(present - set(manifest.files))
        raise IntegrityError(f"version files differ from its manifest: missing {missing}, extra {extra}")
    for rel, entry in sorted(manifest.files.items()):
        if _sha256(version_dir / rel) != entry:
            raise IntegrityError(f"version file {rel} does not match its manifest sha256/size", rel)
    bundle_view = VerifiedBundle(dest, index, signing_key, "")
    sigs = bundle_view.signatures()
    try:
        version_key = trust.verify(manifest_bytes, sigs)
    except IntegrityError as exc:
        raise IntegrityError(f"version {index.version} signature refused: {exc}") from None
    bundle_view.version_key = version_key
    log(f"{index.model} {index.version} signed by trusted key {version_key}")

    images = bundle_view.images()
    if images:
        for image in images:
            recorded = image_architecture(image)
            if recorded is not None and recorded != index.image_arch:
                raise IntegrityError(
                    f"image archive {image.name} is for {recorded}, but the bundle says {index.image_arch}",
                    image.name,
                )
        if profile is not None and index.image_arch != profile.arch:
            raise IntegrityError(
                f"image archive is for {index.image_arch} but site profile {profile.name} is "
                f"{profile.arch}: wrong architecture"
            )
    check_loadable(version_dir, manifest, profile)
    return bundle_view


def check_loadable(version_dir: Path, manifest: contract.VersionManifest, profile: Any = None) -> None:
    """Open the model file the site would run (with a profile: the one it loads,
    :func:`contract.choose_format` of its preference; else every LiteRT format) in this LiteRT
    runtime; refuse a model it cannot load (operator, schema)."""
    from shopfloor.inference.runtime import LiteRTModel

    formats = [f for f in manifest.formats if f in contract.LITERT_FORMATS]
    if not formats:
        raise IntegrityError(f"version {manifest.version} has no LiteRT model the edge can run")
    if profile is not None:
        formats = [str(contract.choose_format(formats, profile.variant))]
    for fmt in formats:
        name = contract.litert_file(fmt)
        try:
            LiteRTModel(version_dir / name)
        except (IntegrityError, RuntimeError, ValueError) as exc:  # unknown operator, schema version
            reason = " ".join(str(exc).split())[:200]
            raise IntegrityError(f"the site's LiteRT runtime cannot load {name}: {reason}", name) from None


@contextmanager
def _private_dir(near: Path | None = None) -> Iterator[Path]:
    base = near if near is not None and near.is_dir() else None
    path = Path(tempfile.mkdtemp(prefix=".bundle-import-", dir=base))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


# -- import: install -------------------------------------------------------------------------
def import_into_store(
    bundle: Path,
    store_root: Path,
    trust: Any,
    *,
    profile: Any = None,
    keep: int = 3,
    activate: bool = True,
    log: Log = _quiet,
) -> ImportReport:
    """Verify, then install into a model store on this machine (the store checks again)."""
    from shopfloor.edge.store import ModelStore

    started = time.perf_counter()
    store_root = Path(store_root)
    with _private_dir() as tmp:
        verified = verify_bundle(bundle, tmp, trust, profile=profile, log=log)
        store = ModelStore(store_root, trust=trust, profile=profile, keep=keep)
        store.install(verified.version_dir, verified.signatures())
        if activate:
            store.activate(verified.index.version)
        return ImportReport(
            verified.index.model,
            verified.index.version,
            str(store_root),
            [str(store_root)],
            store.active(),
            time.perf_counter() - started,
        )


def import_into_runtime(
    bundle: Path, client: Any, trust: Any, *, profile: Any = None, log: Log = _quiet
) -> ImportReport:
    """Verify, then hand the version to a running local runtime's admin API (it verifies again)."""
    started = time.perf_counter()
    with _private_dir() as tmp:
        verified = verify_bundle(bundle, tmp, trust, profile=profile, log=log)
        client.upload(verified.version_dir, verified.signatures(), activate=True)
        status = client.status()
        return ImportReport(
            verified.index.model,
            verified.index.version,
            client.url,
            [client.url],
            status.get("active"),
            time.perf_counter() - started,
        )


def import_into_k3s(
    bundle: Path, k3s_root: Path, trust: Any, *, profile: Any = None, log: Log = _quiet
) -> ImportReport:
    """Verify, then place manifests in ``server/manifests``, image archives in ``agent/images``
    and the version (with its signatures) in a filesystem registry under ``storage/`` that the
    site's runtime pulls from. Every file goes in by atomic rename, after all checks passed."""
    from shopfloor.lineage import copy_file_atomic

    started = time.perf_counter()
    k3s_root = Path(k3s_root)
    if k3s_root.exists() and not k3s_root.is_dir():
        raise InvalidInputError(f"--k3s-root {k3s_root} is not a directory")
    with _private_dir() as tmp:
        verified = verify_bundle(bundle, tmp, trust, profile=profile, log=log)
        index = verified.index
        prefix = f"shopfloor-edge-{index.site}" if index.site else "shopfloor-edge"
        placed: list[tuple[Path, Path]] = []
        for path in verified.manifests():
            placed.append((path, k3s_root.joinpath(*K3S_MANIFESTS) / f"{prefix}-{path.name}"))
        for path in verified.images():
            placed.append((path, k3s_root.joinpath(*K3S_IMAGES) / path.name))
        registry = k3s_root.joinpath(*K3S_REGISTRY) / index.model
        version_target = registry / index.version
        if version_target.exists():
            raise InvalidInputError(f"{index.model} {index.version} is already in {registry}")
        for path in sorted(verified.version_dir.rglob("*")):
            if path.is_file():
                rel = path.relative_to(verified.version_dir)
                if rel.as_posix() != contract.MANIFEST:
                    placed.append((path, version_target / rel))
        for path in sorted((verified.root / SIGNATURES_PREFIX).glob("*.json")):
            placed.append((path, registry / "_signatures" / index.version / path.name))
        # The manifest goes last: a registry reader never sees a version without its files.
        placed.append((verified.version_dir / contract.MANIFEST, version_target / contract.MANIFEST))
        for source, target in placed:
            copy_file_atomic(source, target)
        return ImportReport(
            index.model,
            index.version,
            str(k3s_root),
            [str(k3s_root.joinpath(*K3S_MANIFESTS)), str(registry)]
            + ([str(k3s_root.joinpath(*K3S_IMAGES))] if verified.images() else []),
            None,
            time.perf_counter() - started,
        )
