"""Step functions called directly on small fixtures, their one result shape, and how a failed
component records why (what the local runner and the run summary report)."""

from __future__ import annotations

import ast
import json
import os
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import yaml
from kfp.dsl import HTML, Artifact, Dataset, Markdown

from shopfloor import contract
from shopfloor.data import schema
from shopfloor.data.ingest import ingest
from shopfloor.errors import GateFailedError, InvalidInputError, NotFoundError, ShopfloorError
from shopfloor.evaluation.policy import default_policy_path, parse_policy
from shopfloor.steps import (
    FAILURE_FILE,
    MAX_FAILURE_BYTES,
    StepFailure,
    StepResult,
    Verdict,
    executor_task_dir,
    read_failure,
    recorded_failure,
    write_failure,
)
from shopfloor.summary import build_summary

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
REPO = Path(__file__).resolve().parents[2]


# -- the result shape ---------------------------------------------------------------------------
def test_step_result_is_frozen_typed_and_raises_one_error() -> None:
    ok = StepResult("train", Verdict.PASS, "fine", metrics={"epochs": 3}, outputs={"model": Path("/m")})
    assert ok.passed and ok.metrics["epochs"] == 3.0 and isinstance(ok.metrics["epochs"], float)
    assert ok.outputs == {"model": "/m"}
    ok.raise_for_verdict()
    with pytest.raises(TypeError):
        ok.metrics["epochs"] = 4.0  # type: ignore[index]
    with pytest.raises(AttributeError):
        ok.reason = "changed"  # type: ignore[misc]
    for verdict in (Verdict.FAIL, Verdict.INCONCLUSIVE):
        result = StepResult("evaluate", verdict, "gates failed: pr_auc below 0.6")
        assert not result.passed
        with pytest.raises(GateFailedError, match=r"^gates failed: pr_auc below 0\.6$"):
            result.raise_for_verdict()
    assert StepResult("x", "fail", "r").verdict is Verdict.FAIL  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        StepResult("x", "maybe", "r")  # type: ignore[arg-type]
    with pytest.raises(InvalidInputError, match="metric 'flag'"):
        StepResult("x", Verdict.PASS, "r", metrics={"flag": True})
    nan = StepResult("x", Verdict.PASS, "r", metrics={"a": 1.0, "b": float("nan")})
    assert nan.finite_metrics() == {"a": 1.0}
    assert json.loads(json.dumps(ok.to_dict()))["verdict"] == "pass"


# -- failure records ----------------------------------------------------------------------------
def test_recorded_failure_writes_category_and_reason_then_reraises(tmp_path: Path) -> None:
    task = tmp_path / "run" / "validate"
    error = GateFailedError("validation failed: expect_column_to_exist(torque_nm)")
    with pytest.raises(GateFailedError) as raised, recorded_failure("validate", task / "result"):
        raise error
    assert raised.value is error  # the same error propagates: KFP still sees the task fail
    record = json.loads((task / FAILURE_FILE).read_text())
    assert record == {"step": "validate", "category": "gate failed",
                      "reason": "validation failed: expect_column_to_exist(torque_nm)"}
    assert oct((task / FAILURE_FILE).stat().st_mode & 0o777) == oct(0o644 & ~_umask())


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def test_unexpected_errors_are_recorded_by_type_and_bounded(tmp_path: Path) -> None:
    with pytest.raises(KeyError), recorded_failure("train", tmp_path / "train" / "model"):
        raise KeyError("x" * 10_000)
    failure = read_failure(tmp_path)
    assert failure is not None and failure.category == "error" and failure.step == "train"
    assert failure.reason.startswith("KeyError: ") and len(failure.reason) <= 500
    assert "\n" not in failure.reason
    assert type(failure.to_error()) is ShopfloorError


def test_nothing_recorded_when_the_body_succeeds(tmp_path: Path) -> None:
    with recorded_failure("ingest", tmp_path / "ingest" / "dataset"):
        pass
    assert not (tmp_path / "ingest").exists()
    assert read_failure(tmp_path) is None


def test_task_dir_from_kfp_executor_input(tmp_path: Path) -> None:
    executor_input = {"outputs": {"outputFile": str(tmp_path / "deploy-cloud" / "executor_output.json")}}
    argv = ["executor_main", "--executor_input", json.dumps(executor_input), "--function_to_execute", "f"]
    assert executor_task_dir(argv) == tmp_path / "deploy-cloud"
    assert executor_task_dir(["pytest"]) is None
    assert executor_task_dir(["x", "--executor_input", "not json"]) is None


def test_read_failure_prefers_pipeline_order_and_skips_bad_records(tmp_path: Path) -> None:
    write_failure(tmp_path / "train", StepFailure("train", "invalid input", "second"))
    write_failure(tmp_path / "ingest", StepFailure("ingest", "not found", "first"))
    found = read_failure(tmp_path, ("ingest", "validate", "train"))
    assert found == StepFailure("ingest", "not found", "first")
    assert isinstance(found.to_error(), NotFoundError) and str(found.to_error()) == "first"
    (tmp_path / "ingest" / FAILURE_FILE).write_text("x" * (MAX_FAILURE_BYTES + 1))
    assert read_failure(tmp_path, ("ingest", "train")) == StepFailure("train", "invalid input", "second")
    (tmp_path / "train" / FAILURE_FILE).write_text('{"step": 1}')
    assert read_failure(tmp_path, ("ingest", "train")) is None


# -- ingest -------------------------------------------------------------------------------------
@pytest.fixture()
def small_csv(tmp_path: Path, real_frame: pd.DataFrame) -> Path:
    sample = pd.concat([real_frame[real_frame[schema.TARGET] == 1].head(60),
                        real_frame[real_frame[schema.TARGET] == 0].head(940)]).sort_values(schema.ID)
    path = tmp_path / "small.csv"
    sample.to_csv(path, index=False)
    return path


def test_ingest_returns_the_data_version_and_split_sizes(small_csv: Path, tmp_path: Path) -> None:
    result = ingest(str(small_csv), tmp_path / "out", seed=1, validation_fraction=0.2, test_fraction=0.2)
    assert result.step == "ingest" and result.passed
    assert result.outputs["data_version"].startswith("sha256:")
    assert result.outputs["dataset"] == str(tmp_path / "out")
    assert result.metrics["rows"] == 1000
    assert sum(result.metrics[f"{split}_rows"] for split in ("train", "validation", "test")) == 1000
    manifest = json.loads((tmp_path / "out" / contract.MANIFEST).read_text())
    assert manifest["data_version"] == result.outputs["data_version"]
    for split in ("train", "validation", "test"):
        part = pd.read_parquet(tmp_path / "out" / f"{split}.parquet")
        assert set(part[schema.TARGET]) == {0, 1}


def test_single_class_stops_at_ingest_with_nothing_written(tmp_path: Path, real_frame: pd.DataFrame) -> None:
    path = tmp_path / "healthy-only.csv"
    real_frame[real_frame[schema.TARGET] == 0].head(500).to_csv(path, index=False)
    with pytest.raises(InvalidInputError, match=r"single class .*500 rows, all non-failure"):
        ingest(str(path), tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_a_split_without_failures_stops_at_ingest(tmp_path: Path, real_frame: pd.DataFrame) -> None:
    path = tmp_path / "two-failures.csv"
    pd.concat([real_frame[real_frame[schema.TARGET] == 1].head(2),
               real_frame[real_frame[schema.TARGET] == 0].head(500)]).to_csv(path, index=False)
    with pytest.raises(InvalidInputError, match=r"the (test|validation) split would hold no failure rows "
                                                r"\(2 failures and 500 non-failures"):
        ingest(str(path), tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_unsplittable_label_is_written_whole_for_validation(tmp_path: Path, real_frame: pd.DataFrame) -> None:
    path = tmp_path / "labels.csv"
    frame = real_frame.head(300).copy()
    frame[schema.TARGET] = frame[schema.TARGET].astype(object)
    frame.loc[3, schema.TARGET] = "yes"
    frame.to_csv(path, index=False)
    result = ingest(str(path), tmp_path / "out")
    assert result.passed and "written unsplit" in result.reason and "train_rows" not in result.metrics
    assert (tmp_path / "out" / "table.parquet").exists() and not (tmp_path / "out" / "train.parquet").exists()


@pytest.mark.parametrize(("val", "test", "message"), [
    (0.0, 0.2, r"validation_fraction must be a number in \(0, 1\), got 0.0"),
    (0.2, "0.2", "test_fraction must be a number"),
    (0.6, 0.5, "must be below 1"),
])
def test_bad_fractions_fail_before_the_source_is_read(
    tmp_path: Path, val: Any, test: Any, message: str
) -> None:
    with pytest.raises(InvalidInputError, match=message):
        ingest(str(tmp_path / "never-read.csv"), tmp_path / "out", validation_fraction=val,
               test_fraction=test)


# -- validate -----------------------------------------------------------------------------------
def test_validate_step_passes_clean_data_and_fails_naming_the_column(small_csv: Path, tmp_path: Path) -> None:
    from shopfloor.validation.step import validate_step

    data = tmp_path / "data"
    version = ingest(str(small_csv), data).outputs["data_version"]
    good = validate_step(data, tmp_path / "good.json", tmp_path / "good.html", version)
    assert good.step == "validate" and good.passed and good.metrics["failed_expectations"] == 0
    assert good.outputs["suite_version"] == json.loads((tmp_path / "good.json").read_text())["suite_version"]

    broken = pd.read_csv(small_csv)
    broken.loc[5, schema.ROTATIONAL_SPEED] = -1500
    broken.to_csv(small_csv, index=False)
    version = ingest(str(small_csv), data).outputs["data_version"]
    bad = validate_step(data, tmp_path / "bad.json", tmp_path / "bad.html", version)
    assert bad.verdict is Verdict.FAIL and bad.metrics["failed_expectations"] >= 1
    assert bad.reason.startswith("validation failed:") and "rotational_speed_rpm" in bad.reason
    assert (tmp_path / "bad.html").exists() and not json.loads((tmp_path / "bad.json").read_text())["success"]
    with pytest.raises(GateFailedError, match="rotational_speed_rpm"):
        bad.raise_for_verdict()


def test_validate_component_records_its_failure_for_the_runner(
    tmp_path: Path, real_frame: pd.DataFrame
) -> None:
    """The component as kfp.local runs it (its python function, artifacts in <run>/<task>/)."""
    from shopfloor.components import validate

    source = tmp_path / "bad.csv"
    real_frame.head(1000).drop(columns=[schema.TORQUE]).to_csv(source, index=False)
    run = tmp_path / "run"
    version = ingest(str(source), run / "ingest" / "dataset").outputs["data_version"]
    result = Artifact(uri=str(run / "validate" / "result"))
    with pytest.raises(GateFailedError):
        validate.python_func(dataset=Dataset(uri=str(run / "ingest" / "dataset")), data_version=version,
                             result=result, report=HTML(uri=str(run / "validate" / "report")),
                             figures=Artifact(uri=str(run / "validate" / "figures")),
                             markdown=Markdown(uri=str(run / "validate" / "markdown")))
    assert (run / "validate" / "figures" / "sensor_distributions.png").stat().st_size > 0  # drawn on failure
    assert "torque_nm" in (run / "validate" / "markdown").read_text()
    failure = read_failure(run, contract.RUN_STEPS)
    assert failure is not None and (failure.step, failure.category) == ("validate", "gate failed")
    assert failure.reason.startswith("validation failed:") and "torque_nm" in failure.reason
    assert result.metadata["success"] is False
    summary = build_summary(run, source=str(source))
    assert summary["checks"] == {"validation": "failed", "gates": "not_run", "equivalence": "not_run"}


# -- train, evaluate, convert on one small run ---------------------------------------------------
@pytest.fixture(scope="module")
def small_run(tmp_path_factory: pytest.TempPathFactory, real_frame: pd.DataFrame) -> dict[str, Any]:
    from shopfloor.training.params import TrainParams
    from shopfloor.training.train import train_step

    work = tmp_path_factory.mktemp("small-run")
    sample = pd.concat([real_frame[real_frame[schema.TARGET] == 1],
                        real_frame[real_frame[schema.TARGET] == 0].head(2500)]).sort_values(schema.ID)
    source = work / "sample.parquet"
    sample.to_parquet(source, index=False)
    data = contract.run_output(work, "dataset")
    version = ingest(str(source), data, seed=3).outputs["data_version"]
    trained = train_step(data, contract.run_output(work, "model"),
                         TrainParams(hidden_units=(16,), epochs=4, seed=3), version)
    return {"work": work, "data": data, "version": version, "trained": trained}


def _policy(**changes: Any) -> contract.ReleasePolicy:
    document = yaml.safe_load(default_policy_path().read_text())
    document["bootstrap_resamples"] = 200
    for key, value in changes.items():
        document[key] = value
    return parse_policy(yaml.safe_dump(document), "test")


def test_train_step_result(small_run: dict[str, Any]) -> None:
    trained = small_run["trained"]
    model = contract.run_output(small_run["work"], "model")
    assert trained.step == "train" and trained.passed and trained.outputs == {"model": str(model)}
    assert trained.metrics["epochs"] == 4 and trained.metrics["train_rows"] > 0
    manifest = json.loads((model / contract.MANIFEST).read_text())
    assert manifest["figures"]["final_val_loss"] == pytest.approx(trained.metrics["final_val_loss"])
    assert (model / contract.SAVED_MODEL_PB).is_file()
    contract.load_feature_spec(model)  # the contract's strict reader accepts what training wrote


def test_evaluate_step_result_matches_its_reports(small_run: dict[str, Any]) -> None:
    from shopfloor.evaluation.evaluate import EvaluationResult, evaluate_step

    out = contract.run_output(small_run["work"], "evaluation")
    result = evaluate_step(small_run["data"], contract.run_output(small_run["work"], "model"), out,
                           data_version=small_run["version"], policy=_policy())
    assert isinstance(result, EvaluationResult) and result.step == "evaluate"
    evaluation = json.loads((out / contract.EVALUATION_REPORT).read_text())
    verdict = json.loads((out / contract.VERDICT).read_text())
    assert result.passed == verdict["passed"]
    assert result.reason == verdict["reason"] or result.verdict is Verdict.INCONCLUSIVE
    # The result's figures are those of the candidate the verdict is about: the winner.
    assert evaluation["selected"] in (*contract.MODEL_FAMILIES, None)
    assert verdict["selected"] == evaluation["selected"] and verdict["focus"] == evaluation["focus"]
    assert set(verdict["candidates"]) == set(contract.MODEL_FAMILIES)
    overall = evaluation["models"][contract.FAMILY_KEYS[evaluation["focus"]]]["overall"]
    for metric in contract.GATE_METRICS:
        assert result.metrics[f"{metric}_ci_low"] == pytest.approx(overall[metric]["ci_low"])
    assert result.metrics["threshold"] == pytest.approx(evaluation["threshold"])
    assert list(result.roc_curve.fpr) == evaluation["roc_curve"]["fpr"]
    assert [list(r) for r in result.confusion_matrix] == evaluation["confusion_matrix"]
    assert sum(map(sum, result.confusion_matrix)) == evaluation["test_rows"]

    impossible = _policy(gates=[{"metric": "pr_auc", "min_ci_low": 1.0}])
    failed = evaluate_step(small_run["data"], contract.run_output(small_run["work"], "model"),
                           small_run["work"] / "strict", data_version=small_run["version"], policy=impossible)
    assert failed.verdict is Verdict.FAIL and failed.reason.startswith("no candidate passed its gates: ")
    for family in contract.MODEL_FAMILIES:
        assert f"{family}: gates failed: pr_auc" in failed.reason
    assert failed.metrics["failed_gates"] >= 1 and failed.metrics["candidates_passed"] == 0
    strict_report = small_run["work"] / "strict" / contract.EVALUATION_REPORT
    assert json.loads(strict_report.read_text())["selected"] is None

    # Per-row scores of every judged model are kept, so figures never score again.
    from shopfloor.evaluation.evaluate import read_scores

    y, scores, thresholds = read_scores(out)
    assert len(y) == evaluation["test_rows"] and set(scores) == {"keras", "trees", "baseline"}
    assert thresholds["keras"] == pytest.approx(evaluation["thresholds"]["keras"])


def test_convert_step_writes_the_edge_model_through_the_contract(small_run: dict[str, Any]) -> None:
    from shopfloor.conversion.step import convert_step
    from shopfloor.evaluation.evaluate import evaluate_step

    work = small_run["work"]
    loose = {"min_agreement_ci_low": 0.9, "max_abs_probability_diff": 0.5, "max_pr_auc_drop": 0.2}
    # A few hundred test rows cannot bound agreement as tightly as the shipped limits ask.
    lenient = _policy(gates=[{"metric": "roc_auc", "min_ci_low": 0.0}],
                      equivalence={"float32": loose, "int8": loose}, candidates=["keras-mlp"],
                      non_inferiority={"metric": "pr_auc", "margin": 1.0, "against": ["baseline"]})
    evaluate_step(small_run["data"], contract.run_output(work, "model"),
                  contract.run_output(work, "evaluation"), data_version=small_run["version"], policy=lenient)
    edge, report = contract.run_output(work, "edge_model"), contract.run_output(work, "equivalence")
    result = convert_step(small_run["data"], contract.run_output(work, "model"),
                          contract.run_output(work, "evaluation"), edge, report,
                          data_version=small_run["version"], policy=lenient)
    assert result.step == "convert" and result.passed, result.reason
    assert result.outputs == {"equivalence": str(report), "edge_model": str(edge), "family": "keras-mlp",
                              "edge_format": "int8"}
    assert 0.9 <= result.metrics["float32_agreement"] <= 1.0 and result.metrics["int8_size_bytes"] > 0
    expected = {contract.litert_file(f) for f in contract.LITERT_FORMATS}
    expected |= {name for f in contract.LITERT_FORMATS for name in contract.golden_files(f)}
    expected |= {contract.FEATURE_SPEC, contract.DECISION, contract.MANIFEST, contract.REFERENCE_STATS,
                 contract.SAVED_MODEL_DIR}
    assert {p.name for p in edge.iterdir()} == expected
    decision = contract.load_decision(edge)
    assert decision.threshold == pytest.approx(json.loads(
        (contract.run_output(work, "evaluation") / contract.EVALUATION_REPORT).read_text())["threshold"])
    assert decision.inputs == schema.INPUT_COLUMNS
    assert contract.load_feature_spec(edge) == contract.load_feature_spec(contract.run_output(work, "model"))
    for fmt in contract.LITERT_FORMATS:
        assert contract.load_golden(edge, fmt).n == 64

    exact_int8 = {**lenient.equivalence["int8"].to_dict(), "max_abs_probability_diff": 0.0}
    strict = _policy(gates=[{"metric": "roc_auc", "min_ci_low": 0.0}],
                     equivalence={**lenient.to_dict()["equivalence"], "int8": exact_int8})
    failed_edge = work / "failed-edge"
    failed = convert_step(small_run["data"], contract.run_output(work, "model"),
                          contract.run_output(work, "evaluation"), failed_edge, work / "failed-equivalence",
                          data_version=small_run["version"], policy=strict)
    assert failed.verdict is Verdict.FAIL and "int8: max_abs_probability_diff" in failed.reason
    assert "edge_model" not in failed.outputs and not failed_edge.exists()
    assert json.loads((work / "failed-equivalence").read_text())["passed"] is False


def test_convert_step_ships_the_tree_ensemble_as_float32_only(small_run: dict[str, Any]) -> None:
    """When the trees win, the edge model is their compiled float32 file and SavedModel, judged
    against scikit-learn, and the equivalence figure is drawn against scikit-learn."""
    from shopfloor.conversion.step import convert_step
    from shopfloor.evaluation.evaluate import evaluate_step
    from shopfloor.report.figures import read_index

    work = small_run["work"] / "trees"
    model = contract.run_output(small_run["work"], "model")
    lenient = _policy(gates=[{"metric": "roc_auc", "min_ci_low": 0.0}], candidates=["hist-gbt"],
                      non_inferiority={"metric": "pr_auc", "margin": 1.0, "against": ["baseline"]},
                      equivalence={f: {"min_agreement_ci_low": 0.9, "max_abs_probability_diff": 0.5,
                                       "max_pr_auc_drop": 0.2} for f in ("float32", "int8")})
    evaluation = contract.run_output(work, "evaluation")
    judged = evaluate_step(small_run["data"], model, evaluation, data_version=small_run["version"],
                           policy=lenient)
    assert judged.passed and judged.outputs["selected"] == "hist-gbt", judged.reason
    edge, report = contract.run_output(work, "edge_model"), contract.run_output(work, "equivalence")
    figures = contract.run_output(work, "conversion_figures")
    result = convert_step(small_run["data"], model, evaluation, edge, report,
                          data_version=small_run["version"], policy=lenient, figures_dir=figures)
    assert result.passed and result.outputs["family"] == "hist-gbt"
    assert result.outputs["edge_format"] == "float32"
    assert not (edge / contract.litert_file("int8")).exists()
    assert (edge / contract.litert_file("float32")).is_file() and (edge / contract.SAVED_MODEL_PB).is_file()
    written = json.loads(report.read_text())
    assert written["family"] == "hist-gbt" and set(written["equivalence"]) == {"float32"}
    assert written["equivalence"]["float32"]["max_abs_probability_diff"] < 1e-5
    assert written["equivalence"]["float32"]["agreement"]["value"] == 1.0
    assert json.loads((edge / contract.MANIFEST).read_text())["model_family"] == "hist-gbt"
    [figure] = read_index(figures)
    assert figure.name == "equivalence" and "scikit-learn" in figure.title
    assert figure.png(figures).stat().st_size > 0
    assert contract.load_golden(edge, "float32").n == 64


# -- the run summary ----------------------------------------------------------------------------
def _write_json(path: Path, payload: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(payload))


def test_summary_marks_steps_that_did_not_run(tmp_path: Path) -> None:
    """A run that failed at ingest: no check ran, so none may say FAIL."""
    run = tmp_path / "run"
    write_failure(run / "ingest", StepFailure("ingest", "invalid input", "cannot split x: single class"))
    summary = build_summary(run, source="x.csv", error="Task ingest finished with status FAILURE")
    assert summary["checks"] == {"validation": "not_run", "gates": "not_run", "equivalence": "not_run"}
    assert summary["validation"]["status"] == "not_run" and summary["gates"]["status"] == "not_run"
    assert summary["failure"] == {"step": "ingest", "category": "invalid input",
                                  "reason": "cannot split x: single class"}
    assert summary["status"] == "failed"
    assert summary["reason"] == "ingest failed: cannot split x: single class"


def test_summary_statuses_follow_each_report(tmp_path: Path) -> None:
    run = tmp_path / "run"
    _write_json(contract.run_output(run, "validation"), {"success": True, "failures": []})
    _write_json(contract.run_output(run, "evaluation") / contract.VERDICT,
                {"passed": False, "reason": "gates failed: pr_auc", "gates": []})
    summary = build_summary(run, source="s")
    assert summary["checks"] == {"validation": "passed", "gates": "failed", "equivalence": "not_run"}
    assert summary["reason"] == "gates failed: pr_auc" and summary["failure"] is None
    _write_json(contract.run_output(run, "evaluation") / contract.VERDICT,
                {"passed": True, "reason": "all passed", "gates": []})
    write_failure(run / "convert", StepFailure("convert", "error", "MemoryError"))
    summary = build_summary(run, source="s")
    assert summary["checks"] == {"validation": "passed", "gates": "passed", "equivalence": "failed"}
    assert summary["reason"] == "convert failed: MemoryError"


def test_summary_reads_the_layout_from_the_contract() -> None:
    source = (REPO / "shopfloor" / "summary.py").read_text()
    assert "STEP_OUTPUTS" not in source and ".tflite" not in source and '"evaluation.json"' not in source


# -- structure -------------------------------------------------------------------------------------
def _imports(package: str) -> set[str]:
    found = set()
    for path in (REPO / "shopfloor" / package).glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module:
                found.add(node.module)
            elif isinstance(node, ast.Import):
                found.update(alias.name for alias in node.names)
    return found


def test_no_import_cycle_between_training_and_conversion_or_loader_and_s3() -> None:
    assert not any(m.startswith("shopfloor.conversion") for m in _imports("training"))
    s3 = ast.parse((REPO / "shopfloor" / "data" / "s3.py").read_text())
    assert "shopfloor.data.loader" not in {n.module for n in ast.walk(s3) if isinstance(n, ast.ImportFrom)}


def test_components_stay_thin_and_raise_typed_errors() -> None:
    for path in sorted((REPO / "components").glob("*.py")):
        text = path.read_text()
        assert "RuntimeError" not in text, path.name
        if path.stem in ("ingest", "validate", "train", "evaluate", "convert"):
            assert "recorded_failure(" in text, path.name


def test_local_run_error_keeps_the_failed_steps_category(tmp_path: Path) -> None:
    from shopfloor.pipelines.run import LocalRun

    failed = LocalRun(tmp_path, {"reason": "ingest failed: single class", "checks": {}}, "",
                      StepFailure("ingest", "invalid input", "single class"))
    assert type(failed.error()) is InvalidInputError and str(failed.error()) == "ingest failed: single class"
    gates = LocalRun(tmp_path, {"reason": "gates failed: pr_auc", "checks": {"gates": "failed"}}, "")
    assert type(gates.error()) is GateFailedError
    assert type(LocalRun(tmp_path, {"reason": "odd", "checks": {}}, "").error()) is ShopfloorError


def test_the_runner_reads_failures_not_logs() -> None:
    source = (REPO / "pipelines" / "run.py").read_text()
    assert "_task_error" not in source and "splitlines" not in source and "read_failure" in source
