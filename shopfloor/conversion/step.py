"""The convert step as a plain function: LiteRT float32 and int8, judged against the
SavedModel on the test split, with golden I/O; the edge model is published only if it passes.

Every file of the edge model that a registry version carries (LiteRT files, golden I/O,
feature spec, decision) is written under its :mod:`shopfloor.contract` name and shape.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path
from typing import Any

from shopfloor import contract, lineage
from shopfloor.conversion.convert import convert
from shopfloor.conversion.equivalence import (
    check_equivalence,
    measure_latency,
    model_size_bytes,
    write_golden,
)
from shopfloor.data import schema
from shopfloor.data.ingest import read_split
from shopfloor.edge.reference_stats import compute_reference_stats, write_reference_stats
from shopfloor.evaluation.evaluate import metric_table
from shopfloor.evaluation.policy import load_policy
from shopfloor.inference.features import Featurizer
from shopfloor.inference.runtime import LiteRTModel
from shopfloor.steps import StepResult, Verdict
from shopfloor.training.train import score_saved_model

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
) -> StepResult:
    """Convert, check equivalence of each format, compute the int8 model's metrics with the
    same bootstrap as evaluate; write the report always and ``out_dir`` only on success.

    ``policy`` None applies the policy shipped with the code. The verdict fails when any
    format is not equivalent under the policy; the reason names each failed limit.
    """
    policy = policy or load_policy()
    report_name = contract.EVALUATION_REPORT
    evaluation = contract.read_json(Path(evaluation_dir) / report_name, report_name)
    threshold = float(evaluation["threshold"])
    train, test = read_split(data_dir, "train"), read_split(data_dir, "test")
    spec = Featurizer.load(Path(model_dir) / contract.FEATURE_SPEC)
    x_train, x_test = spec.transform(train), spec.transform(test)
    y_test = test[schema.TARGET].to_numpy()
    reference = score_saved_model(model_dir, x_test)

    with tempfile.TemporaryDirectory(prefix="shopfloor-convert-") as tmp:
        staging = Path(tmp) / "edge_model"
        files = convert(Path(model_dir) / contract.SAVED_MODEL_DIR, x_train, staging)
        reports: dict[str, Any] = {}
        probabilities = {}
        for fmt, path in files.items():
            runtime = LiteRTModel(path)
            probabilities[fmt] = runtime.predict_proba(x_test)
            report = check_equivalence(
                reference, probabilities[fmt], y_test, threshold, policy.equivalence[fmt].to_dict(), fmt
            )
            reports[fmt] = {
                **report.to_dict(),
                "size_bytes": model_size_bytes(path),
                "latency": measure_latency(runtime, x_test[0], n=2000),
            }
        int8_metrics = metric_table(
            test, probabilities["int8"], threshold, policy, int(evaluation["bootstrap"]["seed"])
        )
        failed = [f"{fmt}: {'; '.join(r['reasons'])}" for fmt, r in reports.items() if not r["passed"]]
        passed = not failed
        reason = (
            "converted models are equivalent to the SavedModel"
            if passed
            else "equivalence failed: " + " | ".join(failed)
        )
        saved_model_bytes = model_size_bytes(Path(model_dir) / contract.SAVED_MODEL_DIR)
        result = {
            "data_version": data_version,
            "passed": passed,
            "reason": reason,
            "threshold": threshold,
            "policy_version": policy.policy_version,
            "equivalence": reports,
            "saved_model_size_bytes": saved_model_bytes,
            "int8_size_ratio": reports["int8"]["size_bytes"] / saved_model_bytes,
            "metrics": {"int8": int8_metrics},
        }
        lineage.write_json_atomic(Path(report_path), result)
        outputs = {"equivalence": str(report_path)}
        if passed:
            for fmt in files:
                write_golden(staging, x_test[:GOLDEN_ROWS], probabilities[fmt][:GOLDEN_ROWS], fmt=fmt)
            _write_edge_documents(staging, contract.load_feature_spec(Path(model_dir)), threshold)
            train_probabilities = {f: LiteRTModel(p).predict_proba(x_train) for f, p in files.items()}
            write_reference_stats(staging, compute_reference_stats(
                x_train, spec.names, train_probabilities, data_version=data_version))
            lineage.write_manifest(
                staging,
                "edge_model",
                data_version=data_version,
                formats=sorted(files),
                equivalence={f: r["passed"] for f, r in reports.items()},
                policy_version=policy.policy_version,
            )
            out = Path(out_dir)
            if out.exists():
                shutil.rmtree(out)
            shutil.copytree(staging, out)
            outputs["edge_model"] = str(out)
    metrics: dict[str, float] = {"int8_size_ratio": result["int8_size_ratio"]}
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
                      metrics=metrics, outputs=outputs)
