"""A real tree version, end to end in the real runtimes: built with the library steps from the
embedded data (tree family only), published and signed, then served by the predictor core and
the ``shopfloor edge serve`` process on int8-preferring profiles, exported and imported as a
bundle, and judged as a champion. Every answer is compared with
:func:`shopfloor.training.trees.predict_trees` (scikit-learn) on real rows.
"""

from __future__ import annotations

import json
import os
import threading
import urllib.request
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from shopfloor import contract
from shopfloor.data import schema
from shopfloor.data.ingest import ingest, read_split
from shopfloor.evaluation.policy import load_policy
from shopfloor.inference.features import Featurizer
from shopfloor.inference.predictor import Predictor
from shopfloor.training.train import load_trees
from shopfloor.training.trees import predict_trees
from tests.conftest import run_cli
from tests.fixtures.versions import PUBLISHED_MLP
from tests.integration.edge_runtime import MODEL, running_runtime
from tests.v2_cases import INFER, dumps, tensors

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
#: float32 leaf sums against scikit-learn's float64 ones.
MAX_DIFF = 1e-5
#: Int8-preferring profiles: a tree version has no int8 file, so they run its float32 file.
INT8_PROFILES = ("laptop", "gateway-arm64-1g")


@pytest.fixture(scope="module")
def tree_run(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """ingest -> validate -> train (trees only) -> evaluate -> convert -> assemble -> publish ->
    sign, in process, with the library functions the pipeline's components call."""
    from shopfloor.conversion.step import convert_step
    from shopfloor.edge.signing import TrustStore, generate_keypair, load_public_key, sign_manifest
    from shopfloor.evaluation.evaluate import evaluate_step
    from shopfloor.registry import open_registry
    from shopfloor.registry.assemble import assemble_from_artifacts
    from shopfloor.training.params import TrainParams
    from shopfloor.training.train import train_step
    from shopfloor.validation.step import validate_step

    root = tmp_path_factory.mktemp("tree-run")
    data = root / "data"
    version = ingest("embedded:ai4i2020", data).outputs["data_version"]
    validate_step(data, root / "validation.json", root / "validation.html", version)
    train_step(data, root / "model", TrainParams(), version, families=(contract.HIST_GBT,))
    policy = replace(load_policy(), candidates=(contract.HIST_GBT,))
    evaluated = evaluate_step(data, root / "model", root / "evaluation", data_version=version, policy=policy)
    assert evaluated.outputs["selected"] == contract.HIST_GBT, evaluated.reason
    converted = convert_step(data, root / "model", root / "evaluation", root / "edge",
                             root / "equivalence.json", data_version=version, policy=policy)
    assert converted.verdict.value == "pass", converted.reason
    assemble_from_artifacts(root / "model", root / "edge", root / "evaluation", root / "equivalence.json",
                            root / "validation.json", root / "version")
    registry = open_registry(root / "registry")
    manifest = registry.publish(root / "version", run_id="tree-run", version="v0001")
    pair = generate_keypair(root / "keys", "tree-test")
    trust = root / "trust.yaml"
    TrustStore().with_key(load_public_key(pair.public_path), "tree tests").save(trust)
    registry.add_signature("v0001", sign_manifest(registry.manifest_bytes("v0001"), pair.private_path))
    fetched = registry.fetch("v0001", root / "fetched" / "v0001")
    test = read_split(data, "test")
    spec = Featurizer.load(root / "model" / contract.FEATURE_SPEC)
    expected = predict_trees(load_trees(root / "model"), spec.transform(test))
    return {"root": root, "data": data, "registry": root / "registry", "manifest": manifest, "trust": trust,
            "private_key": pair.private_path, "version_dir": fetched, "test": test, "expected": expected,
            "policy": policy}


def _columns(frame: pd.DataFrame) -> dict[str, np.ndarray]:
    return {name: frame[name].to_numpy() for name in schema.INPUT_COLUMNS}


def _rows(frame: pd.DataFrame) -> dict[str, list[Any]]:
    return {name: frame[name].tolist() for name in schema.INPUT_COLUMNS}


def test_the_version_records_its_family_and_float32_only(tree_run: dict[str, Any]) -> None:
    manifest = tree_run["manifest"]
    assert manifest.model_family == contract.HIST_GBT
    assert manifest.formats == ("saved_model", "float32") and manifest.edge_format == "float32"
    assert set(manifest.golden) == {"float32"}
    assert manifest.metric(contract.EDGE_KEY, "pr_auc") is not None


@pytest.mark.parametrize("prefer", [None, "int8", "float32"])
def test_the_predictor_answers_what_scikit_learn_says_batch_and_single(
    tree_run: dict[str, Any], prefer: str | None
) -> None:
    predictor = Predictor.load(tree_run["version_dir"], prefer=prefer)
    assert predictor.fmt == "float32"
    test, expected = tree_run["test"], tree_run["expected"]
    columns = _columns(test)
    batch = np.concatenate([
        predictor.predict({k: v[i : i + predictor.max_batch] for k, v in columns.items()}).probability
        for i in range(0, len(test), predictor.max_batch)])
    single = np.array([predictor.predict({k: v[i : i + 1] for k, v in columns.items()}).probability[0]
                       for i in range(len(test))])
    np.testing.assert_array_equal(single, batch)
    assert np.abs(batch - expected).max() < MAX_DIFF
    np.testing.assert_array_equal(batch >= predictor.threshold, expected >= predictor.threshold)
    assert 0 < (expected >= predictor.threshold).sum() < len(test)


def test_one_predictor_shared_by_threads_answers_each_its_own_rows(tree_run: dict[str, Any]) -> None:
    """Mixed batch sizes (1, a chunk, the cap) from eight threads on one tree predictor."""
    predictor = Predictor.load(tree_run["version_dir"])
    test, expected = tree_run["test"], tree_run["expected"]
    columns = _columns(test)
    slices = [(i, size) for i, size in zip(range(0, 1900, 37), [1, 64, 1024, 7] * 100, strict=False)]
    wrong: list[str] = []

    def worker(offset: int) -> None:
        for n, (start, size) in enumerate(slices):
            if n % 8 != offset:
                continue
            part = {k: v[start : start + size] for k, v in columns.items()}
            got = predictor.predict(part).probability
            want = expected[start : start + size]
            if len(got) != len(want) or np.abs(got - want).max() >= MAX_DIFF:
                wrong.append(f"rows {start}+{size}")

    threads = [threading.Thread(target=worker, args=(k,)) for k in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not wrong


@pytest.mark.parametrize("profile_name", INT8_PROFILES)
def test_int8_preferring_profiles_run_and_fit_the_float32_file(tree_run: dict[str, Any],
                                                               profile_name: str) -> None:
    from shopfloor.edge.profiles import chart_values, check_fits, load_profile

    profile, manifest = load_profile(profile_name), tree_run["manifest"]
    assert profile.variant == "int8"
    assert profile.format_for(manifest) == "float32"
    assert check_fits(manifest, profile) == []
    assert chart_values(profile, manifest)["modelFormat"] == "float32"


def _rss_mib(pid: int) -> int:
    status = Path(f"/proc/{pid}/status").read_text()
    return int(status.split("VmRSS:")[1].split()[0]) // 1024


def _serving_pid(pid: int) -> int:
    """The serving process: the console script itself, or its deepest child if it forks."""
    children = Path(f"/proc/{pid}/task/{pid}/children")
    kids = children.read_text().split() if children.exists() else []
    return _serving_pid(int(kids[0])) if kids else pid


def test_the_edge_runtime_serves_it_on_the_tightest_profile_within_its_memory(
    tree_run: dict[str, Any], tmp_path: Path
) -> None:
    """``shopfloor edge serve --profile gateway-arm64-1g`` (int8-preferring, 128 MiB): pulls and
    self-tests the tree version, answers a batch at the cap exactly as scikit-learn decides,
    and a batch at the cap does not grow the process by the ensemble's full batch tensors."""
    from shopfloor.edge.profiles import load_profile

    test, expected = tree_run["test"], tree_run["expected"]
    gateway = load_profile("gateway-arm64-1g")
    with running_runtime(tmp_path / "store", tmp_path, "--pull", str(tree_run["registry"]), "--version",
                         "v0001", "--profile", gateway.name, trust=tree_run["trust"]) as edge:
        assert "(float32)" in edge.log()

        def infer(frame: pd.DataFrame) -> dict[str, Any]:
            req = urllib.request.Request(edge.url + INFER.format(model=MODEL), data=dumps({"inputs": tensors(
                _rows(frame))}), headers={"content-type": "application/json"})
            with urllib.request.urlopen(req, timeout=60) as response:
                answer = json.loads(response.read())
            assert answer["model_version"] == "v0001"
            return {o["name"]: o for o in answer["outputs"]}

        first = infer(test[:1])
        pid = _serving_pid(edge.proc.pid)
        before = _rss_mib(pid)
        cap = infer(test[:1024])
        grown = _rss_mib(pid) - before
    probability = np.asarray(cap["failure_probability"]["data"], dtype=np.float64)
    assert np.abs(probability - expected[:1024]).max() < MAX_DIFF
    threshold = float(tree_run["manifest"].threshold)
    np.testing.assert_array_equal(np.asarray(cap["failure_predicted"]["data"]), expected[:1024] >= threshold)
    assert abs(first["failure_probability"]["data"][0] - expected[0]) < MAX_DIFF
    assert grown < 16, (f"a 1024-row batch grew the runtime by {grown} MiB "
                        f"(profile limit {gateway.memory_limit_mib} MiB)")


def test_a_bundle_for_the_gateway_exports_and_imports_the_float32_file(tree_run: dict[str, Any],
                                                                       tmp_path: Path) -> None:
    from shopfloor.edge import bundle
    from shopfloor.edge.profiles import load_profile
    from shopfloor.edge.signing import TrustStore
    from shopfloor.edge.store import ModelStore
    from shopfloor.registry import open_registry

    gateway, trust = load_profile("gateway-arm64-1g"), TrustStore.load(tree_run["trust"])
    out = tmp_path / "v0001.bundle"
    bundle.export_bundle(open_registry(tree_run["registry"]), "v0001", out,
                         release_key=tree_run["private_key"], profile=gateway)
    report = bundle.import_into_store(out, tmp_path / "store", trust, profile=gateway)
    assert (report.version, report.active) == ("v0001", "v0001")
    store = ModelStore(tmp_path / "store", trust=trust, profile=gateway)
    assert store.active() == "v0001" and store.format_of("v0001") == "float32"
    served = Predictor.load(store.version_dir("v0001"), prefer=gateway.variant)
    rows = tree_run["test"][:300]
    assert np.abs(served.predict(_columns(rows)).probability - tree_run["expected"][:300]).max() < MAX_DIFF


def test_a_tree_champion_is_judged_through_its_savedmodel(tree_run: dict[str, Any], tmp_path: Path) -> None:
    """MLP candidate (the published MLP's SavedModel) against the tree version as champion: the
    champion's scores are the compiled ensemble's SavedModel, equal to scikit-learn's."""
    import shutil

    from shopfloor.evaluation.evaluate import evaluate_step, read_scores

    mlp = tmp_path / "mlp-model"
    shutil.copytree(PUBLISHED_MLP / contract.SAVED_MODEL_DIR, mlp / contract.SAVED_MODEL_DIR)
    shutil.copy(PUBLISHED_MLP / contract.FEATURE_SPEC, mlp / contract.FEATURE_SPEC)
    shutil.copy(tree_run["root"] / "model" / "baseline.pkl", mlp / "baseline.pkl")
    policy = replace(load_policy(), candidates=(contract.KERAS_MLP,))
    result = evaluate_step(tree_run["data"], mlp, tmp_path / "evaluation", data_version="x", policy=policy,
                           champion_dir=tree_run["version_dir"], champion_version="v0001")
    assert result.outputs["selected"] == contract.KERAS_MLP, result.reason
    _, scores, _ = read_scores(tmp_path / "evaluation")
    assert set(scores) == {"keras", "baseline", "champion"}
    assert np.abs(scores["champion"] - tree_run["expected"]).max() < MAX_DIFF


def test_an_mlp_champion_is_judged_against_a_tree_candidate(tree_run: dict[str, Any], tmp_path: Path) -> None:
    from shopfloor.evaluation.evaluate import evaluate_step, read_scores

    result = evaluate_step(tree_run["data"], tree_run["root"] / "model", tmp_path / "evaluation",
                           data_version="x", policy=tree_run["policy"], champion_dir=PUBLISHED_MLP,
                           champion_version="v0001")
    assert result.outputs["selected"] == contract.HIST_GBT, result.reason
    evaluation = json.loads((tmp_path / "evaluation" / contract.EVALUATION_REPORT).read_text())
    assert "trees-vs-champion" in evaluation["differences"]
    _, scores, _ = read_scores(tmp_path / "evaluation")
    np.testing.assert_array_equal(scores["trees"], tree_run["expected"])


@pytest.mark.slow
def test_a_trees_only_policy_runs_end_to_end_and_ships_float32(tmp_path: Path) -> None:
    """``shopfloor run --params`` with ``candidates: [hist-gbt]``: no MLP is trained, and the
    summary's ``shipped`` names the tree family's float32 file with its test PR-AUC interval."""
    import yaml

    policy = {**load_policy().to_dict(), "candidates": ["hist-gbt"]}
    (tmp_path / "policy.yaml").write_text(yaml.safe_dump(policy))
    (tmp_path / "params.yaml").write_text("policy: policy.yaml\n")
    done = run_cli("run", "--params", "params.yaml", "--output", "runs", "--summary", "summary.json",
                   cwd=tmp_path)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    summary = json.loads((tmp_path / "summary.json").read_text())
    shipped = summary["shipped"]
    assert (shipped["family"], shipped["format"]) == ("hist-gbt", "float32")
    assert Path(shipped["path"]).name == contract.litert_file("float32") and Path(shipped["path"]).is_file()
    assert shipped["pr_auc"]["ci_low"] <= shipped["pr_auc"]["value"] <= shipped["pr_auc"]["ci_high"]
    assert shipped["pr_auc"]["value"] >= 0.86
    assert summary["artifacts"]["litert_int8"] is None
    assert Path(summary["artifacts"]["saved_model"]).parent == Path(shipped["path"]).parent
    assert set(summary["metrics"]) == {"trees", "baseline", "edge"}
    run_dir = Path(summary["run_dir"])
    assert not (contract.run_output(run_dir, "model") / contract.SAVED_MODEL_DIR).exists()
    from shopfloor.registry import open_registry

    registered = open_registry(tmp_path / "registry").show(summary["registry"]["version"])
    assert (registered.model_family, registered.formats) == ("hist-gbt", ("saved_model", "float32"))
