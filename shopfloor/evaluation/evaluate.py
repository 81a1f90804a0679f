"""The evaluate step as a plain function: metrics with intervals, gates, a verdict.

Candidate, baseline (and champion) are scored on the same test rows and resampled with the
same bootstrap weights, so their intervals and paired differences are comparable.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from shopfloor import lineage
from shopfloor.contract import EVALUATION_REPORT, FEATURE_SPEC, VERDICT, ReleasePolicy
from shopfloor.data import schema
from shopfloor.data.ingest import read_split
from shopfloor.evaluation import metrics
from shopfloor.evaluation.bootstrap import Replicates
from shopfloor.evaluation.decision import AT_LEAST, judge
from shopfloor.evaluation.gates import apply_policy
from shopfloor.evaluation.policy import load_policy
from shopfloor.evaluation.stats import Estimate
from shopfloor.inference.features import Featurizer
from shopfloor.steps import StepResult, Verdict
from shopfloor.training import baseline as baseline_model
from shopfloor.training.train import load_baseline, saved_model_scorer


@dataclass(frozen=True)
class RocCurve:
    """Points of the candidate's ROC curve (at most 50), as KFP's ClassificationMetrics takes them."""

    fpr: tuple[float, ...] = ()
    tpr: tuple[float, ...] = ()
    thresholds: tuple[float, ...] = ()


@dataclass(frozen=True)
class EvaluationResult(StepResult):
    """The evaluate step's result, plus what KFP's ClassificationMetrics shows."""

    roc_curve: RocCurve = field(default_factory=RocCurve)
    #: [[true negatives, false positives], [false negatives, true positives]] at the threshold.
    confusion_matrix: tuple[tuple[int, int], tuple[int, int]] = ((0, 0), (0, 0))


def _as_dict(estimates: dict[str, Estimate]) -> dict[str, dict[str, Any]]:
    return {k: v.to_dict() for k, v in estimates.items()}


def model_replicates(
    y: np.ndarray,
    models: Mapping[str, tuple[np.ndarray, float]],
    policy: ReleasePolicy,
    seed: int,
    differences: Mapping[str, tuple[str, str]] | None = None,
) -> dict[str, Replicates]:
    """Every gate metric of every model (``name -> (scores, threshold)``) and each
    ``key -> (candidate, reference)`` difference of the non-inferiority metric, all on the
    SAME stratified resamples of the test rows (the split is stratified, so its resamples
    keep its number of failures). Keys: ``"<model>/<metric>"`` and ``"difference/<key>"``.
    """
    ni = policy.non_inferiority.metric
    return metrics.models_replicates(
        y, models, target_precision=policy.target_precision, resamples=policy.bootstrap_resamples, seed=seed,
        differences={key: (a, b, ni) for key, (a, b) in (differences or {}).items()}, stratify=True)


def _model_table(reps: Mapping[str, Replicates], name: str, confidence: float) -> dict[str, Any]:
    return _as_dict({m: metrics.estimate(reps[f"{name}/{m}"], m, confidence) for m in metrics.METRICS})


def model_tables(
    frame: pd.DataFrame, models: Mapping[str, tuple[np.ndarray, float]], policy: ReleasePolicy, seed: int,
    overall: Mapping[str, Replicates] | None = None,
) -> dict[str, dict[str, Any]]:
    """Metrics overall and per product type for each model, each with its 95 % interval
    (stratified bootstrap; see :func:`shopfloor.evaluation.metrics.estimate` for the method).
    ``overall``: the models' replicates on all rows when already computed."""
    y = frame[schema.TARGET].to_numpy()
    overall = overall if overall is not None else model_replicates(y, models, policy, seed)
    tables: dict[str, dict[str, Any]] = {
        name: {"overall": _model_table(overall, name, policy.confidence), "per_product_type": {}}
        for name in models
    }
    types = frame[schema.PRODUCT_TYPE].to_numpy()
    for t in schema.PRODUCT_TYPES:
        mask = types == t
        y_t = y[mask]
        if mask.sum() == 0 or y_t.sum() == 0 or y_t.sum() == len(y_t):
            for name in models:
                tables[name]["per_product_type"][t] = {
                    "rows": int(mask.sum()),
                    "failures": int(y_t.sum()),
                    "note": "too few classes in the test split to rank",
                }
            continue
        subset = {name: (scores[mask], threshold) for name, (scores, threshold) in models.items()}
        reps = model_replicates(y_t, subset, policy, seed)
        for name in models:
            entry: dict[str, Any] = _model_table(reps, name, policy.confidence)
            entry.update(rows=int(mask.sum()), failures=int(y_t.sum()))
            tables[name]["per_product_type"][t] = entry
    return tables


def metric_table(
    frame: pd.DataFrame, scores: np.ndarray, threshold: float, policy: ReleasePolicy, seed: int
) -> dict[str, Any]:
    """One model's metrics overall and per product type, each with its 95 % interval."""
    return model_tables(frame, {"model": (scores, threshold)}, policy, seed)["model"]


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
    policy: ReleasePolicy | None = None,
    champion_dir: Path | None = None,
    champion_version: str | None = None,
    seed: int = 0,
) -> EvaluationResult:
    """Score candidate, baseline (and champion) on test; write evaluation and verdict JSON.

    ``policy`` None applies the policy shipped with the code. The verdict passes when every
    gate passed, fails when any gate failed (its interval lies wholly on the wrong side), and
    is inconclusive otherwise (an interval straddles its limit or is undefined: the test rows
    cannot tell); the reason names each gate that did not pass.
    """
    policy = policy or load_policy()
    target_precision = policy.target_precision
    validation, test = read_split(data_dir, "validation"), read_split(data_dir, "test")
    spec = Featurizer.load(Path(model_dir) / FEATURE_SPEC)
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
        champ_spec = Featurizer.load(Path(champion_dir) / FEATURE_SPEC)
        champion_score = saved_model_scorer(champion_dir)
        scores["champion"] = champion_score(champ_spec.transform(test))
        thresholds["champion"] = metrics.choose_threshold(
            y_val, champion_score(champ_spec.transform(validation)), target_precision
        )

    models = {name: (s, thresholds[name]) for name, s in scores.items()}
    references = {ref: ("keras", ref) for ref in scores if ref != "keras"}
    reps = model_replicates(y_test, models, policy, seed, references)
    tables = model_tables(test, models, policy, seed, overall=reps)
    alpha = (1 - policy.confidence) / 2
    n_test = len(y_test)
    candidate = {
        g.metric: judge(reps[f"keras/{g.metric}"], quantity=g.metric, limit=g.min_ci_low, direction=AT_LEAST,
                        alpha=alpha, n=n_test, method=metrics.interval_method(g.metric))
        for g in policy.gates
    }
    ni = policy.non_inferiority
    differences = {
        ref: judge(reps[f"difference/{ref}"], quantity=f"{ni.metric} difference vs {ref}", limit=-ni.margin,
                   direction=AT_LEAST, alpha=alpha, n=n_test, method=metrics.interval_method(None),
                   bounded=False)
        for ref in references
    }
    verdict = apply_policy(policy, candidate, differences)
    keras_overall = {m: metrics.estimate(reps[f"keras/{m}"], m, policy.confidence) for m in metrics.METRICS}

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    roc = _roc_points(y_test, scores["keras"])
    confusion = _confusion(y_test, scores["keras"], thresholds["keras"])
    evaluation = {
        "data_version": data_version,
        "policy_version": policy.policy_version,
        "test_rows": len(test),
        "test_failures": int(y_test.sum()),
        "champion": {"version": champion_version} if champion_dir is not None else None,
        "threshold": thresholds["keras"],
        "thresholds": thresholds,
        "target_precision": target_precision,
        "bootstrap": {"resamples": policy.bootstrap_resamples, "seed": seed, "stratified": True,
                      "methods": {m: metrics.interval_method(m) for m in metrics.METRICS}},
        "models": tables,
        "differences": {ref: Estimate(j.estimate, j.low, j.high, j.method).to_dict()
                        for ref, j in differences.items()},
        "roc_curve": roc,
        "confusion_matrix": confusion,
    }
    lineage.write_json_atomic(out / EVALUATION_REPORT, evaluation)
    lineage.write_json_atomic(out / VERDICT, {"data_version": data_version, **verdict.to_dict()})
    lineage.write_manifest(
        out,
        "evaluation",
        data_version=data_version,
        passed=verdict.passed,
        policy_version=policy.policy_version,
        champion=champion_version if champion_dir is not None else None,
    )
    outcome = verdict.verdict()
    reason = verdict.reason()
    if outcome is Verdict.INCONCLUSIVE:
        reason = f"{reason} ({len(test)} test rows with {int(y_test.sum())} failures)"
    figures = {f"{name}_{part}": getattr(estimate, part)
               for name, estimate in keras_overall.items() for part in ("value", "ci_low", "ci_high")}
    return EvaluationResult(
        step="evaluate",
        verdict=outcome,
        reason=reason,
        metrics={**figures, "threshold": thresholds["keras"], "gates": len(verdict.gates),
                 "failed_gates": len(verdict.failed())},
        outputs={"evaluation": str(out), "policy_version": policy.policy_version,
                 **({"champion": champion_version} if champion_dir is not None and champion_version else {})},
        roc_curve=RocCurve(tuple(roc["fpr"]), tuple(roc["tpr"]), tuple(roc["thresholds"])),
        confusion_matrix=((confusion[0][0], confusion[0][1]), (confusion[1][0], confusion[1][1])),
    )
