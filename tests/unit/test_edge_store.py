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
    assert (report.version, report.key_id, report.variant) == ("v0002", signed.key.key_id, "int8")
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
