"""The training pipeline run locally through the real CLI (kfp.local, SubprocessRunner).

These are the product's acceptance tests: the main job on the embedded data, every bad input
stopping before training, a failed gate producing no edge model, a failed equivalence check
failing the run.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from subprocess import CompletedProcess
from typing import Any

import pandas as pd
import pytest
import yaml

from shopfloor import contract
from shopfloor.data import schema
from shopfloor.evaluation.policy import default_policy_path
from tests.conftest import run_cli

pytestmark = pytest.mark.slow


def _run_dir(summary: dict[str, Any]) -> Path:
    return Path(summary["run_dir"])


def _run(work: Path, *args: str, summary: str = "s.json") -> tuple[CompletedProcess[str], dict[str, Any]]:
    """``shopfloor run ARGS`` in ``work``; returns the process and the JSON summary it wrote."""
    result = run_cli("run", *args, "--output", str(work / "runs"), "--summary", str(work / summary), cwd=work)
    return result, json.loads((work / summary).read_text())


@pytest.fixture(scope="module")
def main_work(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("main")


@pytest.fixture(scope="module")
def main_run(main_work: Path) -> tuple[Any, dict[str, Any]]:
    return _run(main_work, summary="summary.json")


def test_main_job_passes_and_summarises(main_run: tuple[Any, dict[str, Any]]) -> None:
    result, summary = main_run
    assert result.returncode == 0, result.stdout + result.stderr
    assert summary["status"] == "passed"
    assert summary["data_version"].startswith("sha256:")
    assert summary["validation"]["success"] is True
    assert summary["gates"]["passed"] is True
    assert summary["equivalence"]["passed"] is True
    for model in ("keras", "trees", "baseline", "edge"):
        for metric in ("pr_auc", "roc_auc", "recall_at_precision", "f1"):
            m = summary["metrics"][model][metric]
            assert m["ci_low"] <= m["value"] <= m["ci_high"], (model, metric, m)
    # Real models, not constants: far above the 3.4 % failure rate a coin would score.
    assert summary["metrics"]["keras"]["pr_auc"]["ci_low"] > 0.5
    assert summary["metrics"]["trees"]["pr_auc"]["ci_low"] > 0.5
    # What ships: the family the policy chose on validation, its file, its test PR-AUC.
    shipped, selection = summary["shipped"], summary["selection"]
    assert shipped["family"] == selection["winner"] and shipped["family"] in contract.MODEL_FAMILIES
    assert shipped["format"] == contract.choose_format(contract.FAMILY_FORMATS[shipped["family"]])
    path = Path(shipped["path"])
    assert path.is_file() and path.name == contract.litert_file(shipped["format"])
    edge_pr_auc = summary["metrics"]["edge"]["pr_auc"]
    assert shipped["pr_auc"] == {k: edge_pr_auc[k] for k in ("value", "ci_low", "ci_high")}
    values = selection["validation"]
    best = max(values, key=lambda f: values[f]["value"])
    assert best == shipped["family"] or "non-inferior" in selection["reason"]
    for key in ("saved_model", f"litert_{shipped['format']}"):
        assert Path(summary["artifacts"][key]).exists(), key
    assert "PR-AUC" in result.stdout and "passed" in result.stdout
    # Registered as the first candidate; no champion existed to compare with.
    assert summary["registry"]["version"] == "v0001" and summary["registry"]["alias"] == "candidate"
    assert summary["champion"] is None
    assert {g["name"] for g in summary["gates"]["gates"]} >= {"non_inferior_to_baseline"}
    assert summary["checks"] == {"validation": "passed", "gates": "passed", "equivalence": "passed"}
    assert summary["failure"] is None


def test_edge_model_quality_holds_statistically(main_run: tuple[Any, dict[str, Any]]) -> None:
    """The shipped edge file judged by shopfloor.testing on the run's own test split: its
    confidence bounds, not point values, must clear the limits (the split is stratified); and
    for the tree ensemble, the compiled file agrees with scikit-learn on every decision."""
    from shopfloor.data.ingest import read_split
    from shopfloor.inference.features import Featurizer
    from shopfloor.inference.runtime import LiteRTModel
    from shopfloor.testing import assert_agreement, assert_metric

    _, summary = main_run
    run = _run_dir(summary)
    test = read_split(contract.run_output(run, "dataset"), "test")
    edge = contract.run_output(run, "edge_model")
    x, y = Featurizer.from_version(edge).transform(test), test[schema.TARGET].to_numpy()
    shipped = summary["shipped"]
    edge_p = LiteRTModel(edge / contract.litert_file(shipped["format"])).predict_proba(x)
    # A real model: far above the 3.4 % failure rate a coin would score.
    assert_metric(y, edge_p, metric="pr_auc", at_least=0.5, stratify=True)
    assert_metric(y, edge_p, metric="roc_auc", at_least=0.9, stratify=True)
    threshold = contract.load_decision(edge).threshold
    float32 = LiteRTModel(edge / contract.litert_file("float32")).predict_proba(x)
    if shipped["family"] == contract.HIST_GBT:
        from shopfloor.training.train import load_trees
        from shopfloor.training.trees import predict_trees

        reference = predict_trees(load_trees(contract.run_output(run, "model")), x)
        assert ((reference >= threshold) == (float32 >= threshold)).all()
        assert abs(reference - float32).max() < 1e-5
    else:
        assert_agreement(float32 >= threshold, edge_p >= threshold, at_least=0.98)


def test_next_run_is_judged_against_the_champion(
    main_run: tuple[Any, dict[str, Any]], main_work: Path
) -> None:
    """After v0001 is promoted, the next run's evaluate step fetches it from the registry and
    adds a non-inferiority gate against it; the new version records whom it was compared with."""
    assert run_cli("models", "promote", "v0001", cwd=main_work).returncode == 0
    result, summary = _run(main_work, summary="second.json")
    assert result.returncode == 0, result.stderr
    assert summary["champion"] == {"version": "v0001"}
    champion_gate = [g for g in summary["gates"]["gates"] if g["name"] == "non_inferior_to_champion"]
    assert len(champion_gate) == 1 and champion_gate[0]["passed"]
    # Same data, code and seed: the candidate equals the champion. The champion is scored
    # through its SavedModel (for trees: the compiled ensemble, equal to scikit-learn up to
    # float32 rounding), so the difference is 0 up to that rounding.
    assert champion_gate[0]["value"] == pytest.approx(0.0, abs=1e-3)
    assert summary["registry"]["version"] == "v0002" and summary["registry"]["champion"] == "v0001"
    shown = run_cli("models", "show", "v0002", cwd=main_work)
    assert shown.returncode == 0 and "v0001" in shown.stdout


def test_artifacts_carry_lineage(main_run: tuple[Any, dict[str, Any]]) -> None:
    _, summary = main_run
    run = _run_dir(summary)
    version = summary["data_version"]
    for key in ("dataset", "model", "evaluation", "edge_model"):
        manifest = contract.run_output(run, key)
        data = json.loads((manifest / contract.MANIFEST).read_text())
        assert data["data_version"] == version
        assert data["code_version"]
        for rel, digest in data["files"].items():
            assert len(digest) == 64 and (manifest / rel).exists()
    edge = contract.run_output(run, "edge_model")
    fmt = summary["shipped"]["format"]
    for name in (*contract.golden_files(fmt), *contract.golden_files("float32"), contract.FEATURE_SPEC,
                 contract.DECISION, contract.SAVED_MODEL_PB):
        assert (edge / name).exists(), name
    assert contract.load_decision(edge).threshold == summary["threshold"]
    assert json.loads((edge / contract.MANIFEST).read_text())["model_family"] == summary["shipped"]["family"]
    from shopfloor.conversion.equivalence import self_test

    assert self_test(edge / contract.litert_file(fmt), edge, fmt=fmt)
    # Pictures of every verdict: the validate page for the KFP UI carries the sensor figures,
    # the convert step draws the equivalence scatter, and the run report embeds both.
    validate_page = contract.run_output(run, "validation_html").read_text()
    assert validate_page.count('src="data:image/png;base64,') >= 1
    assert (contract.run_output(run, "conversion_figures") / "equivalence.png").stat().st_size > 0
    assert "Equivalence: " in (run / "report.html").read_text()


def _bad(mutate: Callable[[pd.DataFrame], pd.DataFrame]) -> Callable[[pd.DataFrame, Path], Path]:
    def write(frame: pd.DataFrame, where: Path) -> Path:
        path = where / "bad.csv"
        mutate(frame.copy()).to_csv(path, index=False)
        return path

    return write


def _set(column: str, row: int, value: Any) -> Callable[[pd.DataFrame], pd.DataFrame]:
    def mutate(frame: pd.DataFrame) -> pd.DataFrame:
        frame[column] = frame[column].astype(object) if isinstance(value, str) else frame[column]
        frame.loc[row, column] = value
        return frame

    return mutate


def _celsius(frame: pd.DataFrame) -> pd.DataFrame:
    for column in (schema.AIR_TEMPERATURE, schema.PROCESS_TEMPERATURE):
        frame[column] = (frame[column] - 273.15).round(1)
    return frame


BAD_INPUTS = {
    "missing column": (_bad(lambda f: f.drop(columns=[schema.TORQUE])), "torque_nm"),
    "renamed column": (_bad(lambda f: f.rename(columns={schema.TORQUE: "torque"})), "torque"),
    "celsius": (_bad(_celsius), "air_temperature_k"),
    "nan": (_bad(_set(schema.ROTATIONAL_SPEED, 10, float("nan"))), "rotational_speed_rpm"),
    "unknown type": (_bad(_set(schema.PRODUCT_TYPE, 3, "X")), "product_type"),
    "negative speed": (_bad(_set(schema.ROTATIONAL_SPEED, 7, -1500)), "rotational_speed_rpm"),
    "duplicate ids": (_bad(_set(schema.ID, 5, 1)), "udi"),
}


@pytest.mark.parametrize("case", sorted(BAD_INPUTS))
def test_bad_input_stops_before_training(case: str, real_frame: pd.DataFrame, tmp_path: Path) -> None:
    write, column = BAD_INPUTS[case]
    data = write(real_frame, tmp_path)
    result, summary = _run(tmp_path, "--data", str(data))
    assert result.returncode != 0
    reason = result.stderr.strip().splitlines()[-1]
    assert reason.startswith("error: validation failed:") and column in reason, reason
    if case in ("celsius", "negative speed", "unknown type", "duplicate ids"):
        assert " e.g. " in reason, reason  # examples of the offending values
    assert summary["validation"]["success"] is False
    assert summary["checks"] == {"validation": "failed", "gates": "not_run", "equivalence": "not_run"}
    assert summary["failure"]["step"] == "validate" and summary["failure"]["category"] == "gate failed"
    assert any(f.get("column") == column or column in f["message"] for f in summary["validation"]["failures"])
    run = _run_dir(summary)
    assert (run / "validate" / "report").exists()  # the HTML report for a person
    assert not (run / "train").exists() and not (run / "convert").exists()


def test_missing_file_fails_fast(tmp_path: Path) -> None:
    result = run_cli(
        "run", "--data", str(tmp_path / "nope.csv"), "--output", str(tmp_path / "runs"), cwd=tmp_path
    )
    assert result.returncode != 0
    assert "data file not found" in result.stderr
    assert not (tmp_path / "runs").exists()


def test_unparseable_file_stops_at_ingest(tmp_path: Path) -> None:
    data = tmp_path / "broken.parquet"
    data.write_bytes(b"PAR1 but not really parquet")
    result, summary = _run(tmp_path, "--data", str(data))
    assert result.returncode != 0
    reason = result.stderr.strip().splitlines()[-1]
    assert "cannot parse broken.parquet" in reason, reason
    assert summary["validation"]["success"] is False and summary["data_version"] is None
    # Nothing after ingest ran, so no check may claim it failed.
    assert summary["checks"] == {"validation": "not_run", "gates": "not_run", "equivalence": "not_run"}
    assert summary["failure"]["step"] == "ingest" and summary["failure"]["category"] == "invalid input"
    assert "not run" in result.stdout and "FAIL" not in result.stdout
    run = _run_dir(summary)
    assert not (run / "validate").exists() and not (run / "train").exists()


def test_single_class_data_stops_at_ingest(real_frame: pd.DataFrame, tmp_path: Path) -> None:
    """Data without failures used to train for ~100 s and fail in a later step; ingest sees it."""
    data = tmp_path / "healthy.csv"
    real_frame[real_frame[schema.TARGET] == 0].to_csv(data, index=False)
    result, summary = _run(tmp_path, "--data", str(data))
    assert result.returncode != 0
    reason = result.stderr.strip().splitlines()[-1]
    assert "ingest failed" in reason and "single class" in reason, reason
    assert summary["failure"]["step"] == "ingest"
    assert summary["checks"] == {"validation": "not_run", "gates": "not_run", "equivalence": "not_run"}
    assert summary["wall_time_s"] < 60
    assert not (_run_dir(summary) / "train").exists()


def _params(tmp_path: Path, policy_changes: Callable[[dict[str, Any]], None], epochs: int) -> Path:
    policy = yaml.safe_load(default_policy_path().read_text())
    policy_changes(policy)
    (tmp_path / "policy.yaml").write_text(yaml.safe_dump(policy))
    params = tmp_path / "params.yaml"
    params.write_text(yaml.safe_dump({"policy": "policy.yaml", "train_params": {"epochs": epochs}}))
    return params


def test_failed_gate_produces_no_edge_model(tmp_path: Path) -> None:
    def impossible(policy: dict[str, Any]) -> None:
        policy["gates"] = [{"metric": "pr_auc", "min_ci_low": 0.99}]

    params = _params(tmp_path, impossible, epochs=5)
    result, summary = _run(tmp_path, "--params", str(params))
    assert result.returncode != 0
    assert "gates failed: pr_auc" in result.stderr and "below 0.990" in result.stderr
    assert summary["gates"]["passed"] is False
    assert summary["checks"] == {"validation": "passed", "gates": "failed", "equivalence": "not_run"}
    assert summary["artifacts"]["litert_int8"] is None
    assert not (_run_dir(summary) / "convert").exists()


def test_failed_equivalence_fails_the_run(tmp_path: Path) -> None:
    def strict_equivalence(policy: dict[str, Any]) -> None:
        policy["gates"] = [{"metric": "roc_auc", "min_ci_low": 0.0}]
        policy["non_inferiority"]["margin"] = 1.0
        policy["equivalence"]["int8"]["max_abs_probability_diff"] = 0.0  # int8 cannot be exact
        policy["candidates"] = ["keras-mlp"]  # only the MLP has an int8 file

    params = _params(tmp_path, strict_equivalence, epochs=5)
    result, summary = _run(tmp_path, "--params", str(params))
    assert result.returncode != 0
    assert "equivalence failed: int8: max_abs_probability_diff" in result.stderr
    assert summary["gates"]["passed"] is True and summary["equivalence"]["passed"] is False
    assert summary["checks"] == {"validation": "passed", "gates": "passed", "equivalence": "failed"}
    assert summary["failure"]["step"] == "convert" and summary["failure"]["category"] == "gate failed"
    edge = contract.run_output(_run_dir(summary), "edge_model")
    assert not (edge / contract.litert_file("int8")).exists()
    report = json.loads(contract.run_output(_run_dir(summary), "equivalence").read_text())
    assert report["equivalence"]["float32"]["passed"] is True


def test_unknown_parameter_is_refused(tmp_path: Path) -> None:
    params = tmp_path / "p.yaml"
    params.write_text("epochs: 3\n")
    result = run_cli("run", "--params", str(params), cwd=tmp_path)
    assert result.returncode == 2
    assert "unknown pipeline parameters ['epochs']" in result.stderr


@pytest.mark.parametrize(("params", "codes", "message"), [
    ("seed: abc\n", {2}, "seed must be an integer, got 'abc'"),
    ("test_fraction: 1.5\n", {2}, "test_fraction must be a number in (0, 1)"),
    ("train_params: {epochs: ten}\n", {2}, "train_params.epochs must be an integer"),
    ("policy: missing.yaml\n", {2, 3}, "missing.yaml"),  # invalid input or not found: both one line
    ("policy: .\n", {2}, "is not a file"),
])
def test_bad_parameters_stop_before_the_pipeline(
    tmp_path: Path, params: str, codes: set[int], message: str
) -> None:
    (tmp_path / "p.yaml").write_text(params)
    runs = tmp_path / "runs"
    result = run_cli("run", "--params", str(tmp_path / "p.yaml"), "--output", str(runs), cwd=tmp_path)
    assert result.returncode in codes, result.stderr
    assert message in result.stderr and "Traceback" not in result.stderr
    assert not (tmp_path / "runs").exists()
