"""The on-device model store: install checks, refusals with the previous version still active,
activation, rollback, recovery, pruning and the store lock."""

from __future__ import annotations

import fcntl
import json
import os
import shutil
from dataclasses import replace
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization

from shopfloor import contract
from shopfloor.edge.profiles import load_profile
from shopfloor.edge.signing import (
    SignatureError,
    TrustStore,
    generate_keypair,
    load_private_key,
    sign_manifest,
)
from shopfloor.edge.store import INCOMING, LOCK, STATE, VERSIONS, ModelStore
from shopfloor.errors import ConflictError, GateFailedError, IntegrityError, InvalidInputError, NotFoundError
from tests.fixtures.signed import SignedRegistry, break_golden, signed_registry


@pytest.fixture(scope="module")
def signed(tmp_path_factory: pytest.TempPathFactory) -> SignedRegistry:
    sr = signed_registry(tmp_path_factory.mktemp("store-registry"))
    for seed in range(4):
        sr.publish(seed)  # v0001..v0004
    sr.publish(5, edit=break_golden)  # v0005: golden outputs its model cannot reproduce
    sr.publish(6, family=contract.HIST_GBT)  # v0006: tree-like, float32 only (larger than the int8 files)
    sr.publish(7, family=contract.HIST_GBT,  # v0007: tree-like, golden outputs its float32 file misses
               edit=lambda d: break_golden(d, "float32"))
    return sr


@pytest.fixture
def store(tmp_path: Path, signed: SignedRegistry) -> ModelStore:
    """A store with v0001 installed and active."""
    s = ModelStore(tmp_path / "store", trust=signed.trust)
    s.install(*signed.fetch("v0001", tmp_path / "dl-v0001"))
    s.activate("v0001")
    return s


def _still_v0001(store: ModelStore) -> None:
    assert store.active() == "v0001"
    assert store.installed() == ["v0001"]
    assert list((store.root / INCOMING).iterdir()) == []
    store.verify("v0001")


def test_install_verifies_everything_and_activate_switches(store: ModelStore, signed: SignedRegistry,
                                                           tmp_path: Path) -> None:
    source, sigs = signed.fetch("v0002", tmp_path / "dl")
    report = store.install(source, sigs)
    assert (report.version, report.key_id, report.family, report.format) == (
        "v0002", signed.key.key_id, "keras-mlp", "int8")
    assert report.self_test.format == "int8"
    assert report.self_test.max_abs_diff <= report.self_test.tolerance
    assert report.self_test.golden_rows == 4 and 0 < report.self_test.latency_us_median < 1e6
    assert not report.already_installed
    assert store.active() == "v0001"  # installing does not activate
    installed = store.version_dir("v0002")
    assert (installed / contract.MANIFEST).read_bytes() == signed.registry.manifest_bytes("v0002")
    assert (installed / contract.SIGNATURES_DIR / f"{signed.key.key_id}.json").is_file()
    assert contract.load_reference_stats(installed) is not None  # travels with the version
    change = store.activate("v0002")
    assert (change.previous, change.active) == ("v0001", "v0002")
    assert store.active_dir() == installed and store.history() == ["v0001", "v0002"]
    state = json.loads((store.root / STATE).read_text())
    assert state["active"] == "v0002" and state["last_error"] is None
    assert store.install(source, sigs).already_installed  # idempotent
    # A broken copy of a version that is not active is replaced by a fresh install.
    _flip_byte(store.version_dir("v0001") / contract.DECISION)
    again = store.install(*signed.fetch("v0001", tmp_path / "again"))
    assert not again.already_installed and store.verify("v0001") == signed.key.key_id


def _flip_byte(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01
    path.write_bytes(bytes(data))


def test_refuses_a_flipped_byte_in_a_model_file(store: ModelStore, signed: SignedRegistry,
                                                 tmp_path: Path) -> None:
    source, sigs = signed.fetch("v0002", tmp_path / "dl")
    _flip_byte(source / contract.litert_file("int8"))
    with pytest.raises(IntegrityError, match=r"v0002/model_int8.tflite does not match its manifest sha256"):
        store.install(source, sigs)
    _still_v0001(store)
    assert "model_int8.tflite" in (store.status()["last_error"] or "")


def test_refuses_a_missing_or_an_extra_file(store: ModelStore, signed: SignedRegistry,
                                            tmp_path: Path) -> None:
    source, sigs = signed.fetch("v0002", tmp_path / "dl")
    (source / "planted.sh").write_text("#!/bin/sh\n")
    with pytest.raises(IntegrityError, match=r"planted\.sh.*not in the manifest"):
        store.install(source, sigs)
    (source / "planted.sh").unlink()
    (source / contract.DECISION).unlink()
    with pytest.raises(IntegrityError, match=r"decision\.json is in the manifest but missing"):
        store.install(source, sigs)
    _still_v0001(store)


def test_refuses_wrong_unknown_and_revoked_signatures(store: ModelStore, signed: SignedRegistry,
                                                      tmp_path: Path) -> None:
    source, sigs = signed.fetch("v0002", tmp_path / "dl")
    v1_sig = signed.registry.signatures("v0001")[0]
    with pytest.raises(SignatureError, match="is for ai4i-failure v0001, not ai4i-failure v0002"):
        store.install(source, [v1_sig])
    wrong = replace(sigs[0], signature=v1_sig.signature)
    with pytest.raises(SignatureError, match="bad signature by key"):
        store.install(source, [wrong])
    stranger = generate_keypair(tmp_path, "stranger")
    foreign = sign_manifest(signed.registry.manifest_bytes("v0002"), stranger.private_path)
    with pytest.raises(SignatureError, match="signed only by unknown key"):
        store.install(source, [foreign])
    with pytest.raises(SignatureError, match="unsigned"):
        store.install(source, [])
    revoking = ModelStore(store.root, trust=signed.trust.with_revoked(signed.key.key_id))
    with pytest.raises(SignatureError, match=f"key {signed.key.key_id} is revoked"):
        revoking.install(source, sigs)
    _still_v0001(store)


def test_refuses_golden_outputs_that_do_not_reproduce(store: ModelStore, signed: SignedRegistry,
                                                      tmp_path: Path) -> None:
    with pytest.raises(GateFailedError, match=r"self-test failed: the golden outputs of model_int8\.tflite"):
        store.install(*signed.fetch("v0005", tmp_path / "dl"))
    _still_v0001(store)


def test_refuses_a_model_over_the_profiles_size_or_latency_budget(store: ModelStore, signed: SignedRegistry,
                                                                  tmp_path: Path) -> None:
    source, sigs = signed.fetch("v0002", tmp_path / "dl")
    laptop = load_profile("laptop")
    small = ModelStore(store.root, trust=signed.trust, profile=replace(laptop, max_model_bytes=100))
    with pytest.raises(GateFailedError, match=r"over the profile's largest model file 100 bytes"):
        small.install(source, sigs)
    slow = ModelStore(store.root, trust=signed.trust, profile=replace(laptop, latency_budget_us=0.001))
    with pytest.raises(GateFailedError, match=r"latency check failed: .* us per row .* budget of 0.001 us"):
        slow.install(source, sigs)
    tiny = ModelStore(store.root, trust=signed.trust, max_version_bytes=1000)
    with pytest.raises(GateFailedError, match="over this store's limit of 1,000 bytes"):
        tiny.install(source, sigs)
    _still_v0001(store)
    fits = ModelStore(store.root, trust=signed.trust, profile=laptop)
    assert fits.install(source, sigs).profile == "laptop"


def test_a_tree_version_runs_its_float32_file_where_int8_is_preferred(signed: SignedRegistry,
                                                                     tmp_path: Path) -> None:
    """The laptop profile prefers int8: an MLP version runs int8, a tree version (no int8 file)
    is self-tested and run as float32; status and state say which per version."""
    laptop = load_profile("laptop")
    assert laptop.variant == "int8"
    store = ModelStore(tmp_path / "store", trust=signed.trust, profile=laptop)
    mlp = store.install(*signed.fetch("v0002", tmp_path / "v2"))
    tree = store.install(*signed.fetch("v0006", tmp_path / "v6"))
    assert (mlp.family, mlp.format, mlp.self_test.format) == ("keras-mlp", "int8", "int8")
    assert (tree.family, tree.format, tree.self_test.format) == ("hist-gbt", "float32", "float32")
    store.activate("v0002")
    store.activate("v0006")
    status = store.status()
    assert status["formats"] == {"v0002": "int8", "v0006": "float32"}
    assert (status["active"], status["active_format"]) == ("v0006", "float32")
    assert status["preferred_format"] == "int8"
    state = json.loads((store.root / STATE).read_text())
    reasons = {(e["action"], e["version"]): e["reason"] for e in state["events"]}
    assert "hist-gbt float32 LiteRT" in reasons[("installed", "v0006")]
    assert "keras-mlp int8 LiteRT" in reasons[("installed", "v0002")]
    assert reasons[("activate", "v0006")].startswith("runs float32 LiteRT; previous v0002")
    assert store.rollback().active == "v0002" and store.status()["active_format"] == "int8"
    # without a profile: no preference, each version its own edge format
    bare = ModelStore(tmp_path / "bare", trust=signed.trust)
    assert bare.install(*signed.fetch("v0006", tmp_path / "b6")).format == "float32"
    assert bare.install(*signed.fetch("v0003", tmp_path / "b3")).format == "int8"
    # the float32 file is what is self-tested: its broken golden set is caught
    with pytest.raises(GateFailedError, match=r"golden outputs of model_float32\.tflite do not reproduce"):
        store.install(*signed.fetch("v0007", tmp_path / "v7"))


def test_a_tree_version_over_the_size_budget_is_refused_by_its_float32_file(signed: SignedRegistry,
                                                                           tmp_path: Path) -> None:
    """A budget the MLP's int8 file fits and the tree's float32 file does not: the MLP installs,
    the tree is refused in one line with the float32 file's size and the budget."""
    tree = signed.registry.show("v0006")
    mlp = signed.registry.show("v0002")
    float32_size = tree.files[contract.litert_file("float32")].size
    int8_size = mlp.files[contract.litert_file("int8")].size
    assert int8_size < float32_size
    profile = replace(load_profile("laptop"), max_model_bytes=float32_size - 1)
    store = ModelStore(tmp_path / "store", trust=signed.trust, profile=profile)
    assert store.install(*signed.fetch("v0002", tmp_path / "v2")).format == "int8"
    with pytest.raises(GateFailedError) as refused:
        store.install(*signed.fetch("v0006", tmp_path / "v6"))
    message = str(refused.value)
    assert "\n" not in message
    assert (f"model_float32.tflite (hist-gbt, float32) is {float32_size:,} bytes" in message
            and f"over the profile's largest model file {float32_size - 1:,} bytes" in message), message
    assert store.installed() == ["v0002"]


def test_edge_push_refuses_a_tree_version_over_the_site_budget_in_one_line(signed: SignedRegistry,
                                                                          tmp_path: Path) -> None:
    """``shopfloor edge push`` checks the file the site will run before anything reaches it:
    an int8-preferring site whose budget the tree's float32 file exceeds refuses it (exit 6)."""
    import yaml
    from typer.testing import CliRunner

    from shopfloor.cli import app

    size = signed.registry.show("v0006").files[contract.litert_file("float32")].size
    profile = {**load_profile("laptop").to_dict(), "name": "tight-box", "max_model_bytes": size - 1}
    (tmp_path / "tight.yaml").write_text(yaml.safe_dump(profile))
    inventory = tmp_path / "sites.yaml"
    inventory.write_text(yaml.safe_dump({"sites": [
        {"name": "press-1", "mode": "local", "url": "http://127.0.0.1:9", "profile": "tight.yaml"}]}))
    result = CliRunner().invoke(app, ["edge", "push", "v0006", "--site", "press-1",
                                      "--inventory", str(inventory),
                                      "--registry", str(signed.registry.backend.describe())])
    assert result.exit_code == GateFailedError.exit_code, result.output
    assert result.stdout == ""
    assert result.stderr == (
        "error: v0006 refused for site press-1: ai4i-failure v0006 on profile tight-box: "
        f"model_float32.tflite (hist-gbt, float32) is {size:,} bytes (0.0 MiB), over the profile's "
        f"largest model file {size - 1:,} bytes (0.0 MiB)\n")
    # the same site takes an MLP version: its int8 file fits the budget
    from shopfloor.edge.push import preflight
    from shopfloor.edge.sites import load_inventory

    manifest, signatures = preflight(signed.registry, "v0002", load_inventory(inventory).get("press-1"))
    assert manifest.version == "v0002" and signatures


def test_rollback_walks_back_the_activation_history(store: ModelStore, signed: SignedRegistry,
                                                    tmp_path: Path) -> None:
    with pytest.raises(ConflictError, match="nothing to roll back to"):
        store.rollback()
    for v in ("v0002", "v0003"):
        store.install(*signed.fetch(v, tmp_path / v))
        store.activate(v)
    assert store.rollback().active == "v0002"
    change = store.rollback()
    assert (change.previous, change.active) == ("v0002", "v0001")
    with pytest.raises(ConflictError):
        store.rollback()
    with pytest.raises(NotFoundError, match="not installed"):
        store.activate("v0042")


def test_keeps_last_n_but_never_the_active_or_previous(tmp_path: Path, signed: SignedRegistry) -> None:
    s = ModelStore(tmp_path / "store", trust=signed.trust, keep=2)
    for v in ("v0001", "v0002"):
        s.install(*signed.fetch(v, tmp_path / v))
        s.activate(v)
    s.install(*signed.fetch("v0003", tmp_path / "v0003"))
    assert s.installed() == ["v0001", "v0002", "v0003"]  # active v0002, previous v0001, new v0003
    s.activate("v0003")
    assert s.installed() == ["v0002", "v0003"]
    assert s.rollback().active == "v0002"
    s.install(*signed.fetch("v0004", tmp_path / "v0004"))
    assert "v0002" in s.installed() and "v0004" in s.installed()


def test_recover_falls_back_when_the_active_version_is_broken(store: ModelStore, signed: SignedRegistry,
                                                              tmp_path: Path) -> None:
    store.install(*signed.fetch("v0002", tmp_path / "dl"))
    store.activate("v0002")
    (store.root / INCOMING / "v0009.leftover").mkdir()
    (store.root / INCOMING / "v0009.leftover" / "half.tflite").write_bytes(b"x")
    assert store.recover().reason is None  # healthy: nothing changes except incoming/
    assert store.active() == "v0002" and list((store.root / INCOMING).iterdir()) == []

    _flip_byte(store.version_dir("v0002") / contract.litert_file("int8"))
    report = store.recover()
    assert (report.previous_active, report.active) == ("v0002", "v0001")
    assert "active version v0002 failed verification" in (report.reason or "")
    assert store.active() == "v0001" and store.installed() == ["v0001"]
    assert "v0002 failed verification" in (store.status()["last_error"] or "")
    # Broken state file: falls back to the newest version that verifies.
    (store.root / STATE).write_text("{not json")
    assert store.recover().active == "v0001"


def test_two_processes_never_change_the_store_at_once(store: ModelStore, signed: SignedRegistry,
                                                      tmp_path: Path) -> None:
    source, sigs = signed.fetch("v0002", tmp_path / "dl")
    other = ModelStore(store.root, trust=signed.trust, lock_timeout=0.3)
    fd = os.open(store.root / LOCK, os.O_RDWR)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)  # another installer holds the store
        with pytest.raises(ConflictError, match="is busy"):
            other.install(source, sigs)
        with pytest.raises(ConflictError, match="is busy"):
            other.activate("v0001")
    finally:
        os.close(fd)
    assert other.install(source, sigs).version == "v0002"


def test_the_store_holds_no_private_key_material(store: ModelStore, signed: SignedRegistry,
                                                 tmp_path: Path) -> None:
    store.install(*signed.fetch("v0002", tmp_path / "dl"))
    private = load_private_key(signed.key.private_path)
    raw = private.private_bytes(serialization.Encoding.Raw, serialization.PrivateFormat.Raw,
                                serialization.NoEncryption())
    pem = signed.key.private_path.read_bytes()
    for path in store.root.rglob("*"):
        if path.is_file():
            data = path.read_bytes()
            assert raw not in data and pem not in data and b"PRIVATE KEY" not in data, path


def test_a_planted_link_is_refused(store: ModelStore, signed: SignedRegistry, tmp_path: Path) -> None:
    source, sigs = signed.fetch("v0002", tmp_path / "dl")
    target = source / contract.FEATURE_SPEC
    shutil.move(target, tmp_path / "elsewhere.json")
    target.symlink_to(tmp_path / "elsewhere.json")
    with pytest.raises(IntegrityError, match=r"feature_spec\.json is not a regular file"):
        store.install(source, sigs)
    _still_v0001(store)
    assert [p.name for p in (store.root / VERSIONS).iterdir()] == ["v0001"]


def test_a_store_path_that_is_a_file_is_one_line(tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory\n")
    with pytest.raises(InvalidInputError, match=r"model store .* cannot be used"):
        ModelStore(blocker, trust=TrustStore())
