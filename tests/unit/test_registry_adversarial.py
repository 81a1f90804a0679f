"""The registry against careless or hostile inputs: links and special files in a run, versions
that do not load, tampered storage, corrupt documents, hostile names, file modes.

Each probe states what must hold; the ones that reproduce a filed defect name it (issue 7).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from shopfloor import contract, errors, lineage
from shopfloor.contract import DECISION, FEATURE_SPEC, MANIFEST, FeatureSpec, golden_files, litert_file
from shopfloor.registry import (
    AssemblyError,
    FilesystemBackend,
    IntegrityError,
    InvalidNameError,
    Registry,
    assemble_version,
    open_registry,
)
from shopfloor.registry import core as registry_core
from tests.conftest import use_s3
from tests.fixtures.versions import SPEC, make_run_dir, make_version_dir, tiny_litert

REPO = Path(__file__).resolve().parents[2]
NOBODY = 65534


@pytest.fixture(params=["fs", "s3"])
def registry(request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Registry:
    if request.param == "fs":
        return Registry(FilesystemBackend(tmp_path / "registry"))
    use_s3(monkeypatch, request.getfixturevalue("s3_endpoint"), "registry-adversarial")
    return open_registry(f"s3://registry-adversarial/t-{uuid.uuid4().hex[:12]}")


@pytest.fixture
def fs_registry(tmp_path: Path) -> Registry:
    return Registry(FilesystemBackend(tmp_path / "registry"))


def _nothing_stored(reg: Registry) -> bool:
    return reg.backend.list(reg.model) == {}


# -- issue 7 item 3: links and special files inside a run directory ------------------------------

def _secret(tmp_path: Path) -> Path:
    """A file elsewhere on the machine, shaped so that only the link check can refuse it."""
    secret = tmp_path / "elsewhere" / "secret.json"
    secret.parent.mkdir(parents=True)
    secret.write_text(contract.dumps(contract.Decision(0.5).to_dict()))
    return secret


@pytest.mark.parametrize("where", [
    "convert/edge_model/decision.json",                     # a file the version copies
    "train/model/saved_model/variables/variables.index",    # inside the copied SavedModel tree
    "train/model/saved_model/assets",                       # a linked directory in the tree
    "evaluate/evaluation/verdict.json",                     # evidence read and kept
    "validate/result",                                      # a single-file step output
    "convert",                                              # a linked step directory
])
def test_register_refuses_links_inside_the_run(tmp_path: Path, fs_registry: Registry, where: str) -> None:
    run = make_run_dir(tmp_path / "runs")
    secret = _secret(tmp_path)
    target = run / where
    if where == "convert":
        moved = tmp_path / "elsewhere" / "convert"
        shutil.move(target, moved)
        target.symlink_to(moved, target_is_directory=True)
    elif where.endswith("assets"):
        target.symlink_to(secret.parent, target_is_directory=True)
    else:
        secret.write_bytes(target.read_bytes())  # same content: only the link gives it away
        target.unlink()
        target.symlink_to(secret)
    dest = tmp_path / "version"
    with pytest.raises(AssemblyError, match="symbolic link") as info:
        assemble_version(run, dest)
    assert info.value.exit_code == 2
    assert where.rsplit("/", 1)[-1] in str(info.value)
    assert not dest.exists() or not any(dest.rglob("*"))
    assert _nothing_stored(fs_registry)


def test_register_refuses_a_fifo_without_blocking(tmp_path: Path) -> None:
    run = make_run_dir(tmp_path / "runs")
    fifo = run / "train/model/saved_model/variables/pipe"
    os.mkfifo(fifo)
    with pytest.raises(AssemblyError, match="FIFO"):
        assemble_version(run, tmp_path / "version")


def test_publish_refuses_links_and_hidden_files_in_a_version_dir(tmp_path: Path,
                                                                   fs_registry: Registry) -> None:
    version = make_version_dir(tmp_path)
    spec = version / FEATURE_SPEC
    outside = tmp_path / "spec.json"
    outside.write_bytes(spec.read_bytes())
    spec.unlink()
    spec.symlink_to(outside)
    with pytest.raises(AssemblyError, match="symbolic link"):
        fs_registry.publish(version, run_id="r")
    spec.unlink()
    spec.write_bytes(outside.read_bytes())
    (version / "saved_model" / ".hidden").write_bytes(b"x")
    with pytest.raises(AssemblyError, match="hidden"):
        fs_registry.publish(version, run_id="r")
    (version / "saved_model" / ".hidden").unlink()
    (version / "saved_model" / "line\nbreak").write_bytes(b"x")
    with pytest.raises(AssemblyError, match="cannot be published"):
        fs_registry.publish(version, run_id="r")
    assert _nothing_stored(fs_registry)


# -- issue 6: a version that does not load is refused, naming the file ------------------------------

def _json(path: Path, payload: object) -> None:
    path.write_text(json.dumps(payload))


def _edit(path: Path, change: Callable[[dict], None]) -> None:
    data = json.loads(path.read_text())
    change(data)
    _json(path, data)


BROKEN: dict[str, tuple[str, Callable[[Path], None]]] = {
    "decision not JSON": (DECISION, lambda v: (v / DECISION).write_text("{threshold: 0.4")),
    "decision a list": (DECISION, lambda v: _json(v / DECISION, [0.4])),
    "decision without threshold": (DECISION, lambda v: _edit(v / DECISION, lambda d: d.pop("threshold"))),
    "decision threshold 1.5": (DECISION, lambda v: _edit(v / DECISION, lambda d: d.update(threshold=1.5))),
    "decision unknown field": (DECISION, lambda v: _edit(v / DECISION, lambda d: d.update(thresold=0.4))),
    "feature spec old shape": (FEATURE_SPEC, lambda v: _json(v / FEATURE_SPEC, {"features": ["torque_nm"]})),
    "feature spec lengths": (FEATURE_SPEC, lambda v: _edit(v / FEATURE_SPEC, lambda d: d["mean"].pop())),
    "feature spec zero scale": (FEATURE_SPEC, lambda v: _edit(v / FEATURE_SPEC, lambda d: d.update(
        scale=[0.0] * len(d["names"])))),
    "golden without n_features": ("golden_int8.json", lambda v: _edit(
        v / "golden_int8.json", lambda d: d.pop("n_features"))),
    "golden names another npz": ("golden_int8.json", lambda v: _edit(
        v / "golden_int8.json", lambda d: d.update(files={"npz": "golden_float32.npz"}))),
    "golden width": ("golden_float32.json", lambda v: _edit(
        v / "golden_float32.json", lambda d: d.update(n_features=d["n_features"] + 1))),
    "golden npz missing": ("golden_int8.npz", lambda v: (v / "golden_int8.npz").unlink()),
    "draft manifest a list": (MANIFEST, lambda v: _json(v / MANIFEST, [])),
    "draft manifest of another kind": (MANIFEST, lambda v: _edit(
        v / MANIFEST, lambda d: d.update(kind="model"))),
    "draft manifest unknown field": (MANIFEST, lambda v: _edit(v / MANIFEST, lambda d: d.update(extra=1))),
    "evaluation a list": ("evidence/evaluation.json", lambda v: _json(v / "evidence/evaluation.json", [])),
    "verdict not JSON": ("evidence/verdict.json", lambda v: (
        v / "evidence/verdict.json").write_bytes(b"\xff")),
    "equivalence a string": ("evidence/equivalence.json", lambda v: _json(v / "evidence/equivalence.json",
                                                                           "passed")),
    "validation missing": ("evidence/validation.json", lambda v: (v / "evidence/validation.json").unlink()),
    "metric interval not numbers": ("evidence/evaluation.json", lambda v: _edit(
        v / "evidence/evaluation.json", lambda d: d["models"]["keras"]["overall"]["pr_auc"].update(
            ci_low="low"))),
    "int8 not a flatbuffer": ("model_int8.tflite", lambda v: (v / "model_int8.tflite").write_bytes(
        b"TFL3" + os.urandom(200))),
    "int8 empty": ("model_int8.tflite", lambda v: (v / "model_int8.tflite").write_bytes(b"")),
    "float32 truncated": ("model_float32.tflite", lambda v: (v / "model_float32.tflite").write_bytes(
        (v / "model_float32.tflite").read_bytes()[:200])),
    "int8 wrong input width": ("model_int8.tflite", lambda v: (v / "model_int8.tflite").write_bytes(
        tiny_litert(len(SPEC.names) + 1))),
    "float32 two outputs per row": ("model_float32.tflite", lambda v: (
        v / "model_float32.tflite").write_bytes(tiny_litert(len(SPEC.names), outputs=2))),
    "saved model without its graph": ("saved_model/saved_model.pb", lambda v: (
        v / "saved_model/saved_model.pb").unlink()),
}


@pytest.mark.parametrize("case", sorted(BROKEN))
def test_publish_refuses_a_version_that_does_not_load(tmp_path: Path, fs_registry: Registry,
                                                      case: str) -> None:
    name, breaks = BROKEN[case]
    version = make_version_dir(tmp_path)
    fs_registry.publish(version, run_id="intact")  # the same directory loads before the change
    breaks(version)
    with pytest.raises(AssemblyError) as info:
        fs_registry.publish(version, run_id="broken")
    assert info.value.path == name and name in str(info.value), str(info.value)
    assert info.value.exit_code == 2
    assert fs_registry.list_versions() == ["v0001"]
    assert [k for k in fs_registry.backend.list(fs_registry.model) if "v0002" in k] == []  # no id claimed


def test_an_unloadable_part_is_refused_at_assembly_too(tmp_path: Path) -> None:
    run = make_run_dir(tmp_path / "runs")
    (run / "convert/edge_model" / litert_file("int8")).write_bytes(b"not a model")
    with pytest.raises(AssemblyError, match=r"model_int8\.tflite does not load"):
        assemble_version(run, tmp_path / "version")


def test_fixture_litert_files_are_real_models(tmp_path: Path) -> None:
    """The builder's LiteRT file computes sigmoid(x·w + b) for a batch, as the fixture's golden set says."""
    import numpy as np
    from ai_edge_litert.interpreter import Interpreter

    version = make_version_dir(tmp_path)
    interpreter = Interpreter(model_path=str(version / litert_file("int8")))
    index = interpreter.get_input_details()[0]["index"]
    golden = contract.load_golden(version, "int8")
    with np.load(version / golden_files("int8")[1]) as data:
        x, expected = data["inputs"], data["outputs"]
    interpreter.resize_tensor_input(index, list(x.shape))
    interpreter.allocate_tensors()
    interpreter.set_tensor(index, x)
    interpreter.invoke()
    got = interpreter.get_tensor(interpreter.get_output_details()[0]["index"]).reshape(-1)
    assert got.shape == (golden.n,) and np.abs(got - expected).max() <= golden.tolerance


# -- issue 7 items 7 and 9: documents that are JSON but not what they should be ---------------------

def test_a_manifest_that_is_not_an_object_is_an_integrity_error(registry: Registry, tmp_path: Path) -> None:
    version = make_version_dir(tmp_path)
    for _ in range(3):
        registry.publish(version, run_id="r")
    registry.promote("v0003")
    registry.backend.put("ai4i-failure/v0002/manifest.json", b"[1, 2, 3]")
    for call in (lambda: registry.show("v0002"), lambda: registry.fetch("v0002", tmp_path / "out")):
        with pytest.raises(IntegrityError, match=r"v0002/manifest\.json: expected a JSON object") as info:
            call()
        assert info.value.exit_code == 5
    assert not (tmp_path / "out").exists()

    listing = registry.listing()
    assert [e.version for e in listing.versions] == ["v0001", "v0002", "v0003"]  # the others still listed
    broken = listing.versions[1]
    assert broken.manifest is None and broken.problem and "expected a JSON object" in broken.problem
    assert listing.versions[0].manifest is not None and listing.versions[2].manifest is not None
    assert listing.aliases == {"champion": "v0003"} and listing.problems == ()


@pytest.mark.parametrize("payload, message", [
    (b"{not json", "not valid JSON"),
    (b'"a string"', "expected a JSON object"),
    (json.dumps({"model": "ai4i-failure", "env": "cloud", "alias": "champion", "version": 7}).encode(),
     "field 'version'"),
    (json.dumps({"model": "ai4i-failure", "env": "cloud", "alias": "staging", "version": None}).encode(),
     "describes ai4i-failure/cloud/staging"),
])
def test_a_corrupt_alias_file_is_named(registry: Registry, tmp_path: Path, payload: bytes,
                                       message: str) -> None:
    registry.publish(make_version_dir(tmp_path), run_id="r")
    registry.set_alias("candidate", "v0001")
    registry.promote("v0001")
    key = "ai4i-failure/_aliases/cloud/champion.json"
    registry.backend.put(key, payload)
    where = f"{registry.backend.describe()}/{key}"
    with pytest.raises(IntegrityError, match=message) as info:
        registry.resolve("champion")
    assert where in str(info.value)
    with pytest.raises(IntegrityError, match=r"champion\.json"):
        registry.aliases()
    listing = registry.listing()
    assert listing.aliases == {"candidate": "v0001"}  # the readable alias is kept
    assert len(listing.problems) == 1 and where in listing.problems[0]
    assert [e.manifest is not None for e in listing.versions] == [True]


def test_manifests_that_lie_or_come_from_the_future_are_refused(registry: Registry, tmp_path: Path) -> None:
    version = make_version_dir(tmp_path)
    registry.publish(version, run_id="r")
    registry.publish(version, run_id="r")
    first = json.loads(registry.backend.read("ai4i-failure/v0001/manifest.json") or b"")
    registry.backend.put("ai4i-failure/v0002/manifest.json", json.dumps(first).encode())
    with pytest.raises(IntegrityError, match="describes ai4i-failure v0001"):
        registry.show("v0002")
    registry.backend.put("ai4i-failure/v0001/manifest.json",
                         json.dumps({**first, "schema_version": contract.SCHEMA_VERSION + 1}).encode())
    with pytest.raises(IntegrityError, match="upgrade shopfloor"):
        registry.show("v0001")
    bad_path = {**first, "files": {**first["files"], "../escape": first["files"]["decision.json"]}}
    registry.backend.put("ai4i-failure/v0001/manifest.json", json.dumps(bad_path).encode())
    with pytest.raises(IntegrityError, match="unsafe path"):
        registry.fetch("v0001", tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_an_oversized_document_is_refused_unread(registry: Registry, tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    registry.publish(make_version_dir(tmp_path), run_id="r")
    monkeypatch.setattr(registry_core, "MAX_DOCUMENT_BYTES", 64)
    with pytest.raises(IntegrityError, match="larger than 64 bytes"):
        registry.show("v0001")


# -- tampered filesystem storage ---------------------------------------------------------------------

def test_a_stored_file_replaced_by_a_link_is_refused_even_with_the_right_content(
        fs_registry: Registry, tmp_path: Path) -> None:
    fs_registry.publish(make_version_dir(tmp_path), run_id="r")
    stored = Path(fs_registry.backend.describe()) / "ai4i-failure/v0001" / litert_file("int8")
    copy = tmp_path / "same-bytes.tflite"
    copy.write_bytes(stored.read_bytes())
    stored.unlink()
    stored.symlink_to(copy)
    with pytest.raises(IntegrityError, match=r"model_int8\.tflite") as info:  # the link's own size differs
        fs_registry.fetch("v0001", tmp_path / "out")
    assert info.value.path == litert_file("int8")
    assert not (tmp_path / "out").exists()

    manifest = Path(fs_registry.backend.describe()) / "ai4i-failure/v0001" / MANIFEST
    elsewhere = tmp_path / "manifest.json"
    elsewhere.write_bytes(manifest.read_bytes())
    manifest.unlink()
    manifest.symlink_to(elsewhere)
    with pytest.raises(IntegrityError, match="symbolic link"):
        fs_registry.show("v0001")


def test_a_planted_file_in_a_version_is_listed_not_hidden(fs_registry: Registry, tmp_path: Path) -> None:
    fs_registry.publish(make_version_dir(tmp_path), run_id="r")
    planted = Path(fs_registry.backend.describe()) / "ai4i-failure/v0001/saved_model/assets"
    planted.symlink_to(tmp_path, target_is_directory=True)
    with pytest.raises(IntegrityError, match="saved_model/assets is stored but not in the manifest"):
        fs_registry.fetch("v0001", tmp_path / "out")


def test_unwritable_storage_is_one_line(tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    reg = Registry(FilesystemBackend(blocker / "registry"))
    with pytest.raises(errors.ExternalServiceError, match=r"cannot lock .*a-file/registry.*Not a directory"):
        reg.publish(make_version_dir(tmp_path), run_id="r")


# -- issue 7 item 13: a trailing newline (or other junk) in a name ------------------------------------

@pytest.mark.parametrize("call", [
    lambda reg: reg.promote("v0001", env="edge\n"),
    lambda reg: reg.promote("v0001", env="edge\r"),
    lambda reg: reg.set_alias("champion\n", "v0001"),
    lambda reg: reg.set_alias("champion\x00", "v0001"),
    lambda reg: reg.set_alias("c" * 64, "v0001"),
    lambda reg: reg.promote("v0001\n"),
    lambda reg: reg.rollback(env="edge\n"),
    lambda reg: reg.aliases(env="cloud\n"),
    lambda reg: reg.publish(Path("."), run_id="r", version="v0002\n"),
    lambda reg: Registry(reg.backend, "ai4i-failure\n"),
], ids=["env-newline", "env-return", "alias-newline", "alias-nul", "alias-64-chars", "version-newline",
        "rollback-env-newline", "list-env-newline", "publish-version-newline", "model-newline"])
def test_names_are_matched_whole(registry: Registry, tmp_path: Path,
                                 call: Callable[[Registry], object]) -> None:
    registry.publish(make_version_dir(tmp_path), run_id="r")
    before = registry.backend.list("")
    with pytest.raises(InvalidNameError) as info:
        call(registry)
    assert info.value.exit_code == 2
    assert registry.backend.list("") == before  # nothing created


# -- issue 7 item 8: one mode rule for every artifact, readable by a second user ----------------------

@pytest.fixture
def umask() -> Iterator[Callable[[int], None]]:
    previous = os.umask(0o022)
    os.umask(previous)

    def set_mask(mask: int) -> None:
        os.umask(mask)

    yield set_mask
    os.umask(previous)


def _modes(root: Path) -> set[tuple[str, int]]:
    return {("dir" if p.is_dir() else "file", p.stat().st_mode & 0o777) for p in root.rglob("*")
            if not p.name.startswith(".") and ".locks" not in p.parts}


@pytest.mark.parametrize("mask, file_mode, dir_mode", [(0o022, 0o644, 0o755), (0o027, 0o640, 0o750)])
def test_every_written_file_follows_the_one_mode_rule(tmp_path: Path, umask: Callable[[int], None], mask: int,
                                                      file_mode: int, dir_mode: int) -> None:
    umask(mask)
    version = make_version_dir(tmp_path / "src")
    reg = Registry(FilesystemBackend(tmp_path / "registry"))
    reg.publish(version, run_id="r")
    reg.promote("v0001")
    fetched = reg.fetch("v0001", tmp_path / "fetched" / "v0001")
    lineage.write_text_atomic(tmp_path / "report" / "report.html", "<p>ok</p>")
    assert lineage.FILE_MODE == 0o644
    for root in (tmp_path / "registry", fetched, version, tmp_path / "report"):
        assert _modes(root) <= {("file", file_mode), ("dir", dir_mode)}, root
        assert ("file", file_mode) in _modes(root)
    assert fetched.stat().st_mode & 0o777 == dir_mode  # not mkdtemp's 0700


def _runs_as(user: int, python: str, *args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    def drop() -> None:
        os.setgroups([])
        os.setgid(user)
        os.setuid(user)

    env = {"PYTHONPATH": str(REPO), "HOME": str(cwd), "PATH": "/usr/bin:/bin", "PYTHONDONTWRITEBYTECODE": "1"}
    return subprocess.run([python, *args], cwd=cwd, preexec_fn=drop, capture_output=True, text=True,
                          timeout=120, env=env, check=False)


def _python_for(user: int, cwd: Path) -> str | None:
    """An interpreter (3.11+) the second user can run that imports shopfloor from this checkout."""
    for python in dict.fromkeys([sys.executable, shutil.which("python3") or "", "/usr/bin/python3"]):
        try:
            probe = _runs_as(user, python, "-c", "import sys, shopfloor.registry; "
                             "assert sys.version_info >= (3, 11)", cwd=cwd) if python else None
        except OSError:  # e.g. the venv's interpreter lives below root's 0700 home
            continue
        if probe is not None and probe.returncode == 0:
            return python
    return None


@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() != 0, reason="switching users needs root")
def test_a_second_user_reads_a_published_and_a_fetched_version(umask: Callable[[int], None]) -> None:
    umask(0o022)
    base = Path(tempfile.mkdtemp(prefix="shopfloor-second-user-", dir="/tmp"))
    try:
        base.chmod(0o755)  # tmp_path lives below a 0700 directory: a second user could not even look
        reg = Registry(FilesystemBackend(base / "registry"))
        manifest = reg.publish(make_version_dir(base / "src"), run_id="r")
        reg.promote(manifest.version)
        fetched = reg.fetch(manifest.version, base / "served" / manifest.version)
        home = base / "home"
        home.mkdir()
        os.chown(home, NOBODY, NOBODY)
        python = _python_for(NOBODY, home)
        if python is None:
            pytest.skip("no Python 3.11+ that the second user may run with this checkout on its path")
        script = (
            "import json, sys\n"
            "from pathlib import Path\n"
            "from shopfloor import contract\n"
            "from shopfloor.registry import open_registry\n"
            "reg = open_registry(sys.argv[1])\n"
            "copy = reg.fetch('v0001', Path(sys.argv[2]) / 'copy')\n"
            "served = Path(sys.argv[3])\n"
            "print(json.dumps({'versions': reg.list_versions(), 'champion': reg.resolve('champion'),\n"
            "    'threshold': reg.show('v0001').threshold,\n"
            "    'served': contract.load_manifest(served).version,\n"
            "    'bytes': sum(len((served / rel).read_bytes())\n"
            "                 for rel in contract.load_manifest(served).files),\n"
            "    'copied': sorted(p.relative_to(copy).as_posix()\n"
            "                     for p in copy.rglob('*') if p.is_file())}))\n"
        )
        done = _runs_as(NOBODY, python, "-c", script, str(base / "registry"), str(home), str(fetched),
                        cwd=home)
        assert done.returncode == 0, done.stderr[-2000:]
        seen = json.loads(done.stdout)
        assert seen["versions"] == ["v0001"] and seen["champion"] == "v0001"
        assert seen["threshold"] == manifest.threshold and seen["served"] == "v0001"
        assert seen["bytes"] == manifest.total_bytes
        assert seen["copied"] == sorted([*manifest.files, MANIFEST])
    finally:
        shutil.rmtree(base, ignore_errors=True)


def test_feature_spec_builder_matches_the_contract() -> None:
    """The fixture's spec round-trips through the contract (what publish parses)."""
    assert FeatureSpec.from_dict(json.loads(contract.dumps(SPEC.to_dict()))) == SPEC
