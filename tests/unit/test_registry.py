"""The registry contract, run identically on the filesystem and the S3 (moto) backend."""

from __future__ import annotations

import itertools
import json
import shutil
import threading
import uuid
from pathlib import Path

import pytest

from shopfloor import contract, errors
from shopfloor.contract import VersionManifest
from shopfloor.registry import (
    BACKENDS,
    AliasError,
    AssemblyError,
    DestinationNotEmptyError,
    FilesystemBackend,
    GatesNotPassedError,
    IntegrityError,
    InvalidNameError,
    Registry,
    RunNotFoundError,
    S3Backend,
    VersionExistsError,
    VersionNotFoundError,
    assemble_version,
    open_registry,
)
from tests.conftest import use_s3
from tests.fixtures.versions import CODE_VERSION, SCHEMA1_REGISTRY, make_run_dir, make_version_dir

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


def _publish(registry: Registry, version_dir: Path, **kw: object) -> VersionManifest:
    return registry.publish(version_dir, run_id="run-1", **kw)  # type: ignore[arg-type]


def test_publish_list_show_fetch_round_trip(registry: Registry, version_dir: Path, tmp_path: Path) -> None:
    assert registry.list_versions() == []
    m1 = _publish(registry, version_dir)
    m2 = registry.publish(version_dir, run_id="run-2", champion="v0001")
    assert (m1.version, m2.version) == ("v0001", "v0002")
    assert registry.list_versions() == ["v0001", "v0002"]

    shown = registry.show("v0001")
    assert shown == m1
    assert shown.model == "ai4i-failure" and shown.run_id == "run-1" and shown.champion is None
    assert registry.show("v0002").champion == "v0001"
    assert shown.threshold == 0.42 and shown.data_version and shown.data_version.startswith("sha256:")
    assert shown.code_version == CODE_VERSION and shown.validation_suite["version"] == "1.0.0"
    assert set(shown.metrics) == {"keras", "baseline", "edge"}
    int8 = shown.metric("edge", "pr_auc")
    assert int8 is not None and int8.ci_low < int8.value
    assert shown.gates["passed"] and shown.gates["gates"][0]["name"] == "min_pr_auc"
    assert shown.formats == ("saved_model", "float32", "int8")
    assert shown.golden["int8"] == {"json": "golden_int8.json", "npz": "golden_int8.npz"}
    assert shown.schema_version == contract.SCHEMA_VERSION and shown.model_family == "keras-mlp"
    assert "manifest.json" not in shown.files and "baseline.pkl" not in shown.files
    expected = {p.relative_to(version_dir).as_posix() for p in version_dir.rglob("*") if p.is_file()}
    expected.discard("manifest.json")  # the assembly draft; the registry writes its own
    assert set(shown.files) == expected
    for rel in ("saved_model/saved_model.pb", "evidence/validation.json", "decision.json"):
        assert shown.files[rel].size == (version_dir / rel).stat().st_size

    stored = json.loads(registry.backend.read("ai4i-failure/v0001/manifest.json") or b"")
    assert stored["schema_version"] == contract.SCHEMA_VERSION and "schema" not in stored  # writers: newest

    dest = registry.fetch("v0001", tmp_path / "out" / "model")
    for rel in shown.files:
        assert (dest / rel).read_bytes() == (version_dir / rel).read_bytes()
    assert contract.load_manifest(dest) == shown
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
    assert registry.publish(other, run_id="run-x", version="v0005").version == "v0005"
    assert _publish(registry, version_dir).version == "v0006"  # monotonic past explicit ids


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
    assert info.value.path == rel and info.value.exit_code == 5
    assert not dest.exists()
    assert not (tmp_path / "out").exists() or list((tmp_path / "out").iterdir()) == []


def test_fetch_refuses_nonempty_destination(registry: Registry, version_dir: Path, tmp_path: Path) -> None:
    _publish(registry, version_dir)
    dest = tmp_path / "dest"
    dest.mkdir()
    (dest / "keep.txt").write_text("mine")
    with pytest.raises(DestinationNotEmptyError):
        registry.fetch("v0001", dest)
    assert [p.name for p in dest.iterdir()] == ["keep.txt"]
    empty = tmp_path / "empty"
    empty.mkdir()
    assert (registry.fetch("v0001", empty) / "decision.json").is_file()


def test_promote_rollback_history(registry: Registry, version_dir: Path) -> None:
    for _ in range(3):
        _publish(registry, version_dir)
    assert registry.resolve("champion") is None

    registry.promote("v0001")
    registry.promote("v0002")
    doc = registry.promote("v0003", reason="better recall")
    assert doc.version == "v0003" and registry.resolve("champion") == "v0003"
    registry.promote("v0001", env="edge")
    assert registry.resolve("champion", env="edge") == "v0001"
    assert registry.resolve("champion", env="cloud") == "v0003"  # environments are independent

    assert registry.rollback().version == "v0002"
    assert registry.rollback().version == "v0001"  # walks back, does not toggle
    with pytest.raises(AliasError, match="nothing to roll back"):
        registry.rollback()
    history = registry.alias_history("champion")
    assert [(e.action, e.version, e.previous) for e in history] == [
        ("promote", "v0001", None), ("promote", "v0002", "v0001"), ("promote", "v0003", "v0002"),
        ("rollback", "v0002", "v0003"), ("rollback", "v0001", "v0002"),
    ]
    assert history[2].reason == "better recall"
    registry.set_alias("staging", "v0002", env="cloud", reason="canary")
    assert registry.aliases("cloud") == {"champion": "v0001", "staging": "v0002"}
    assert registry.aliases("edge") == {"champion": "v0001"}
    assert len(registry.alias_history("champion")) == 5
    registry.promote("v0001")  # already champion: no-op, no history entry
    assert len(registry.alias_history("champion")) == 5
    stored = contract.AliasDocument.from_dict(json.loads(
        registry.backend.read("ai4i-failure/_aliases/cloud/champion.json") or b""))
    assert stored.version == "v0001" and len(stored.history) == 5  # written through the contract


def test_selection_rules_say_what_they_pick(registry: Registry, version_dir: Path) -> None:
    """Serving takes the champion, deploying takes the candidate; both fall back to the newest."""
    assert registry.newest_published() is None
    assert registry.champion_or_newest() is None and registry.candidate_or_newest() is None
    for _ in range(3):
        _publish(registry, version_dir)
    assert registry.newest_published() == "v0003"
    assert registry.champion_or_newest() == "v0003" and registry.candidate_or_newest() == "v0003"
    registry.promote("v0001")
    registry.set_alias("candidate", "v0002")
    assert registry.champion_or_newest() == "v0001"
    assert registry.candidate_or_newest() == "v0002"
    assert registry.champion_or_newest("edge") == "v0003"  # no edge champion: newest
    registry.set_alias("candidate", "v0001", env="edge")
    assert registry.candidate_or_newest("edge") == "v0001" and registry.champion_or_newest("edge") == "v0003"


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
    assert registry.newest_published() is None
    with pytest.raises(VersionNotFoundError, match="v0001"):
        registry.show("v0001")
    with pytest.raises(errors.NotFoundError):
        registry.fetch("v0001", tmp_path / "out")
    with pytest.raises(errors.NotFoundError):
        registry.promote("v0001")
    assert _publish(registry, version_dir).version == "v0002"  # the abandoned id is never reused
    assert registry.list_versions() == ["v0002"]


def test_a_late_answer_to_our_own_manifest_write_is_not_a_conflict(registry: Registry,
                                                                     version_dir: Path) -> None:
    """A retried conditional PUT whose first attempt landed answers 412: the stored bytes are ours."""
    backend = registry.backend
    real_write_if = backend.write_if

    def lands_then_reports_lost(key: str, data: bytes, token: str | None) -> bool:
        landed = real_write_if(key, data, token)
        return landed and not key.endswith("/manifest.json")

    backend.write_if = lands_then_reports_lost  # type: ignore[method-assign]
    assert _publish(registry, version_dir).version == "v0001"

    def someone_else_won(key: str, data: bytes, token: str | None) -> bool:
        if key.endswith("/manifest.json"):
            real_write_if(key, b'{"kind": "not ours"}', None)
        return real_write_if(key, data, token)

    backend.write_if = someone_else_won  # type: ignore[method-assign]
    with pytest.raises(VersionExistsError, match="v0002 already has a manifest"):
        _publish(registry, version_dir)
    backend.write_if = real_write_if  # type: ignore[method-assign]
    assert registry.list_versions() == ["v0001", "v0002"]
    with pytest.raises(IntegrityError, match=r"v0002/manifest\.json"):
        registry.show("v0002")


def test_concurrent_alias_moves_keep_every_history_entry(registry: Registry, version_dir: Path) -> None:
    for _ in range(4):
        _publish(registry, version_dir)
    moves = 6
    failures: list[BaseException] = []
    barrier = threading.Barrier(2)

    def mover(versions: tuple[str, str], tag: str) -> None:
        try:
            barrier.wait()
            for i in range(moves):  # alternating, so a move is never a no-op
                registry.set_alias("champion", versions[i % 2], reason=f"{tag}-{i}")
        except BaseException as exc:
            failures.append(exc)

    threads = [threading.Thread(target=mover, args=(("v0001", "v0002"), "a")),
               threading.Thread(target=mover, args=(("v0003", "v0004"), "b"))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert failures == []
    history = registry.alias_history("champion")
    assert sorted(e.reason for e in history) == sorted(f"{t}-{i}" for t in "ab" for i in range(moves))
    for before, after in itertools.pairwise(history):
        assert after.previous == before.version  # a chain: every move saw the one before it
    assert registry.resolve("champion") == history[-1].version


@pytest.mark.parametrize("bad", ["latest", "v1", "1", "v0001/../v0002", "", "V0001", "v0001\n", "v0001 ",
                                 "v" + "1" * 13])
def test_bad_version_names_are_invalid_input(registry: Registry, bad: str) -> None:
    with pytest.raises(InvalidNameError, match="invalid version name") as info:
        registry.show(bad)
    assert info.value.exit_code == 2


def test_unknown_version_and_bad_alias(registry: Registry, version_dir: Path, tmp_path: Path) -> None:
    with pytest.raises(VersionNotFoundError, match="no published version v0042") as info:
        registry.show("v0042")
    assert info.value.exit_code == 3
    with pytest.raises(VersionNotFoundError):
        registry.fetch("v0042", tmp_path / "x")
    assert not (tmp_path / "x").exists()
    _publish(registry, version_dir)
    with pytest.raises(VersionNotFoundError):
        registry.promote("v0042")
    with pytest.raises(InvalidNameError, match="alias"):
        registry.set_alias("Champion!", "v0001")
    with pytest.raises(InvalidNameError, match="environment"):
        registry.promote("v0001", env="../cloud")
    with pytest.raises(VersionNotFoundError):
        _publish(registry, version_dir, champion="v0042")


def test_publish_refuses_failed_gates(registry: Registry, version_dir: Path) -> None:
    verdict = version_dir / "evidence" / "verdict.json"
    verdict.write_text(json.dumps({**json.loads(verdict.read_text()), "passed": False, "reason": "too weak"}))
    with pytest.raises(GatesNotPassedError, match="too weak") as info:
        _publish(registry, version_dir)
    assert info.value.exit_code == 6
    assert registry.list_versions() == []


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


# -- a registry written by the code before the contract (schema 1) -----------------------------

@pytest.fixture
def schema1(tmp_path: Path) -> Registry:
    root = tmp_path / "old"
    shutil.copytree(SCHEMA1_REGISTRY, root)
    return open_registry(str(root))


def test_schema1_registry_reads_as_published(schema1: Registry, tmp_path: Path) -> None:
    raw = json.loads((SCHEMA1_REGISTRY / "ai4i-failure/v0001/manifest.json").read_text())
    assert raw["schema"] == 1 and "schema_version" not in raw  # really the old schema
    assert schema1.list_versions() == ["v0001"]
    m = schema1.show("v0001")
    assert m.threshold == raw["threshold"] == contract.load_decision(
        SCHEMA1_REGISTRY / "ai4i-failure/v0001").threshold
    assert m.model_family == "keras-mlp"  # the documented default for schema 1
    assert m.formats == tuple(raw["formats"]) and m.data_version == raw["data_version"]
    assert {rel: e.to_dict() for rel, e in m.files.items()} == raw["files"]
    keras = m.metric("keras", "pr_auc")
    assert keras is not None and keras.to_dict() == {
        k: raw["metrics"]["keras"]["pr_auc"][k] for k in ("value", "ci_low", "ci_high")}
    assert schema1.aliases() == {"candidate": "v0001", "champion": "v0001"}
    assert schema1.champion_or_newest() == "v0001" and schema1.candidate_or_newest() == "v0001"
    assert [e.action for e in schema1.alias_history("champion")] == ["promote"]

    dest = schema1.fetch("v0001", tmp_path / "fetched")
    assert (dest / "manifest.json").read_bytes() == (SCHEMA1_REGISTRY / "ai4i-failure/v0001/manifest.json"
                                                     ).read_bytes()  # the stored bytes, verified
    assert contract.load_decision(dest).threshold == m.threshold
    assert contract.load_feature_spec(dest).names == contract.load_feature_spec(
        SCHEMA1_REGISTRY / "ai4i-failure/v0001").names


def test_schema1_version_republishes_as_newest_schema(schema1: Registry, tmp_path: Path) -> None:
    """A real version (real LiteRT files) passes today's publish checks and keeps its lineage."""
    old = schema1.show("v0001")
    dest = schema1.fetch("v0001", tmp_path / "fetched")
    plant = Registry(FilesystemBackend(tmp_path / "plant"))
    copied = plant.publish(dest, run_id=old.run_id)
    assert copied.schema_version == contract.SCHEMA_VERSION and copied.files == old.files
    assert (copied.code_version, copied.data_version, copied.threshold, copied.golden) == (
        old.code_version, old.data_version, old.threshold, old.golden)
    # The shipped file's metrics, kept under "int8" by the old code, are read under "edge" now.
    assert {k: v for k, v in copied.metrics.items() if k != "edge"} == {
        k: v for k, v in old.metrics.items() if k != "int8"}
    assert copied.metrics["edge"] == old.metrics["int8"] == dict(old.metrics["int8"])
    assert old.metric("edge", "pr_auc") == old.metrics["int8"]["pr_auc"]
    assert copied.model_family == "keras-mlp" and copied.edge_format == "int8"


def test_schema1_registry_takes_new_versions_and_moves(schema1: Registry, tmp_path: Path) -> None:
    """Old history and new moves form one history; a new version continues the numbering."""
    with pytest.raises(AliasError, match="nothing to roll back"):
        schema1.rollback()
    assert schema1.publish(schema1.fetch("v0001", tmp_path / "f"), run_id="again").version == "v0002"
    schema1.promote("v0002")
    assert schema1.rollback().version == "v0001"
    assert [(e.action, e.version) for e in schema1.alias_history("champion")] == [
        ("promote", "v0001"), ("promote", "v0002"), ("rollback", "v0001")]
    assert schema1.show("v0001").schema_version == schema1.show("v0002").schema_version


# -- assembly (no backend needed) -------------------------------------------------------------

def test_assemble_builds_the_contract_layout(tmp_path: Path) -> None:
    dest = assemble_version(make_run_dir(tmp_path), tmp_path / "v")
    files = sorted(p.relative_to(dest).as_posix() for p in dest.rglob("*") if p.is_file())
    assert files == sorted([
        contract.MANIFEST, contract.DECISION, contract.FEATURE_SPEC, contract.REFERENCE_STATS,
        *(contract.litert_file(f) for f in contract.LITERT_FORMATS),
        *(name for f in contract.LITERT_FORMATS for name in contract.golden_files(f)),
        *contract.EVIDENCE.values(),
        contract.SAVED_MODEL_PB, "saved_model/variables/variables.index",
        "saved_model/variables/variables.data-00000-of-00001",
    ])
    assert contract.load_decision(dest).threshold == 0.42
    draft = contract.VersionDraft.from_dict(json.loads((dest / contract.MANIFEST).read_text()))
    assert draft.code_version == CODE_VERSION and set(draft.lineage) == {"model", "evaluation", "edge_model"}


def test_assemble_refuses_incomplete_or_failed_runs(tmp_path: Path) -> None:
    with pytest.raises(AssemblyError, match="no converted edge model"):
        assemble_version(make_run_dir(tmp_path / "a", edge=False), tmp_path / "va")
    with pytest.raises(GatesNotPassedError, match="gates failed: min_pr_auc"):
        assemble_version(make_run_dir(tmp_path / "b", gates=False), tmp_path / "vb")
    run = make_run_dir(tmp_path / "c")
    (run / "validate" / "result").unlink()
    with pytest.raises(AssemblyError, match="missing data validation result"):
        assemble_version(run, tmp_path / "vc")
    with pytest.raises(RunNotFoundError, match="run directory not found"):
        assemble_version(tmp_path / "nope", tmp_path / "vd")
    assert not any((tmp_path / v).exists() for v in ("va", "vb", "vc", "vd"))


def _real_run() -> Path | None:
    runs = sorted(RUNS.glob("shopfloor-training-*/convert/edge_model/saved_model/saved_model.pb"))
    return runs[-1].parents[3] if runs else None


def test_real_run_round_trip(tmp_path: Path) -> None:
    """A real local run if one exists (else the fixture layout): assemble, publish, fetch."""
    run = _real_run() or make_run_dir(tmp_path / "runs")
    version = assemble_version(run, tmp_path / "version")
    reg = Registry(FilesystemBackend(tmp_path / "registry"))
    manifest = reg.publish(version, run_id=run.name)
    assert manifest.run_id == run.name and manifest.formats[0] == "saved_model"
    assert {"keras", "baseline", "edge"} <= set(manifest.metrics)
    dest = reg.fetch(manifest.version, tmp_path / "fetched")
    # The shipped family's SavedModel (the tree ensemble's exists only in the edge model; runs
    # converted before issue 10 shipped the MLP's from the model artifact).
    shipped = run / "convert" / "edge_model" / "saved_model" / "saved_model.pb"
    shipped = shipped if shipped.exists() else run / "train" / "model" / "saved_model" / "saved_model.pb"
    assert (dest / "saved_model" / "saved_model.pb").read_bytes() == shipped.read_bytes()
    family = json.loads((run / "convert" / "edge_model" / "manifest.json").read_text()).get("model_family")
    assert manifest.model_family == (family or "keras-mlp")
    # A fetched version re-published elsewhere (e.g. cloud -> plant registry) keeps its lineage.
    copied = Registry(FilesystemBackend(tmp_path / "plant")).publish(dest, run_id=run.name)
    assert copied.code_version == manifest.code_version
    assert copied.files == manifest.files


# -- locations and the backend table ---------------------------------------------------------------

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
    for bad, message in [("gs://bucket/x", "unsupported"), ("s3:///x", "no bucket"),
                         ("s3://Bucket_1/x", "not an S3 bucket"), ("s3://bucket/a/../b", "'..'"),
                         ("s3://bucket/x\n", "control characters"), ("/tmp/reg\n", "control characters"),
                         ("", "empty"), (__file__, "not a directory")]:
        with pytest.raises(InvalidNameError, match=message) as info:
            open_registry(bad)
        assert info.value.exit_code == 2, bad
    with pytest.raises(InvalidNameError, match="model name"):
        open_registry(str(tmp_path), model_name="ai4i-failure\n")


def test_backend_is_chosen_from_one_scheme_table(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Another store plugs in as one entry of the table (e.g. an edge site's mirror)."""
    seen: list[str] = []

    def mirror(rest: str) -> FilesystemBackend:
        seen.append(rest)
        return FilesystemBackend(tmp_path / "mirror" / rest)

    assert set(BACKENDS) == {"file", "s3"}
    monkeypatch.setitem(BACKENDS, "mirror", mirror)
    reg = open_registry("mirror://site-7")
    assert seen == ["site-7"] and reg.backend.describe() == str(tmp_path / "mirror" / "site-7")
    assert reg.list_versions() == []
