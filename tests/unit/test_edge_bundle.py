"""Signed air-gapped bundles: export, verify, install into a store or a K3s root, and every refusal.

Real versions (the trained model of tests/fixtures/registry-schema1, signed with a fresh key),
the real LiteRT runtime and the real model store: a refused bundle must leave nothing behind.
"""

from __future__ import annotations

import io
import json
import shutil
import tarfile
from collections.abc import Callable
from pathlib import Path

import flatbuffers
import pytest

from shopfloor import contract
from shopfloor.edge import bundle
from shopfloor.edge.profiles import load_profile
from shopfloor.edge.signing import TrustStore, generate_keypair, sign_manifest
from shopfloor.edge.store import ModelStore
from shopfloor.errors import IntegrityError, InvalidInputError
from shopfloor.registry import open_registry
from tests.fixtures.versions import tiny_litert
from tests.integration.edge_runtime import SignedVersions, make_signed_versions

LAPTOP = load_profile("laptop")  # amd64, int8
RPI = load_profile("rpi4-arm64-4g")


@pytest.fixture(scope="module")
def signed(tmp_path_factory: pytest.TempPathFactory) -> SignedVersions:
    return make_signed_versions(tmp_path_factory.mktemp("bundle-signed"))


@pytest.fixture(scope="module")
def trust(signed: SignedVersions) -> TrustStore:
    return TrustStore.load(signed.trust)


def image_tar(path: Path, arch: str) -> Path:
    """A minimal ``docker save`` archive whose config records ``arch``."""
    config = json.dumps({"architecture": arch, "os": "linux"}).encode()
    manifest = json.dumps(
        [{"Config": "config.json", "RepoTags": ["shopfloor-edge:test"], "Layers": []}]
    ).encode()
    with tarfile.open(path, "w:") as tar:
        for name, data in (("manifest.json", manifest), ("config.json", config)):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return path


@pytest.fixture(scope="module")
def good(signed: SignedVersions, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """v0001 for the laptop profile, with manifests and an amd64 image archive."""
    tmp = tmp_path_factory.mktemp("bundle-good")
    out = tmp / "v0001.bundle"
    bundle.export_bundle(
        open_registry(signed.registry),
        "v0001",
        out,
        release_key=signed.private_key,
        profile=LAPTOP,
        manifests=[("edge.yaml", "apiVersion: v1\nkind: ConfigMap\n")],
        image_archive=image_tar(tmp / "edge-amd64.tar", "amd64"),
        image_arch="amd64",
    )
    return out


def rewrite(
    source: Path,
    dest: Path,
    change: Callable[[tarfile.TarInfo, bytes], tuple[tarfile.TarInfo, bytes] | None],
    extra: list[tuple[tarfile.TarInfo, bytes]] = (),
) -> Path:  # type: ignore[assignment]
    """Copy a bundle member by member through ``change`` (None drops a member), plus ``extra``."""
    with tarfile.open(source, "r:") as src, tarfile.open(dest, "w:", format=tarfile.PAX_FORMAT) as out:
        for member in src.getmembers():
            fh = src.extractfile(member)
            data = fh.read() if fh else b""
            got = change(member, data)
            if got is not None:
                info, payload = got
                info.size = len(payload)
                out.addfile(info, io.BytesIO(payload))
        for info, payload in extra:
            out.addfile(info, io.BytesIO(payload) if info.isreg() else None)
    return dest


def member(
    name: str, data: bytes = b"x", kind: bytes = tarfile.REGTYPE, target: str = ""
) -> tuple[tarfile.TarInfo, bytes]:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.size = len(data) if kind == tarfile.REGTYPE else 0
    info.linkname = target
    return info, data


def assert_nothing_installed(store: Path, k3s: Path) -> None:
    assert not (store / "versions").exists() or not any((store / "versions").iterdir())
    assert not k3s.exists() or not any(p.is_file() for p in k3s.rglob("*"))


def refused(path: Path, trust: TrustStore, tmp: Path, match: str, profile: object = LAPTOP) -> None:
    """Both import targets refuse ``path`` with ``match``, and neither gets a file."""
    store, k3s = tmp / "store", tmp / "k3s"
    with pytest.raises((IntegrityError, InvalidInputError), match=match):
        bundle.import_into_store(path, store, trust, profile=profile)
    with pytest.raises((IntegrityError, InvalidInputError), match=match):
        bundle.import_into_k3s(path, k3s, trust, profile=profile)
    assert_nothing_installed(store, k3s)


# -- happy paths -------------------------------------------------------------------------------
def test_bundle_holds_the_version_signatures_manifests_image_and_a_signed_index(good: Path) -> None:
    with tarfile.open(good) as tar:
        names = tar.getnames()
    assert names[:2] == [bundle.INDEX, bundle.INDEX_SIGNATURE]
    assert "version/manifest.json" in names and "version/model_int8.tflite" in names
    assert any(n.startswith("signatures/") for n in names)
    assert "manifests/edge.yaml" in names and "images/edge-amd64.tar" in names


def test_import_into_a_store_installs_and_activates_the_verified_version(
    good: Path, trust: TrustStore, tmp_path: Path
) -> None:
    report = bundle.import_into_store(good, tmp_path / "store", trust, profile=LAPTOP)
    assert (report.version, report.active) == ("v0001", "v0001")
    store = ModelStore(tmp_path / "store", trust=trust, profile=LAPTOP)
    assert store.installed() == ["v0001"] and store.active() == "v0001"


def test_import_into_a_k3s_root_fills_the_auto_deploy_folders_and_a_pullable_registry(
    good: Path, trust: TrustStore, signed: SignedVersions, tmp_path: Path
) -> None:
    k3s = tmp_path / "k3s"
    bundle.import_into_k3s(good, k3s, trust, profile=LAPTOP)
    assert (
        (k3s / "server" / "manifests" / "shopfloor-edge-edge.yaml").read_text().startswith("apiVersion: v1")
    )
    assert bundle.image_architecture(k3s / "agent" / "images" / "edge-amd64.tar") == "amd64"
    # The site's runtime pulls from the node's filesystem registry: same bytes, same signatures.
    node = open_registry(k3s / "storage" / "shopfloor" / "registry")
    assert node.manifest_bytes("v0001") == open_registry(signed.registry).manifest_bytes("v0001")
    assert trust.verify(node.manifest_bytes("v0001"), node.signatures("v0001"))
    node.fetch("v0001", tmp_path / "fetched")  # every checksum holds
    with pytest.raises(InvalidInputError, match="already"):
        bundle.import_into_k3s(good, k3s, trust, profile=LAPTOP)


# -- refusals: nothing installed ----------------------------------------------------------------
def test_tampered_member_is_refused(good: Path, trust: TrustStore, tmp_path: Path) -> None:
    def flip(info: tarfile.TarInfo, data: bytes) -> tuple[tarfile.TarInfo, bytes]:
        if info.name == "version/model_int8.tflite":
            data = data[:100] + bytes([data[100] ^ 1]) + data[101:]
        return info, data

    refused(rewrite(good, tmp_path / "t.bundle", flip), trust, tmp_path, "tampered")


def test_tampered_index_is_refused_by_its_signature(good: Path, trust: TrustStore, tmp_path: Path) -> None:
    def edit(info: tarfile.TarInfo, data: bytes) -> tuple[tarfile.TarInfo, bytes]:
        if info.name == bundle.INDEX:
            data = data.replace(b'"image_arch": "amd64"', b'"image_arch": "arm64"')
        return info, data

    refused(rewrite(good, tmp_path / "t.bundle", edit), trust, tmp_path, "bad bundle signature")


@pytest.mark.parametrize("cut", ["half", "most", "last-byte", "end-marker"])
def test_truncated_bundle_is_refused(good: Path, trust: TrustStore, tmp_path: Path, cut: str) -> None:
    data = good.read_bytes()
    with tarfile.open(good) as tar:
        tar.getmembers()
        end = tar.offset  # after the last member's data, where the end-of-archive marker starts
    keep = {"half": len(data) // 2, "most": int(len(data) * 0.9), "last-byte": end - 513, "end-marker": end}[
        cut
    ]
    path = tmp_path / "cut.bundle"
    path.write_bytes(data[:keep])
    refused(path, trust, tmp_path, "truncated|incomplete")


def test_unsigned_bundle_is_refused(good: Path, trust: TrustStore, tmp_path: Path) -> None:
    path = rewrite(
        good, tmp_path / "u.bundle", lambda i, d: None if i.name == bundle.INDEX_SIGNATURE else (i, d)
    )
    refused(path, trust, tmp_path, "unsigned")


def test_bundle_signed_by_an_unknown_key_is_refused(
    signed: SignedVersions, trust: TrustStore, tmp_path: Path
) -> None:
    other = generate_keypair(tmp_path / "other", "stranger")
    path = tmp_path / "stranger.bundle"
    bundle.export_bundle(open_registry(signed.registry), "v0001", path, release_key=other.private_path)
    refused(path, trust, tmp_path, "unknown key")


def test_bundle_signed_by_a_revoked_key_is_refused(
    good: Path, trust: TrustStore, signed: SignedVersions, tmp_path: Path
) -> None:
    revoked = trust.with_revoked(next(iter(trust.keys)))
    refused(good, revoked, tmp_path, "revoked")


def test_version_signed_only_by_an_unknown_key_is_refused(
    signed: SignedVersions, trust: TrustStore, tmp_path: Path
) -> None:
    """A trusted release key wrapped a version nobody trusted signed: the store's own check wins."""
    reg = open_registry(tmp_path / "registry")
    src = tmp_path / "src"
    open_registry(signed.registry).fetch("v0001", src)
    (src / contract.MANIFEST).unlink()
    reg.publish(src, run_id="stranger", version="v0001")
    stranger = generate_keypair(tmp_path / "other", "stranger")
    reg.add_signature("v0001", sign_manifest(reg.manifest_bytes("v0001"), stranger.private_path))
    path = tmp_path / "s.bundle"
    bundle.export_bundle(reg, "v0001", path, release_key=signed.private_key)
    refused(path, trust, tmp_path, "signed only by unknown key")


def test_unsigned_version_is_refused_at_export(signed: SignedVersions, tmp_path: Path) -> None:
    reg = open_registry(tmp_path / "registry")
    src = tmp_path / "src"
    open_registry(signed.registry).fetch("v0001", src)
    (src / contract.MANIFEST).unlink()
    reg.publish(src, run_id="unsigned", version="v0001")
    with pytest.raises(IntegrityError, match="sign it first"):
        bundle.export_bundle(reg, "v0001", tmp_path / "x.bundle", release_key=signed.private_key)
    assert not (tmp_path / "x.bundle").exists()


def test_image_for_another_architecture_is_refused(
    signed: SignedVersions, trust: TrustStore, tmp_path: Path
) -> None:
    path = tmp_path / "arm.bundle"
    bundle.export_bundle(
        open_registry(signed.registry),
        "v0001",
        path,
        release_key=signed.private_key,
        image_archive=image_tar(tmp_path / "edge-arm64.tar", "arm64"),
        image_arch="arm64",
    )
    refused(path, trust, tmp_path, "wrong architecture", profile=LAPTOP)
    # ... while an arm64 site takes it (K3s root: no device self-test on this amd64 machine).
    bundle.import_into_k3s(path, tmp_path / "arm-node", trust, profile=RPI)
    assert (tmp_path / "arm-node" / "agent" / "images" / "edge-arm64.tar").is_file()


def test_export_refuses_an_image_whose_recorded_architecture_differs(
    signed: SignedVersions, tmp_path: Path
) -> None:
    with pytest.raises(InvalidInputError, match="is for arm64, not amd64"):
        bundle.export_bundle(
            open_registry(signed.registry),
            "v0001",
            tmp_path / "x.bundle",
            release_key=signed.private_key,
            image_archive=image_tar(tmp_path / "i.tar", "arm64"),
            image_arch="amd64",
        )


def _unloadable_model(kind: str) -> bytes:
    from ai_edge_litert import schema_py_generated as s

    model = s.ModelT.InitFromObj(s.Model.GetRootAsModel(tiny_litert(5), 0))
    if kind == "schema":
        model.version = 4
    else:
        code = model.operatorCodes[1]
        code.builtinCode = code.deprecatedBuiltinCode = s.BuiltinOperator.CUSTOM
        code.customCode = "ShopfloorFutureOp"
    builder = flatbuffers.Builder(1024)
    builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
    return bytes(builder.Output())


@pytest.mark.parametrize("kind", ["schema", "operator"])
def test_model_the_sites_litert_cannot_load_is_refused(
    signed: SignedVersions, trust: TrustStore, tmp_path: Path, kind: str
) -> None:
    """A release signed properly for a newer runtime (schema 4, or an operator this LiteRT lacks)."""
    vdir = tmp_path / "version"
    open_registry(signed.registry).fetch("v0001", vdir)
    model = _unloadable_model(kind)
    (vdir / "model_int8.tflite").write_bytes(model)
    manifest = json.loads((vdir / contract.MANIFEST).read_bytes())
    manifest["version"] = "v0009"
    manifest["files"]["model_int8.tflite"] = bundle._sha256(vdir / "model_int8.tflite").to_dict()
    raw = contract.dumps(manifest).encode()
    (vdir / contract.MANIFEST).write_bytes(raw)
    sig = sign_manifest(raw, signed.private_key)
    path = _hand_built_bundle(tmp_path / "future.bundle", vdir, [sig], signed.private_key)
    refused(path, trust, tmp_path, "cannot load model_int8.tflite")


@pytest.fixture(scope="module")
def with_tree(tmp_path_factory: pytest.TempPathFactory) -> SignedVersions:
    """Signed versions plus v0003, a tree-like version (float32 only, hist-gbt)."""
    return make_signed_versions(tmp_path_factory.mktemp("bundle-tree"), tree=True)


def test_a_tree_version_travels_to_an_int8_preferring_site_as_float32(with_tree: SignedVersions,
                                                                     tmp_path: Path) -> None:
    """The laptop profile prefers int8; the tree version has only float32: export checks it
    fits, import opens and installs the float32 file, and the store runs it as float32."""
    trust = TrustStore.load(with_tree.trust)
    out = tmp_path / "tree.bundle"
    bundle.export_bundle(open_registry(with_tree.registry), "v0003", out, release_key=with_tree.private_key,
                         profile=LAPTOP)
    with tarfile.open(out) as tar:
        names = tar.getnames()
    assert "version/model_float32.tflite" in names and "version/model_int8.tflite" not in names
    report = bundle.import_into_store(out, tmp_path / "store", trust, profile=LAPTOP)
    assert (report.version, report.active) == ("v0003", "v0003")
    store = ModelStore(tmp_path / "store", trust=trust, profile=LAPTOP)
    assert store.status()["active_format"] == "float32"


def test_a_tree_model_the_site_cannot_load_is_refused_by_its_float32_file(
    with_tree: SignedVersions, tmp_path: Path
) -> None:
    """The open-check opens the file the site would run: a tree version's float32 file, even on
    an int8-preferring profile (not "no int8 file")."""
    trust = TrustStore.load(with_tree.trust)
    vdir = tmp_path / "version"
    open_registry(with_tree.registry).fetch("v0003", vdir)
    (vdir / "model_float32.tflite").write_bytes(_unloadable_model("operator"))
    manifest = json.loads((vdir / contract.MANIFEST).read_bytes())
    manifest["version"] = "v0009"
    manifest["files"]["model_float32.tflite"] = bundle._sha256(vdir / "model_float32.tflite").to_dict()
    raw = contract.dumps(manifest).encode()
    (vdir / contract.MANIFEST).write_bytes(raw)
    sig = sign_manifest(raw, with_tree.private_key)
    path = _hand_built_bundle(tmp_path / "future.bundle", vdir, [sig], with_tree.private_key)
    refused(path, trust, tmp_path, "cannot load model_float32.tflite", profile=LAPTOP)


def _hand_built_bundle(out: Path, vdir: Path, sigs: list[contract.SignatureDoc], key: Path) -> Path:
    members: dict[str, bytes] = {
        f"version/{p.relative_to(vdir).as_posix()}": p.read_bytes()
        for p in sorted(vdir.rglob("*"))
        if p.is_file()
    }
    members.update({f"signatures/{s.file_name}": contract.dumps(s.to_dict()).encode() for s in sigs})
    manifest = contract.VersionManifest.from_dict(json.loads(members["version/manifest.json"]))
    index = bundle.BundleIndex(
        manifest.model,
        manifest.version,
        "2026-01-01T00:00:00+00:00",
        {
            n: contract.FileEntry(__import__("hashlib").sha256(d).hexdigest(), len(d))
            for n, d in members.items()
        },
    )
    raw = index.encode()
    sig = contract.dumps(bundle.sign_index(raw, key)).encode()
    with tarfile.open(out, "w:") as tar:
        for name, data in [(bundle.INDEX, raw), (bundle.INDEX_SIGNATURE, sig), *members.items()]:
            info, payload = member(name, data)
            tar.addfile(info, io.BytesIO(payload))
    return out


@pytest.mark.parametrize(
    "name", ["../evil", "version/../../evil", "/etc/evil", "version/./x", "elsewhere/x", "manifests/a/b.yaml"]
)
def test_member_paths_outside_the_layout_are_refused(
    good: Path, trust: TrustStore, tmp_path: Path, name: str
) -> None:
    path = rewrite(good, tmp_path / "p.bundle", lambda i, d: (i, d), [member(name)])
    refused(path, trust, tmp_path, "unsafe path|not where a bundle keeps|nested too deep")
    assert not (tmp_path / "evil").exists() and not (tmp_path.parent / "evil").exists()


@pytest.mark.parametrize("kind", [tarfile.SYMTYPE, tarfile.LNKTYPE, tarfile.FIFOTYPE, tarfile.CHRTYPE])
def test_links_and_special_files_are_refused(
    good: Path, trust: TrustStore, tmp_path: Path, kind: bytes
) -> None:
    path = rewrite(
        good, tmp_path / "l.bundle", lambda i, d: (i, d), [member("version/sneaky", b"", kind, "/etc/passwd")]
    )
    refused(path, trust, tmp_path, "link|non-regular")


def test_member_not_in_the_signed_index_is_refused(good: Path, trust: TrustStore, tmp_path: Path) -> None:
    path = rewrite(
        good, tmp_path / "e.bundle", lambda i, d: (i, d), [member("manifests/extra.yaml", b"kind: Secret\n")]
    )
    refused(path, trust, tmp_path, "not in the signed index")


def test_duplicate_member_is_refused(good: Path, trust: TrustStore, tmp_path: Path) -> None:
    path = rewrite(
        good, tmp_path / "d.bundle", lambda i, d: (i, d), [member("version/model_int8.tflite", b"evil")]
    )
    refused(path, trust, tmp_path, "appears twice")


def test_oversized_members_and_too_many_members_are_refused(
    good: Path, trust: TrustStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with monkeypatch.context() as m:
        m.setattr(bundle, "MAX_MEMBER_BYTES", 1000)
        refused(good, trust, tmp_path, "over the limit")
    with monkeypatch.context() as m:
        m.setattr(bundle, "MAX_MEMBERS", 5)
        refused(good, trust, tmp_path, "more than 5 members")
    with monkeypatch.context() as m:
        m.setattr(bundle, "MAX_TOTAL_BYTES", 2000)
        refused(good, trust, tmp_path, "more than 2000 bytes")


def test_not_a_bundle_is_refused(trust: TrustStore, tmp_path: Path) -> None:
    junk = tmp_path / "junk.bundle"
    junk.write_bytes(b"not a tar at all" * 100)
    refused(junk, trust, tmp_path, "not a bundle|truncated")
    shutil.rmtree(tmp_path / "k3s", ignore_errors=True)


def test_export_for_a_site_renders_its_objects_from_the_edge_chart(
    signed: SignedVersions, trust: TrustStore, tmp_path: Path
) -> None:
    from shopfloor.edge.sites import Site

    reg = open_registry(signed.registry)
    site = Site(
        name="plant-x", mode="bundle", profile="fanless-amd64-8g", registry="s3://plant-x-mirror/models"
    )
    path = tmp_path / "x.bundle"
    bundle.export_bundle(
        reg,
        "v0001",
        path,
        release_key=signed.private_key,
        site=site,
        profile=site.device_profile(),
        manifests=bundle.render_site_manifests(site, reg, "v0001"),
    )
    bundle.import_into_k3s(path, tmp_path / "k3s", trust, profile=site.device_profile())
    import yaml

    objects = list(
        yaml.safe_load_all(
            (tmp_path / "k3s" / "server" / "manifests" / "shopfloor-edge-plant-x-objects.yaml").read_text()
        )
    )
    deployment = next(o for o in objects if o["kind"] == "Deployment")
    assert "v0001" in json.dumps(deployment)
    assert deployment["spec"]["template"]["spec"]["nodeSelector"]["kubernetes.io/arch"] == "amd64"
    with pytest.raises(InvalidInputError, match="no registry mirror"):
        bundle.render_site_manifests(Site(name="plant-y", mode="bundle"), reg, "v0001")
