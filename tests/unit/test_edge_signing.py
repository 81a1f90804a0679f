"""Ed25519 keys, detached signatures in the registry, trust files with rotation and revocation."""

from __future__ import annotations

import base64
import hashlib
import json
import stat
from dataclasses import replace
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from typer.testing import CliRunner

from shopfloor import contract
from shopfloor.cli import app
from shopfloor.contract import SignatureDoc
from shopfloor.edge import signing
from shopfloor.edge.signing import (
    SignatureError,
    TrustStore,
    ensure_dev_keypair,
    generate_keypair,
    load_private_key,
    load_public_key,
    sign_manifest,
)
from shopfloor.errors import ConflictError, IntegrityError, InvalidInputError
from tests.fixtures.signed import SignedRegistry, signed_registry

runner = CliRunner()


@pytest.fixture(scope="module")
def signed(tmp_path_factory: pytest.TempPathFactory) -> SignedRegistry:
    sr = signed_registry(tmp_path_factory.mktemp("signing"))
    sr.publish(0)
    sr.publish(1)
    return sr


def _trust(*pairs: signing.KeyPair, revoked: tuple[str, ...] = ()) -> TrustStore:
    store = TrustStore()
    for pair in pairs:
        store = store.with_key(load_public_key(pair.public_path), pair.private_path.stem)
    for kid in revoked:
        store = store.with_revoked(kid)
    return store


def test_generate_keypair_writes_a_private_pem_0600_and_a_raw_public_key(tmp_path: Path) -> None:
    pair = generate_keypair(tmp_path / "k", "plant-a")
    assert stat.S_IMODE(pair.private_path.stat().st_mode) == 0o600
    assert pair.private_path.read_bytes().startswith(b"-----BEGIN PRIVATE KEY-----")
    raw = base64.b64decode(pair.public_path.read_text().strip())
    assert len(raw) == 32
    assert pair.key_id == hashlib.sha256(raw).hexdigest()[:16]
    private = load_private_key(pair.private_path)
    public = private.public_key()
    assert public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw) == raw
    with pytest.raises(ConflictError, match="refusing to overwrite"):
        generate_keypair(tmp_path / "k", "plant-a")
    assert stat.S_IMODE(pair.private_path.stat().st_mode) == 0o600  # untouched
    with pytest.raises(InvalidInputError, match="invalid key name"):
        generate_keypair(tmp_path / "k", "../escape")


def test_sign_and_verify_and_signing_is_deterministic(signed: SignedRegistry) -> None:
    raw = signed.registry.manifest_bytes("v0001")
    doc = sign_manifest(raw, signed.key.private_path)
    assert (doc.model, doc.version, doc.key_id) == ("ai4i-failure", "v0001", signed.key.key_id)
    assert doc.manifest_sha256 == hashlib.sha256(raw).hexdigest()
    assert sign_manifest(raw, signed.key.private_path).signature == doc.signature
    assert signed.trust.verify(raw, [doc]) == signed.key.key_id
    assert SignatureDoc.from_dict(json.loads(contract.dumps(doc.to_dict()))) == doc


def test_verify_refuses_unsigned_unknown_revoked_bad_and_wrong_version(
        signed: SignedRegistry, tmp_path: Path) -> None:
    raw1, raw2 = signed.registry.manifest_bytes("v0001"), signed.registry.manifest_bytes("v0002")
    good = sign_manifest(raw1, signed.key.private_path)
    stranger = generate_keypair(tmp_path, "stranger")
    trust = signed.trust

    with pytest.raises(SignatureError, match=r"v0001 is unsigned: sign it with `shopfloor models sign v0001"):
        trust.verify(raw1, [])
    with pytest.raises(SignatureError, match=rf"signed only by unknown key\(s\) \['{stranger.key_id}'\]"):
        trust.verify(raw1, [sign_manifest(raw1, stranger.private_path)])
    with pytest.raises(SignatureError, match=rf"key {signed.key.key_id} is revoked"):
        trust.with_revoked(signed.key.key_id).verify(raw1, [good])
    # The manifest changed after signing (one byte of whitespace: same JSON, other bytes).
    with pytest.raises(SignatureError, match=rf"bad signature by key {signed.key.key_id}"):
        trust.verify(raw1 + b" ", [good])
    # A signature value that is not over these bytes (digest field forged to match).
    forged = replace(sign_manifest(raw2, signed.key.private_path), model=good.model, version=good.version,
                     manifest_sha256=good.manifest_sha256)
    with pytest.raises(SignatureError, match="bad signature"):
        trust.verify(raw1, [forged])
    # A valid signature of v0001 presented for v0002.
    with pytest.raises(SignatureError, match="is for ai4i-failure v0001, not ai4i-failure v0002"):
        trust.verify(raw2, [good])
    assert issubclass(SignatureError, IntegrityError)


def test_rotation_several_keys_and_revocation_of_the_old_one(signed: SignedRegistry, tmp_path: Path) -> None:
    raw = signed.registry.manifest_bytes("v0001")
    new = generate_keypair(tmp_path, "next")
    old_sig = sign_manifest(raw, signed.key.private_path)
    new_sig = sign_manifest(raw, new.private_path)
    both = _trust(signed.key, new)
    assert both.verify(raw, [old_sig]) == signed.key.key_id
    assert both.verify(raw, [new_sig]) == new.key_id
    rotated = both.with_revoked(signed.key.key_id)
    assert rotated.verify(raw, [old_sig, new_sig]) == new.key_id
    with pytest.raises(SignatureError, match="revoked"):
        rotated.verify(raw, [old_sig])
    # Round trip through the YAML file keeps keys and revocations.
    path = tmp_path / "trust.yaml"
    rotated.save(path)
    loaded = TrustStore.load(path)
    assert set(loaded.keys) == {signed.key.key_id, new.key_id} and loaded.revoked == {signed.key.key_id}


@pytest.mark.parametrize(("text", "problem"), [
    ("keys: [{id: 0123456789abcdef, public_key: '%s'}]", "is not the id of its public key"),
    ("keys: [{id: x, public_key: 'not base64!'}]", "not base64"),
    ("keys: []\nextra: 1", "unknown field"),
    ("keys: []\nrevoked: [nope]", "is not a key id"),
    ("keys: [", "not valid YAML"),
    ("- a list", "must be a mapping"),
])
def test_trust_file_is_parsed_strictly(tmp_path: Path, text: str, problem: str) -> None:
    pub = base64.b64encode(bytes(32)).decode()
    path = tmp_path / "trust.yaml"
    path.write_text(text.replace("%s", pub))
    with pytest.raises(InvalidInputError, match=problem):
        TrustStore.load(path)


def test_dev_keypair_is_made_once_and_says_so(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                              signed: SignedRegistry) -> None:
    pair, trust_path = ensure_dev_keypair(tmp_path / "dev")
    assert "development key, not for plants" in capsys.readouterr().err
    again, _ = ensure_dev_keypair(tmp_path / "dev")
    assert again == pair and capsys.readouterr().err == ""
    trust = TrustStore.load(trust_path)
    assert list(trust.keys) == [pair.key_id]
    raw = signed.registry.manifest_bytes("v0001")
    assert trust.verify(raw, [sign_manifest(raw, pair.private_path)]) == pair.key_id


def test_registry_keeps_detached_signatures_beside_the_unchanged_version(tmp_path: Path) -> None:
    sr = signed_registry(tmp_path)
    version = sr.publish(0, sign=False)
    backend = sr.registry.backend
    before = {k: backend.read(k) for k in backend.list(f"ai4i-failure/{version}")}
    assert sr.registry.signatures(version) == []
    first = sr.sign(version, sr.key)
    assert sr.registry.add_signature(version, first) is False  # idempotent
    again = sign_manifest(sr.registry.manifest_bytes(version), sr.key.private_path)
    assert sr.registry.add_signature(version, again) is False  # same key, same signature, later time
    other = generate_keypair(tmp_path, "second")
    sr.sign(version, other)
    docs = sr.registry.signatures(version)
    assert sorted(d.key_id for d in docs) == sorted([sr.key.key_id, other.key_id])
    assert {k: backend.read(k) for k in backend.list(f"ai4i-failure/{version}")} == before
    assert sr.registry.list_versions() == [version]
    keys = set(backend.list("ai4i-failure/_signatures"))
    assert keys == {f"ai4i-failure/_signatures/{version}/{d.key_id}.json" for d in docs}
    # No private material in any signature document.
    private_raw = load_private_key(sr.key.private_path).private_bytes(
        serialization.Encoding.Raw, serialization.PrivateFormat.Raw, serialization.NoEncryption())
    for key in keys:
        data = backend.read(key) or b""
        assert b"PRIVATE" not in data and private_raw not in data
        assert base64.b64encode(private_raw) not in data
        assert set(json.loads(data)) == {"schema_version", "algorithm", "key_id", "model", "version",
                                         "manifest_sha256", "signature", "signed_at"}


def test_registry_refuses_a_signature_of_another_version(signed: SignedRegistry) -> None:
    doc = sign_manifest(signed.registry.manifest_bytes("v0001"), signed.key.private_path)
    with pytest.raises(IntegrityError, match="signature is for ai4i-failure v0001, not ai4i-failure v0002"):
        signed.registry.add_signature("v0002", doc)
    with pytest.raises(IntegrityError, match="over another manifest"):
        signed.registry.add_signature("v0001", replace(doc, manifest_sha256="0" * 64))


def test_cli_keys_generate_and_models_sign(tmp_path: Path) -> None:
    sr = signed_registry(tmp_path / "reg")
    version = sr.publish(0, sign=False)
    out = tmp_path / "keys"
    result = runner.invoke(app, ["keys", "generate", "--out", str(out), "--name", "plant",
                                 "--trust", str(tmp_path / "trust.yaml")])
    assert result.exit_code == 0, result.output
    kid = load_public_key(out / "plant.pub")
    key_id = hashlib.sha256(kid).hexdigest()[:16]
    assert f"key id:      {key_id}" in result.output and str(out / "plant.key") in result.output
    assert list(TrustStore.load(tmp_path / "trust.yaml").keys) == [key_id]
    refused = runner.invoke(app, ["keys", "generate", "--out", str(out), "--name", "plant"])
    assert refused.exit_code == ConflictError.exit_code and "refusing to overwrite" in refused.output

    args = ["models", "sign", version, "--key", str(out / "plant.key"), "--registry", str(tmp_path / "reg" /
                                                                                           "registry")]
    first, second = runner.invoke(app, args), runner.invoke(app, args)
    assert first.exit_code == 0 and f"signed: ai4i-failure {version} by key {key_id}" in first.output
    assert second.exit_code == 0 and "already signed" in second.output
    assert [d.key_id for d in sr.registry.signatures(version)] == [key_id]
    bad = runner.invoke(app, [*args[:3], "--key", str(out / "plant.pub"), *args[5:]])
    assert bad.exit_code == InvalidInputError.exit_code and "not an unencrypted PEM private key" in bad.output
    missing = runner.invoke(app, ["models", "sign", "v0042", *args[3:]])
    assert missing.exit_code == 3 and "no published version v0042" in missing.output


def test_a_key_directory_that_cannot_be_made_is_one_line(tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory\n")
    with pytest.raises(InvalidInputError, match="cannot make key directory"):
        generate_keypair(blocker / "keys", "release")
