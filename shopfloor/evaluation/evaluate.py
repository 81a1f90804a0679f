"""The evaluate step as a plain function: metrics with intervals, gates, a verdict.

Candidate, baseline (and champion) are scored on the same test rows and resampled with the
same bootstrap weights, so their intervals and paired differences are comparable.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from shopfloor import lineage
from shopfloor.data import schema
from shopfloor.data.ingest import read_split
from shopfloor.evaluation import metrics
from shopfloor.evaluation.gates import apply_policy
from shopfloor.evaluation.policy import load_policy
from shopfloor.evaluation.stats import Estimate
from shopfloor.training import baseline as baseline_model
from shopfloor.training.features import FeatureSpec
from shopfloor.training.train import FEATURE_SPEC, load_baseline, saved_model_scorer

EVALUATION = "evaluation.json"
VERDICT = "verdict.json"


def _as_dict(estimates: dict[str, Estimate]) -> dict[str, dict[str, float]]:
    return {k: v.to_dict() for k, v in estimates.items()}


def metric_table(
    frame: pd.DataFrame, scores: np.ndarray, threshold: float, policy: dict[str, Any], seed: int
) -> dict[str, Any]:
    """Metrics overall and per product type, each with a stratified bootstrap 95 % CI."""
    y = frame[schema.TARGET].to_numpy()
    kw = {
        "threshold": threshold,
        "target_precision": float(policy["threshold"]["target_precision"]),
        "confidence": float(policy["confidence"]),
    }
    n_boot = int(policy["bootstrap_resamples"])
    table: dict[str, Any] = {
        "overall": _as_dict(
            metrics.evaluate_with_ci(y, scores, weights=metrics.bootstrap_weights(y, n_boot, seed), **kw)
        ),
        "per_product_type": {},
    }
    types = frame[schema.PRODUCT_TYPE].to_numpy()
    for t in schema.PRODUCT_TYPES:
        mask = types == t
        y_t = y[mask]
        if mask.sum() == 0 or y_t.sum() == 0 or y_t.sum() == len(y_t):
            table["per_product_type"][t] = {
                "rows": int(mask.sum()),
                "failures": int(y_t.sum()),
                "note": "too few classes in the test split to rank",
            }
            continue
        weights = metrics.bootstrap_weights(y_t, n_boot, seed)
        entry: dict[str, Any] = _as_dict(metrics.evaluate_with_ci(y_t, scores[mask], weights=weights, **kw))
        entry.update(rows=int(mask.sum()), failures=int(y_t.sum()))
        table["per_product_type"][t] = entry
    return table


def _roc_points(y: np.ndarray, scores: np.ndarray, max_points: int = 50) -> dict[str, list[float]]:
    from sklearn.metrics import roc_curve

    fpr, tpr, thr = roc_curve(y, scores)
    keep = np.unique(np.linspace(0, len(fpr) - 1, min(max_points, len(fpr))).astype(int))
    thr = np.minimum(thr, 1.0)  # sklearn's first threshold is inf; KFP wants finite numbers
    return {"fpr": fpr[keep].tolist(), "tpr": tpr[keep].tolist(), "thresholds": thr[keep].tolist()}


def _confusion(y: np.ndarray, scores: np.ndarray, threshold: float) -> list[list[int]]:
    pred = scores >= threshold
    return [
        [int(((~pred) & (y == 0)).sum()), int((pred & (y == 0)).sum())],
        [int(((~pred) & (y == 1)).sum()), int((pred & (y == 1)).sum())],
    ]


def evaluate_step(
    data_dir: Path,
    model_dir: Path,
    out_dir: Path,
    *,
    data_version: str,
    policy_path: str | None = None,
    champion_dir: Path | None = None,
    champion_version: str | None = None,
    seed: int = 0,
) -> dict[str, Any]:
    """Score candidate, baseline (and champion) on test; write evaluation and verdict JSON."""
    policy = load_policy(policy_path)
    target_precision = float(policy["threshold"]["target_precision"])
    validation, test = read_split(data_dir, "validation"), read_split(data_dir, "test")
    spec = FeatureSpec.load(Path(model_dir) / FEATURE_SPEC)
    x_val, x_test = spec.transform(validation), spec.transform(test)
    y_val, y_test = validation[schema.TARGET].to_numpy(), test[schema.TARGET].to_numpy()

    gbm = load_baseline(model_dir)
    candidate_score = saved_model_scorer(model_dir)
    scores = {
        "keras": candidate_score(x_test),
        "baseline": baseline_model.predict_baseline(gbm, x_test),
    }
    thresholds = {
        "keras": metrics.choose_threshold(y_val, candidate_score(x_val), target_precision),
        "baseline": metrics.choose_threshold(
            y_val, baseline_model.predict_baseline(gbm, x_val), target_precision
        ),
    }
    if champion_dir is not None:
        champ_spec = FeatureSpec.load(Path(champion_dir) / FEATURE_SPEC)
        champion_score = saved_model_scorer(champion_dir)
        scores["champion"] = champion_score(champ_spec.transform(test))
        thresholds["champion"] = metrics.choose_threshold(
            y_val, champion_score(champ_spec.transform(validation)), target_precision
        )

    tables = {name: metric_table(test, s, thresholds[name], policy, seed) for name, s in scores.items()}
    weights = metrics.bootstrap_weights(y_test, int(policy["bootstrap_resamples"]), seed)
    ni_metric = policy["non_inferiority"]["metric"]
    differences = {
        ref: metrics.paired_difference(
            y_test,
            scores["keras"],
            scores[ref],
            metric=ni_metric,
            weights=weights,
            threshold=thresholds["keras"],
            reference_threshold=thresholds[ref],
            target_precision=target_precision,
            confidence=float(policy["confidence"]),
        )
        for ref in scores
        if ref != "keras"
    }
    candidate = metrics.evaluate_with_ci(
        y_test,
        scores["keras"],
        threshold=thresholds["keras"],
        target_precision=target_precision,
        weights=weights,
        confidence=float(policy["confidence"]),
    )
    verdict = apply_policy(policy, candidate, differences)

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    evaluation = {
        "data_version": data_version,
        "policy_version": policy["policy_version"],
        "test_rows": len(test),
        "test_failures": int(y_test.sum()),
        "champion": {"version": champion_version} if champion_dir is not None else None,
        "threshold": thresholds["keras"],
        "thresholds": thresholds,
        "target_precision": target_precision,
        "bootstrap": {"resamples": int(policy["bootstrap_resamples"]), "seed": seed, "stratified": True},
        "models": tables,
        "differences": {k: v.to_dict() for k, v in differences.items()},
        "roc_curve": _roc_points(y_test, scores["keras"]),
        "confusion_matrix": _confusion(y_test, scores["keras"], thresholds["keras"]),
    }
    lineage.write_json_atomic(out / EVALUATION, evaluation)
    lineage.write_json_atomic(out / VERDICT, {"data_version": data_version, **verdict.to_dict()})
    lineage.write_manifest(
        out,
        "evaluation",
        data_version=data_version,
        passed=verdict.passed,
        policy_version=policy["policy_version"],
        champion=champion_version if champion_dir is not None else None,
    )
    return {
        "passed": verdict.passed,
        "reason": verdict.reason(),
        "evaluation": evaluation,
        "verdict": verdict.to_dict(),
    }
