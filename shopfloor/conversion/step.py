"""The convert step as a plain function: the winning family's LiteRT files, judged against
the model they came from on the test split, with golden I/O; the edge model is published only
if it passes.

The Keras MLP becomes LiteRT float32 and int8 (judged against its SavedModel); the tree
ensemble is compiled to tensor operations, saved as a SavedModel and converted to LiteRT
float32 only (judged against scikit-learn's own predictions). Every file of the edge model
that a registry version carries (SavedModel, LiteRT files, golden I/O, feature spec, decision)
is written under its :mod:`shopfloor.contract` name and shape.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path
from typing import Any

from shopfloor import contract, lineage
from shopfloor.conversion.convert import ConversionError, convert
from shopfloor.conversion.equivalence import (
    check_equivalence,
    measure_latency,
    model_size_bytes,
    write_golden,
)
from shopfloor.data import schema
from shopfloor.data.ingest import read_split
from shopfloor.edge.reference_stats import compute_reference_stats, write_reference_stats
from shopfloor.errors import excerpt
from shopfloor.evaluation.evaluate import metric_table
from shopfloor.evaluation.policy import load_policy
from shopfloor.inference.features import Featurizer
from shopfloor.inference.predictor import litert_scorer
from shopfloor.inference.runtime import LiteRTModel
from shopfloor.steps import StepResult, Verdict
from shopfloor.training.train import TREES, load_trees, score_saved_model

GOLDEN_ROWS = 64


def _write_edge_documents(staging: Path, spec: contract.FeatureSpec, threshold: float) -> None:
    """The feature spec and the decision of the edge model, through the contract's types."""
    lineage.write_text_atomic(staging / contract.FEATURE_SPEC, contract.dumps(spec.to_dict()))
    decision = contract.Decision(threshold=threshold, target=schema.TARGET, inputs=schema.INPUT_COLUMNS)
    lineage.write_json_atomic(staging / contract.DECISION, decision.to_dict())


def convert_step(
    data_dir: Path,
    model_dir: Path,
    evaluation_dir: Path,
    out_dir: Path,
    report_path: Path,
    *,
    data_version: str,
    policy: contract.ReleasePolicy | None = None,
    figures_dir: Path | None = None,
) -> StepResult:
    """Convert the family the evaluation selected, check equivalence of each format, compute
    the shipped file's metrics with the same bootstrap as evaluate; write the report always
    (and the equivalence figure into ``figures_dir`` when given), ``out_dir`` only on success.

    ``policy`` None applies the policy shipped with the code. The verdict fails when any
    format is not equivalent under the policy; the reason names each failed limit.
    """
    policy = policy or load_policy()
    report_name = contract.EVALUATION_REPORT
    evaluation = contract.read_json(Path(evaluation_dir) / report_name, report_name)
    family = evaluation.get("selected", contract.KERAS_MLP)  # evaluations before issue 10: the MLP
    if family not in contract.MODEL_FAMILIES:
        raise ConversionError(f"the evaluation selected no family to convert (selected: {excerpt(family)})")
    key = contract.FAMILY_KEYS[family]
    threshold = float(evaluation.get("thresholds", {}).get(key, evaluation["threshold"]))
    train, test = read_split(data_dir, "train"), read_split(data_dir, "test")
    spec = Featurizer.load(Path(model_dir) / contract.FEATURE_SPEC)
    x_train, x_test = spec.transform(train), spec.transform(test)
    y_test = test[schema.TARGET].to_numpy()

    with tempfile.TemporaryDirectory(prefix="shopfloor-convert-") as tmp:
        staging = Path(tmp) / "edge_model"
        if family == contract.HIST_GBT:
            from shopfloor.conversion.trees import check_supported, convert_trees, export_tree_saved_model
            from shopfloor.training.trees import predict_trees

            if not (Path(model_dir) / TREES).is_file():
                raise ConversionError(f"the model artifact has no tree ensemble ({TREES}) to convert")
            ensemble = load_trees(model_dir)
            check_supported(ensemble, x_test.shape[1])
            reference = predict_trees(ensemble, x_test)
            saved_model = export_tree_saved_model(ensemble, x_test.shape[1],
                                                  Path(tmp) / contract.SAVED_MODEL_DIR)
            files = convert_trees(saved_model, staging, x_train)
        else:
            saved_model = Path(model_dir) / contract.SAVED_MODEL_DIR
            if not (Path(model_dir) / contract.SAVED_MODEL_PB).is_file():
                raise ConversionError(f"the model artifact has no SavedModel ({contract.SAVED_MODEL_PB}) "
                                      f"to convert")
            reference = score_saved_model(model_dir, x_test)
            files = convert(saved_model, x_train, staging)
        reference_label = "scikit-learn" if family == contract.HIST_GBT else "SavedModel"
        edge_format = contract.choose_format(files)
        assert edge_format is not None  # both converters write at least float32
        reports: dict[str, Any] = {}
        probabilities = {}
        runtimes = {fmt: LiteRTModel(path) for fmt, path in files.items()}
        for fmt, path in files.items():
            runtime = runtimes[fmt]
            probabilities[fmt] = litert_scorer(runtime, family)(x_test)
            report = check_equivalence(
                reference, probabilities[fmt], y_test, threshold, policy.equivalence[fmt].to_dict(), fmt
            )
            reports[fmt] = {
                **report.to_dict(),
                "size_bytes": model_size_bytes(path),
                "latency": measure_latency(runtime, x_test[0], n=2000),
            }
        if figures_dir is not None:
            _equivalence_figure(reference, probabilities, threshold, reference_label, Path(figures_dir))
        edge_metrics = metric_table(
            test, probabilities[edge_format], threshold, policy, int(evaluation["bootstrap"]["seed"])
        )
        failed = [f"{fmt}: {'; '.join(r['reasons'])}" for fmt, r in reports.items() if not r["passed"]]
        passed = not failed
        reason = (
            f"{family} converted to LiteRT {', '.join(files)}; equivalent to its {reference_label}"
            if passed
            else f"{family}: equivalence failed: " + " | ".join(failed)
        )
        saved_model_bytes = model_size_bytes(saved_model)
        edge_bytes = reports[edge_format]["size_bytes"]
        result = {
            "data_version": data_version,
            "passed": passed,
            "reason": reason,
            "family": family,
            "edge_format": edge_format,
            "threshold": threshold,
            "policy_version": policy.policy_version,
            "equivalence": reports,
            "saved_model_size_bytes": saved_model_bytes,
            "edge_size_ratio": edge_bytes / saved_model_bytes,
            "metrics": {contract.EDGE_KEY: edge_metrics},
        }
        lineage.write_json_atomic(Path(report_path), result)
        outputs = {"equivalence": str(report_path)}
        if passed:
            shutil.copytree(saved_model, staging / contract.SAVED_MODEL_DIR)
            for fmt in files:
                write_golden(staging, x_test[:GOLDEN_ROWS], probabilities[fmt][:GOLDEN_ROWS], fmt=fmt)
            _write_edge_documents(staging, contract.load_feature_spec(Path(model_dir)), threshold)
            train_probabilities = {f: litert_scorer(runtime, family)(x_train)
                                   for f, runtime in runtimes.items()}
            write_reference_stats(staging, compute_reference_stats(
                x_train, spec.names, train_probabilities, data_version=data_version))
            lineage.write_manifest(
                staging,
                "edge_model",
                data_version=data_version,
                model_family=family,
                edge_format=edge_format,
                formats=sorted(files),
                equivalence={f: r["passed"] for f, r in reports.items()},
                policy_version=policy.policy_version,
            )
            out = Path(out_dir)
            if out.exists():
                shutil.rmtree(out)
            shutil.copytree(staging, out)
            outputs["edge_model"] = str(out)
    metrics: dict[str, float] = {"edge_size_ratio": result["edge_size_ratio"],
                                 "edge_pr_auc": edge_metrics["overall"]["pr_auc"]["value"]}
    for fmt, r in reports.items():
        metrics.update({
            f"{fmt}_agreement": r["agreement"]["value"],
            f"{fmt}_agreement_ci_low": r["agreement"]["ci_low"],
            f"{fmt}_max_abs_diff": r["max_abs_probability_diff"],
            f"{fmt}_pr_auc_drop": r["pr_auc_drop"]["value"],
            f"{fmt}_size_bytes": r["size_bytes"],
            f"{fmt}_latency_median_us": r["latency"]["median_us"],
        })
    return StepResult(step="convert", verdict=Verdict.PASS if passed else Verdict.FAIL, reason=reason,
                      metrics=metrics, outputs={**outputs, "family": family, "edge_format": edge_format})


def _equivalence_figure(reference: Any, probabilities: dict[str, Any], threshold: float, reference_name: str,
                        out_dir: Path) -> None:
    """The equivalence scatter (reference vs each LiteRT file), with its index for the report."""
    from shopfloor.report import figures as fig

    written = [fig.equivalence_figure(reference, probabilities, out_dir, threshold=threshold,
                                      reference_name=reference_name)]
    fig.write_index(out_dir, written)
