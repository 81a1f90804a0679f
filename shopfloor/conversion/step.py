"""The convert step as a plain function: LiteRT float32 and int8, judged against the
SavedModel on the test split, with golden I/O; the edge model is published only if it passes."""

from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path
from typing import Any

from shopfloor import lineage
from shopfloor.conversion.convert import convert
from shopfloor.conversion.equivalence import (
    check_equivalence,
    measure_latency,
    model_size_bytes,
    write_golden,
)
from shopfloor.conversion.runtime import LiteRTModel
from shopfloor.data import schema
from shopfloor.data.ingest import read_split
from shopfloor.evaluation.evaluate import EVALUATION, metric_table
from shopfloor.evaluation.policy import load_policy
from shopfloor.training.features import FeatureSpec
from shopfloor.training.train import FEATURE_SPEC, SAVED_MODEL, score_saved_model

EQUIVALENCE = "equivalence.json"
GOLDEN_ROWS = 64


def convert_step(
    data_dir: Path,
    model_dir: Path,
    evaluation_dir: Path,
    out_dir: Path,
    report_path: Path,
    *,
    data_version: str,
    policy_path: str | None = None,
) -> dict[str, Any]:
    """Convert, check equivalence of each format, compute the int8 model's metrics with the
    same bootstrap as evaluate; write the report always and ``out_dir`` only on success."""
    policy = load_policy(policy_path)
    evaluation = json.loads((Path(evaluation_dir) / EVALUATION).read_text())
    threshold = float(evaluation["threshold"])
    train, test = read_split(data_dir, "train"), read_split(data_dir, "test")
    spec = FeatureSpec.load(Path(model_dir) / FEATURE_SPEC)
    x_train, x_test = spec.transform(train), spec.transform(test)
    y_test = test[schema.TARGET].to_numpy()
    reference = score_saved_model(model_dir, x_test)

    with tempfile.TemporaryDirectory(prefix="shopfloor-convert-") as tmp:
        staging = Path(tmp) / "edge_model"
        files = convert(Path(model_dir) / SAVED_MODEL, x_train, staging)
        reports: dict[str, Any] = {}
        probabilities = {}
        for fmt, path in files.items():
            runtime = LiteRTModel(path)
            probabilities[fmt] = runtime.predict_proba(x_test)
            report = check_equivalence(
                reference, probabilities[fmt], y_test, threshold, policy["equivalence"][fmt], fmt
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
        saved_model_bytes = model_size_bytes(Path(model_dir) / SAVED_MODEL)
        result = {
            "data_version": data_version,
            "passed": passed,
            "reason": reason,
            "threshold": threshold,
            "policy_version": policy["policy_version"],
            "equivalence": reports,
            "saved_model_size_bytes": saved_model_bytes,
            "int8_size_ratio": reports["int8"]["size_bytes"] / saved_model_bytes,
            "metrics": {"int8": int8_metrics},
        }
        lineage.write_json_atomic(Path(report_path), result)
        if passed:
            for fmt in files:
                write_golden(
                    staging, x_test[:GOLDEN_ROWS], probabilities[fmt][:GOLDEN_ROWS], name=f"golden_{fmt}"
                )
            spec.save(staging / FEATURE_SPEC)
            lineage.write_json_atomic(
                staging / "decision.json",
                {"threshold": threshold, "target": schema.TARGET, "inputs": list(schema.INPUT_COLUMNS)},
            )
            lineage.write_manifest(
                staging,
                "edge_model",
                data_version=data_version,
                formats=sorted(files),
                equivalence={f: r["passed"] for f, r in reports.items()},
                policy_version=policy["policy_version"],
            )
            out = Path(out_dir)
            if out.exists():
                shutil.rmtree(out)
            shutil.copytree(staging, out)
    return result
