"""The registry contract, run identically on the filesystem and the S3 (moto) backend."""

from __future__ import annotations

import itertools
import json
import threading
import uuid
from pathlib import Path

import pytest

from shopfloor.registry import (
    AliasError,
    AssemblyError,
    FilesystemBackend,
    IntegrityError,
    Registry,
    S3Backend,
    VersionExistsError,
    VersionNotFoundError,
    assemble_version,
    open_registry,
)
from tests.conftest import use_s3
from tests.unit.test_registry_fixtures import make_run_dir, make_version_dir

BUCKET = "registry-test"
RUNS = Path(__file__).resolve().parents[2] / "runs"


@pytest.fixture(params=["fs", "s3"])
def registry(request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Registry:
    if request.param == "fs":
        return Registry(FilesystemBackend(tmp_path / "registry"))
    use_s3(monkeypatch, request.getfixturevalue("s3_endpoint"), BUCKET)
    return open_registry(f"s3://{BUCKET}/t-{uuid.uuid4().hex[:12]}")


@pytest.fixture
def version_dir(tmp_path: Path) -> Path:
    return make_version_dir(tmp_path / "src")


def _publish(registry: Registry, version_dir: Path, **kw: object) -> dict:
    return registry.publish(version_dir, run_id="run-1", **kw)  # type: ignore[arg-type]


def test_publish_list_show_fetch_round_trip(registry: Registry, version_dir: Path, tmp_path: Path) -> None:
    assert registry.list_versions() == []
    m1 = _publish(registry, version_dir)
    m2 = registry.publish(version_dir, run_id="run-2", champion="v0001")
    assert (m1["version"], m2["version"]) == ("v0001", "v0002")
    assert registry.list_versions() == ["v0001", "v0002"]

    shown = registry.show("v0001")
    assert shown == m1
    assert shown["model"] == "ai4i-failure" and shown["run_id"] == "run-1" and shown["champion"] is None
    assert registry.show("v0002")["champion"] == "v0001"
    assert shown["threshold"] == 0.42 and shown["data_version"].startswith("sha256:")
    assert shown["code_version"] == "abc123" and shown["validation_suite"]["version"] == "1.0.0"
    assert set(shown["metrics"]) == {"keras", "baseline", "int8"}
    assert shown["metrics"]["int8"]["pr_auc"]["ci_low"] < shown["metrics"]["int8"]["pr_auc"]["value"]
    assert shown["gates"]["passed"] and shown["gates"]["gates"][0]["name"] == "min_pr_auc"
    assert shown["formats"] == ["saved_model", "float32", "int8"]
    assert shown["golden"]["int8"] == {"json": "golden_int8.json", "npz": "golden_int8.npz"}
    assert "manifest.json" not in shown["files"] and "baseline.pkl" not in shown["files"]
    expected = {p.relative_to(version_dir).as_posix() for p in version_dir.rglob("*") if p.is_file()}
    expected.discard("manifest.json")  # the assembly draft; the registry writes its own
    assert set(shown["files"]) == expected
    for rel in ("saved_model/saved_model.pb", "evidence/validation.json", "decision.json"):
        assert shown["files"][rel]["size"] == (version_dir / rel).stat().st_size

    dest = registry.fetch("v0001", tmp_path / "out" / "model")
    for rel in shown["files"]:
        assert (dest / rel).read_bytes() == (version_dir / rel).read_bytes()
    assert json.loads((dest / "manifest.json").read_text()) == shown
    assert [p.name for p in dest.parent.iterdir()] == ["model"]  # no temp dir left behind


def test_versions_are_immutable(registry: Registry, version_dir: Path, tmp_path: Path) -> None:
    _publish(registry, version_dir)
    other = make_version_dir(tmp_path / "other", seed=7)
    with pytest.raises(VersionExistsError, match="v0001"):
        registry.publish(other, run_id="run-x", version="v0001")
    assert registry.list_versions() == ["v0001"]
    dest = registry.fetch("v0001", tmp_path / "out")
    assert (dest / "saved_model/saved_model.pb").read_bytes() == (
        version_dir / "saved_model/saved_model.pb").read_bytes()
    assert registry.publish(other, run_id="run-x", version="v0005")["version"] == "v0005"
    assert _publish(registry, version_dir)["version"] == "v0006"  # monotonic past explicit ids


@pytest.mark.parametrize("tamper", ["same-size", "resize", "delete", "extra"])
def test_fetch_refuses_tampered_version(registry: Registry, version_dir: Path, tmp_path: Path,
                                        tamper: str) -> None:
    _publish(registry, version_dir)
    rel = "model_int8.tflite"
    key = f"ai4i-failure/v0001/{rel}"
    original = registry.backend.read(key)
    assert original is not None
    if tamper == "same-size":
        registry.backend.put(key, bytes([original[0] ^ 1]) + original[1:])
    elif tamper == "resize":
        registry.backend.put(key, original + b"\0")
    elif tamper == "delete":
        registry.backend.delete(key)
    else:
        rel = "saved_model/assets/backdoor.bin"
        registry.backend.put(f"ai4i-failure/v0001/{rel}", b"x")
    dest = tmp_path / "out" / "model"
    with pytest.raises(IntegrityError, match=rel) as info:
        registry.fetch("v0001", dest)
    assert info.value.path == rel
    assert not dest.exists()
    assert not (tmp_path / "out").exists() or list((tmp_path / "out").iterdir()) == []


def test_fetch_refuses_nonempty_destination(registry: Registry, version_dir: Path, tmp_path: Path) -> None:
    _publish(registry, version_dir)
    dest = tmp_path / "dest"
    dest.mkdir()
    (dest / "keep.txt").write_text("mine")
    with pytest.raises(FileExistsError):
        registry.fetch("v0001", dest)
    assert [p.name for p in dest.iterdir()] == ["keep.txt"]
    empty = tmp_path / "empty"
    empty.mkdir()
    assert (registry.fetch("v0001", empty) / "decision.json").is_file()


def test_promote_rollback_history(registry: Registry, version_dir: Path) -> None:
    for _ in range(3):
        _publish(registry, version_dir)
    assert registry.resolve("champion") is None
    assert registry.newest() == "v0003"  # no champion: newest candidate

    registry.promote("v0001")
    registry.promote("v0002")
    doc = registry.promote("v0003", reason="better recall")
    assert doc["version"] == "v0003" and registry.resolve("champion") == "v0003"
    assert registry.newest() == "v0003" and registry.newest("edge") == "v0003"
    registry.promote("v0001", env="edge")
    assert registry.resolve("champion", env="edge") == "v0001"
    assert registry.resolve("champion", env="cloud") == "v0003"  # environments are independent
    assert registry.newest("edge") == "v0001"

    assert registry.rollback()["version"] == "v0002"
    assert registry.rollback()["version"] == "v0001"  # walks back, does not toggle
    with pytest.raises(AliasError, match="nothing to roll back"):
        registry.rollback()
    history = registry.alias_history("champion")
    assert [(e["action"], e["version"], e["previous"]) for e in history] == [
        ("promote", "v0001", None), ("promote", "v0002", "v0001"), ("promote", "v0003", "v0002"),
        ("rollback", "v0002", "v0003"), ("rollback", "v0001", "v0002"),
    ]
    assert history[2]["reason"] == "better recall"
    registry.set_alias("staging", "v0002", env="cloud", reason="canary")
    assert registry.aliases("cloud") == {"champion": "v0001", "staging": "v0002"}
    assert registry.aliases("edge") == {"champion": "v0001"}
    assert len(registry.alias_history("champion")) == 5
    registry.promote("v0001")  # already champion: no-op, no history entry
    assert len(registry.alias_history("champion")) == 5


def test_half_published_version_is_invisible(registry: Registry, version_dir: Path, tmp_path: Path) -> None:
    backend = registry.backend
    real_write_if = backend.write_if

    def crash_on_manifest(key: str, data: bytes, token: str | None) -> bool:
        if key.endswith("/manifest.json"):
            raise ConnectionError("simulated crash before the manifest")
        return real_write_if(key, data, token)

    backend.write_if = crash_on_manifest  # type: ignore[method-assign]
    with pytest.raises(ConnectionError):
        _publish(registry, version_dir)
    backend.write_if = real_write_if  # type: ignore[method-assign]

    assert any(k.startswith("ai4i-failure/v0001/") for k in backend.list("ai4i-failure"))  # files are there
    assert registry.list_versions() == []
    assert registry.newest() is None
    with pytest.raises(VersionNotFoundError, match="v0001"):
        registry.show("v0001")
    with pytest.raises(KeyError):
        registry.fetch("v0001", tmp_path / "out")
    with pytest.raises(KeyError):
        registry.promote("v0001")
    assert _publish(registry, version_dir)["version"] == "v0002"  # the abandoned id is never reused
    assert registry.list_versions() == ["v0002"]


def test_concurrent_alias_moves_keep_every_history_entry(registry: Registry, version_dir: Path) -> None:
    for _ in range(4):
        _publish(registry, version_dir)
    moves = 6
    errors: list[BaseException] = []
    barrier = threading.Barrier(2)

    def mover(versions: tuple[str, str], tag: str) -> None:
        try:
            barrier.wait()
            for i in range(moves):  # alternating, so a move is never a no-op
                registry.set_alias("champion", versions[i % 2], reason=f"{tag}-{i}")
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=mover, args=(("v0001", "v0002"), "a")),
               threading.Thread(target=mover, args=(("v0003", "v0004"), "b"))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    history = registry.alias_history("champion")
    assert sorted(e["reason"] for e in history) == sorted(f"{t}-{i}" for t in "ab" for i in range(moves))
    for before, after in itertools.pairwise(history):
        assert after["previous"] == before["version"]  # a chain: every move saw the one before it
    assert registry.resolve("champion") == history[-1]["version"]


@pytest.mark.parametrize("bad", ["latest", "v1", "1", "v0001/../v0002", "", "V0001"])
def test_bad_version_names_are_key_errors(registry: Registry, bad: str) -> None:
    with pytest.raises(KeyError, match="invalid version name"):
        registry.show(bad)


def test_unknown_version_and_bad_alias(registry: Registry, version_dir: Path, tmp_path: Path) -> None:
    with pytest.raises(KeyError, match="no published version v0042"):
        registry.show("v0042")
    with pytest.raises(VersionNotFoundError):
        registry.fetch("v0042", tmp_path / "x")
    assert not (tmp_path / "x").exists()
    _publish(registry, version_dir)
    with pytest.raises(KeyError):
        registry.promote("v0042")
    with pytest.raises(ValueError, match="alias"):
        registry.set_alias("Champion!", "v0001")
    with pytest.raises(ValueError, match="environment"):
        registry.promote("v0001", env="../cloud")
    with pytest.raises(KeyError):
        _publish(registry, version_dir, champion="v0042")


def test_publish_refuses_failed_gates(registry: Registry, version_dir: Path) -> None:
    verdict = version_dir / "evidence" / "verdict.json"
    verdict.write_text(json.dumps({**json.loads(verdict.read_text()), "passed": False, "reason": "too weak"}))
    with pytest.raises(AssemblyError, match="too weak"):
        _publish(registry, version_dir)
    assert registry.list_versions() == []


# -- assembly (no backend needed) -------------------------------------------------------------

def test_assemble_builds_the_contract_layout(tmp_path: Path) -> None:
    dest = assemble_version(make_run_dir(tmp_path), tmp_path / "v")
    files = sorted(p.relative_to(dest).as_posix() for p in dest.rglob("*") if p.is_file())
    assert files == sorted([
        "manifest.json", "decision.json", "feature_spec.json",
        "model_float32.tflite", "model_int8.tflite",
        "golden_float32.json", "golden_float32.npz", "golden_int8.json", "golden_int8.npz",
        "evidence/evaluation.json", "evidence/verdict.json", "evidence/equivalence.json",
        "evidence/validation.json",
        "saved_model/saved_model.pb", "saved_model/variables/variables.index",
        "saved_model/variables/variables.data-00000-of-00001",
    ])
    assert json.loads((dest / "decision.json").read_text())["threshold"] == 0.42


def test_assemble_refuses_incomplete_or_failed_runs(tmp_path: Path) -> None:
    with pytest.raises(AssemblyError, match="no converted edge model"):
        assemble_version(make_run_dir(tmp_path / "a", edge=False), tmp_path / "va")
    with pytest.raises(AssemblyError, match="gates failed: min_pr_auc"):
        assemble_version(make_run_dir(tmp_path / "b", gates=False), tmp_path / "vb")
    run = make_run_dir(tmp_path / "c")
    (run / "validate" / "result").unlink()
    with pytest.raises(AssemblyError, match="missing data validation result"):
        assemble_version(run, tmp_path / "vc")
    with pytest.raises(AssemblyError, match="run directory not found"):
        assemble_version(tmp_path / "nope", tmp_path / "vd")
    assert not any((tmp_path / v).exists() for v in ("va", "vb", "vc", "vd"))


def _real_run() -> Path | None:
    runs = sorted(RUNS.glob("shopfloor-training-*/convert/edge_model/model_int8.tflite"))
    return runs[-1].parents[2] if runs else None


def test_real_run_round_trip(tmp_path: Path) -> None:
    """A real local run if one exists (else the minimal layout): assemble, publish, fetch."""
    run = _real_run() or make_run_dir(tmp_path / "runs")
    version = assemble_version(run, tmp_path / "version")
    reg = Registry(FilesystemBackend(tmp_path / "registry"))
    manifest = reg.publish(version, run_id=run.name)
    assert manifest["run_id"] == run.name and manifest["formats"][0] == "saved_model"
    assert {"keras", "baseline", "int8"} <= set(manifest["metrics"])
    dest = reg.fetch(manifest["version"], tmp_path / "fetched")
    assert (dest / "saved_model" / "saved_model.pb").read_bytes() == (
        run / "train" / "model" / "saved_model" / "saved_model.pb").read_bytes()
    # A fetched version re-published elsewhere (e.g. cloud -> plant registry) keeps its lineage.
    copied = Registry(FilesystemBackend(tmp_path / "plant")).publish(dest, run_id=run.name)
    assert copied["code_version"] == manifest["code_version"]
    assert copied["files"] == manifest["files"]


def test_open_registry_locations(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SHOPFLOOR_REGISTRY", str(tmp_path / "from-env"))
    assert open_registry().backend.describe() == str(tmp_path / "from-env")
    assert open_registry(f"file://{tmp_path}/x").backend.describe() == str(tmp_path / "x")
    monkeypatch.delenv("SHOPFLOOR_REGISTRY")
    assert open_registry().backend.describe() == str(Path("~/.shopfloor/registry").expanduser())
    monkeypatch.setenv("SHOPFLOOR_S3_ENDPOINT", "http://127.0.0.1:1")
    s3 = open_registry("s3://bucket/some/prefix", model_name="other")
    assert isinstance(s3.backend, S3Backend) and s3.backend.describe() == "s3://bucket/some/prefix"
    assert s3.model == "other"
    with pytest.raises(ValueError, match="unsupported"):
        open_registry("gs://bucket/x")
    with pytest.raises(ValueError, match="no bucket"):
        open_registry("s3:///x")


def test_write_if_is_compare_and_swap(registry: Registry) -> None:
    """The one atomic primitive everything rests on: create-if-absent, replace-if-unchanged."""
    backend, key = registry.backend, "ai4i-failure/_aliases/cloud/probe.json"
    assert backend.read_versioned(key) is None
    assert backend.write_if(key, b'{"n": 1}', None)
    assert not backend.write_if(key, b'{"n": 99}', None)  # exists: create refused
    data, token = backend.read_versioned(key)  # type: ignore[misc]
    assert backend.write_if(key, b'{"n": 2}', token)
    assert not backend.write_if(key, b'{"n": 3}', token)  # stale token: someone moved it
    assert not backend.write_if("ai4i-failure/_aliases/cloud/absent.json", b"{}", token)
    assert backend.read(key) == b'{"n": 2}' and data == b'{"n": 1}'
