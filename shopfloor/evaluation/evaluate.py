"""The evaluate step as a plain function: metrics with intervals, gates per candidate, the
winner, a verdict.

Every candidate family, the yardstick (and the champion) are scored on the same test rows and
resampled with the same bootstrap weights, so their intervals and paired differences are
comparable. Each candidate is gated on test; the one that ships is chosen among those that
passed, on the validation split, by the release policy's selection rule.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from shopfloor import lineage
from shopfloor.contract import (
    EVALUATION_REPORT,
    EVALUATION_SCORES,
    FAMILY_KEYS,
    FEATURE_SPEC,
    VERDICT,
    YARDSTICK_KEY,
    ReleasePolicy,
)
from shopfloor.data import schema
from shopfloor.data.ingest import read_split
from shopfloor.evaluation import metrics
from shopfloor.evaluation.bootstrap import Replicates
from shopfloor.evaluation.decision import AT_LEAST, Judgement, judge
from shopfloor.evaluation.gates import PolicyVerdict, apply_policy
from shopfloor.evaluation.policy import load_policy
from shopfloor.evaluation.stats import Estimate
from shopfloor.inference.features import Featurizer
from shopfloor.steps import StepResult, Verdict
from shopfloor.training import baseline as baseline_model
from shopfloor.training.train import candidate_scorer, load_baseline, saved_model_scorer


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


def _family_verdict(
    key: str, reps: Mapping[str, Replicates], references: list[str], policy: ReleasePolicy, n: int,
) -> tuple[PolicyVerdict, dict[str, Judgement]]:
    """Every gate of one candidate (``key``) and its non-inferiority to each reference."""
    alpha = (1 - policy.confidence) / 2
    gates = {
        g.metric: judge(reps[f"{key}/{g.metric}"], quantity=g.metric, limit=g.min_ci_low, direction=AT_LEAST,
                        alpha=alpha, n=n, method=metrics.interval_method(g.metric))
        for g in policy.gates
    }
    ni = policy.non_inferiority
    differences = {
        ref: judge(reps[f"difference/{key}-vs-{ref}"], quantity=f"{ni.metric} difference vs {ref}",
                   limit=-ni.margin, direction=AT_LEAST, alpha=alpha, n=n,
                   method=metrics.interval_method(None), bounded=False)
        for ref in references
    }
    return apply_policy(policy, gates, differences), differences


@dataclass(frozen=True)
class Choice:
    """Which gated candidate ships, and why (decided on the validation split)."""

    winner: str | None
    reason: str
    values: dict[str, Estimate]
    differences: dict[str, Estimate]

    def to_dict(self, policy: ReleasePolicy, rows: int, failures: int) -> dict[str, Any]:
        return {"winner": self.winner, "reason": self.reason, "rule": policy.selection.to_dict(),
                "split": "validation", "rows": rows, "failures": failures,
                "values": _as_dict(self.values), "differences": _as_dict(self.differences)}


def select_winner(
    y_val: np.ndarray, scores_val: Mapping[str, np.ndarray], eligible: list[str], policy: ReleasePolicy,
    seed: int, thresholds: Mapping[str, float] | None = None,
) -> Choice:
    """The release policy's rule on the validation split: the eligible family with the highest
    metric ships, unless a family earlier in ``selection.prefer`` is non-inferior to it within
    the margin (the lower bound of the paired difference reaches -margin). Test rows are never
    used to choose, so the test metrics of the winner stay an honest report."""
    rule = policy.selection
    if not eligible:
        return Choice(None, "no candidate passed its gates", {}, {})
    keys = {family: FAMILY_KEYS[family] for family in eligible}
    cut = {keys[f]: (thresholds or {}).get(keys[f], 0.5) for f in eligible}
    models = {keys[f]: (scores_val[keys[f]], cut[keys[f]]) for f in eligible}
    point = {f: metrics.metric_value(rule.metric, y_val, scores_val[keys[f]], threshold=cut[keys[f]],
                                     target_precision=policy.target_precision) for f in eligible}
    best = max(eligible, key=lambda f: (point[f], -rule.prefer.index(f)))
    pairs = {f"{keys[f]}-vs-{keys[best]}": (keys[f], keys[best]) for f in eligible if f != best}
    reps = metrics.models_replicates(
        y_val, models, target_precision=policy.target_precision, resamples=policy.bootstrap_resamples,
        seed=seed, metrics=(rule.metric,),
        differences={k: (a, b, rule.metric) for k, (a, b) in pairs.items()})
    values = {f: metrics.estimate(reps[f"{keys[f]}/{rule.metric}"], rule.metric, policy.confidence)
              for f in eligible}
    differences: dict[str, Estimate] = {}
    alpha = (1 - policy.confidence) / 2
    for family in rule.prefer:
        if family not in eligible:
            continue
        if family == best:
            others = [f for f in eligible if f != best]
            why = f"highest validation {rule.metric} {point[best]:.3f}" + (
                "" if not others else f" (vs {', '.join(f'{f} {point[f]:.3f}' for f in others)})")
            return Choice(best, f"{best} ships: {why}", values, differences)
        rep = reps[f"difference/{keys[family]}-vs-{keys[best]}"]
        j = judge(rep, quantity=f"{rule.metric} {family} - {best}", limit=-rule.margin, direction=AT_LEAST,
                  alpha=alpha, n=len(y_val), method=metrics.interval_method(None), bounded=False)
        differences[family] = Estimate(j.estimate, j.low, j.high, j.method)
        if j.passed:
            return Choice(family, (f"{family} ships: preferred over {best} and non-inferior to it on "
                                      f"validation {rule.metric} (difference {j.estimate:.3f}, lower bound "
                                      f"{j.low:.3f} within margin {rule.margin:g})"), values, differences)
    raise AssertionError("unreachable: the best family is always in prefer")


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
    """Gate every candidate family against the policy, the yardstick (and the champion) on
    test, choose the one that ships on validation; write evaluation, verdict and per-row scores.

    ``policy`` None applies the policy shipped with the code. The verdict passes when a
    candidate passed every gate (the winner ships), fails when every candidate failed a gate,
    and is inconclusive otherwise (an interval straddles its limit: the test rows cannot tell);
    the reason names the winner or each gate that did not pass.
    """
    policy = policy or load_policy()
    target_precision = policy.target_precision
    validation, test = read_split(data_dir, "validation"), read_split(data_dir, "test")
    spec = Featurizer.load(Path(model_dir) / FEATURE_SPEC)
    x_val, x_test = spec.transform(validation), spec.transform(test)
    y_val, y_test = validation[schema.TARGET].to_numpy(), test[schema.TARGET].to_numpy()

    families = list(policy.candidates)
    keys = [FAMILY_KEYS[f] for f in families]
    scores_val: dict[str, np.ndarray] = {}
    scores: dict[str, np.ndarray] = {}
    for family, key in zip(families, keys, strict=True):
        score = candidate_scorer(model_dir, family)
        scores_val[key], scores[key] = score(x_val), score(x_test)
    yardstick = load_baseline(model_dir)
    scores_val[YARDSTICK_KEY] = baseline_model.predict_baseline(yardstick, x_val)
    scores[YARDSTICK_KEY] = baseline_model.predict_baseline(yardstick, x_test)
    if champion_dir is not None:
        champ_spec = Featurizer.load(Path(champion_dir) / FEATURE_SPEC)
        champion_score = saved_model_scorer(champion_dir)
        scores_val["champion"] = champion_score(champ_spec.transform(validation))
        scores["champion"] = champion_score(champ_spec.transform(test))
    thresholds = {name: metrics.choose_threshold(y_val, s, target_precision)
                  for name, s in scores_val.items()}

    models = {name: (s, thresholds[name]) for name, s in scores.items()}
    references = [ref for ref in (YARDSTICK_KEY, "champion") if ref in scores]
    pairs = {f"{key}-vs-{ref}": (key, ref) for key in keys for ref in references}
    reps = model_replicates(y_test, models, policy, seed, pairs)
    tables = model_tables(test, models, policy, seed, overall=reps)
    n_test = len(y_test)
    verdicts: dict[str, PolicyVerdict] = {}
    judged: dict[str, dict[str, Judgement]] = {}
    for family, key in zip(families, keys, strict=True):
        verdicts[family], judged[family] = _family_verdict(key, reps, references, policy, n_test)
    eligible = [f for f in families if verdicts[f].passed]
    selection = select_winner(y_val, scores_val, eligible, policy, seed, thresholds)
    focus = selection.winner or _closest(families, verdicts)
    focus_key = FAMILY_KEYS[focus]
    verdict = verdicts[focus]
    overall = {m: metrics.estimate(reps[f"{focus_key}/{m}"], m, policy.confidence) for m in metrics.METRICS}

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    roc = _roc_points(y_test, scores[focus_key])
    confusion = _confusion(y_test, scores[focus_key], thresholds[focus_key])
    candidates = {f: {"key": FAMILY_KEYS[f], "threshold": thresholds[FAMILY_KEYS[f]], **verdicts[f].to_dict()}
                  for f in families}
    evaluation = {
        "data_version": data_version,
        "policy_version": policy.policy_version,
        "test_rows": len(test),
        "test_failures": int(y_test.sum()),
        "champion": {"version": champion_version} if champion_dir is not None else None,
        "selected": selection.winner,
        "focus": focus,
        "selection": selection.to_dict(policy, len(y_val), int(y_val.sum())),
        "candidates": candidates,
        "threshold": thresholds[focus_key],
        "thresholds": thresholds,
        "target_precision": target_precision,
        "bootstrap": {"resamples": policy.bootstrap_resamples, "seed": seed, "stratified": True,
                      "methods": {m: metrics.interval_method(m) for m in metrics.METRICS}},
        "models": tables,
        "differences": {pair: Estimate(j.estimate, j.low, j.high, j.method).to_dict()
                        for family in families for ref, j in judged[family].items()
                        for pair in [f"{FAMILY_KEYS[family]}-vs-{ref}"]},
        "roc_curve": roc,
        "confusion_matrix": confusion,
    }
    passed = selection.winner is not None
    outcome = _outcome(families, verdicts) if not passed else Verdict.PASS
    reason = selection.reason + f"; {verdict.reason()}" if passed else _failed_reason(families, verdicts)
    if outcome is Verdict.INCONCLUSIVE:
        reason = f"{reason} ({len(test)} test rows with {int(y_test.sum())} failures)"
    lineage.write_json_atomic(out / EVALUATION_REPORT, evaluation)
    lineage.write_json_atomic(out / VERDICT, {
        "data_version": data_version, **verdict.to_dict(), "passed": passed, "verdict": outcome.value,
        "reason": reason, "selected": selection.winner, "focus": focus,
        "candidates": {f: verdicts[f].to_dict() for f in families}})
    write_scores(out, y_test, scores, thresholds)
    lineage.write_manifest(
        out,
        "evaluation",
        data_version=data_version,
        passed=passed,
        selected=selection.winner,
        policy_version=policy.policy_version,
        champion=champion_version if champion_dir is not None else None,
    )
    figures = {f"{name}_{part}": getattr(estimate, part)
               for name, estimate in overall.items() for part in ("value", "ci_low", "ci_high")}
    return EvaluationResult(
        step="evaluate",
        verdict=outcome,
        reason=reason,
        metrics={**figures, "threshold": thresholds[focus_key], "gates": len(verdict.gates),
                 "failed_gates": len(verdict.failed()), "candidates_passed": len(eligible)},
        outputs={"evaluation": str(out), "policy_version": policy.policy_version,
                 **({"selected": selection.winner} if selection.winner else {}),
                 **({"champion": champion_version} if champion_dir is not None and champion_version else {})},
        roc_curve=RocCurve(tuple(roc["fpr"]), tuple(roc["tpr"]), tuple(roc["thresholds"])),
        confusion_matrix=((confusion[0][0], confusion[0][1]), (confusion[1][0], confusion[1][1])),
    )


def _closest(families: list[str], verdicts: Mapping[str, PolicyVerdict]) -> str:
    """With no winner, the candidate to show: the first (in policy order) that failed no gate
    outright, else the first."""
    for family in families:
        if verdicts[family].verdict() is not Verdict.FAIL:
            return family
    return families[0]


def _outcome(families: list[str], verdicts: Mapping[str, PolicyVerdict]) -> Verdict:
    """No winner: inconclusive while some candidate could still pass with more test rows."""
    if any(verdicts[f].verdict() is Verdict.INCONCLUSIVE for f in families):
        return Verdict.INCONCLUSIVE
    return Verdict.FAIL


def _failed_reason(families: list[str], verdicts: Mapping[str, PolicyVerdict]) -> str:
    return "no candidate passed its gates: " + " | ".join(f"{f}: {verdicts[f].reason()}" for f in families)


def write_scores(out_dir: Path, y: np.ndarray, scores: Mapping[str, np.ndarray],
                 thresholds: Mapping[str, float]) -> Path:
    """Per-row test scores of every model the evaluation judged, so figures and reports draw
    what was judged without scoring again (``contract.EVALUATION_SCORES``)."""
    import io

    buffer = io.BytesIO()
    arrays: dict[str, Any] = {"y": np.asarray(y, dtype=np.int8)}
    arrays.update({f"score_{name}": np.asarray(s, dtype=np.float64) for name, s in scores.items()})
    arrays.update({f"threshold_{name}": np.float64(t) for name, t in thresholds.items()})
    np.savez(buffer, **arrays)
    path = Path(out_dir) / EVALUATION_SCORES
    lineage.write_bytes_atomic(path, buffer.getvalue())
    return path


def read_scores(evaluation_dir: Path) -> tuple[np.ndarray, dict[str, np.ndarray], dict[str, float]]:
    """The labels, per-model scores and thresholds :func:`write_scores` wrote."""
    with np.load(Path(evaluation_dir) / EVALUATION_SCORES, allow_pickle=False) as data:
        y = data["y"].astype(int)
        scores = {k.removeprefix("score_"): data[k] for k in data.files if k.startswith("score_")}
        thresholds = {k.removeprefix("threshold_"): float(data[k]) for k in data.files
                      if k.startswith("threshold_")}
    return y, scores, thresholds
