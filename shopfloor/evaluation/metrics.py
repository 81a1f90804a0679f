"""Classification metrics with bootstrap confidence intervals, computed in one pass.

A bootstrap resample is a vector of multiplicities over the original rows, so every metric of
every resample can be computed from ONE sort of the scores with weighted cumulative sums: all
1,000 resamples x all metrics cost milliseconds instead of a minute of sklearn calls. Ties are
grouped (all rows with the same score share a threshold), as sklearn does, which matters for
int8 models whose outputs take only 256 values. Unit weights reproduce sklearn exactly
(tested).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from shopfloor.evaluation.stats import Estimate, percentile_interval

METRICS: tuple[str, ...] = ("pr_auc", "roc_auc", "recall_at_precision", "f1")


def bootstrap_weights(y_true: np.ndarray, n_resamples: int, seed: int) -> np.ndarray:
    """Stratified bootstrap multiplicities (n_resamples x n): each resample keeps the number
    of failures, so no resample is left without positives."""
    rng = np.random.default_rng(seed)
    y = np.asarray(y_true).astype(bool)
    weights = np.zeros((n_resamples, len(y)), dtype=np.float64)
    for mask in (y, ~y):
        idx = np.flatnonzero(mask)
        if len(idx):
            weights[:, idx] = rng.multinomial(len(idx), np.full(len(idx), 1.0 / len(idx)), size=n_resamples)
    return weights


@dataclass(frozen=True)
class _Ranked:
    order: np.ndarray  # row indices by descending score
    group_end: np.ndarray  # last sorted position of each distinct score
    scores_desc: np.ndarray


def _rank(scores: np.ndarray) -> _Ranked:
    order = np.argsort(-scores, kind="stable")
    s = scores[order]
    group_end = np.flatnonzero(np.r_[np.diff(s) != 0, True])
    return _Ranked(order, group_end, s)


def _curve(ranked: _Ranked, y: np.ndarray, weights: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Weighted true/false positive counts at every distinct threshold (R x G)."""
    w = weights[:, ranked.order]
    pos = y[ranked.order].astype(np.float64)
    tp = np.cumsum(w * pos, axis=1)[:, ranked.group_end]
    fp = np.cumsum(w * (1.0 - pos), axis=1)[:, ranked.group_end]
    return tp, fp


def _metrics_from_curve(tp: np.ndarray, fp: np.ndarray, target_precision: float) -> dict[str, np.ndarray]:
    total_pos = tp[:, -1:]
    total_neg = fp[:, -1:]
    with np.errstate(invalid="ignore", divide="ignore"):
        precision = np.where(tp + fp > 0, tp / (tp + fp), 1.0)
        recall = tp / total_pos
        fpr = fp / total_neg
    d_recall = np.diff(np.concatenate([np.zeros_like(recall[:, :1]), recall], axis=1), axis=1)
    pr_auc = np.sum(d_recall * precision, axis=1)
    tpr0 = np.concatenate([np.zeros_like(recall[:, :1]), recall], axis=1)
    fpr0 = np.concatenate([np.zeros_like(fpr[:, :1]), fpr], axis=1)
    roc_auc = np.sum(np.diff(fpr0, axis=1) * (tpr0[:, 1:] + tpr0[:, :-1]) / 2.0, axis=1)
    reachable = np.where(precision >= target_precision, recall, 0.0)
    return {"pr_auc": pr_auc, "roc_auc": roc_auc, "recall_at_precision": reachable.max(axis=1)}


def _f1_at(ranked: _Ranked, y: np.ndarray, weights: np.ndarray, threshold: float) -> np.ndarray:
    predicted = ranked.scores_desc >= threshold
    w = weights[:, ranked.order]
    pos = y[ranked.order].astype(np.float64)
    tp = (w * pos)[:, predicted].sum(axis=1)
    fp = (w * (1 - pos))[:, predicted].sum(axis=1)
    fn = (w * pos)[:, ~predicted].sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(2 * tp + fp + fn > 0, 2 * tp / (2 * tp + fp + fn), 0.0)


def metric_samples(
    y_true: np.ndarray,
    scores: np.ndarray,
    weights: np.ndarray,
    *,
    threshold: float,
    target_precision: float,
) -> dict[str, np.ndarray]:
    """Every metric under every weight row (row 0 may be all ones for the point estimate)."""
    y = np.asarray(y_true).astype(bool)
    s = np.asarray(scores, dtype=np.float64)
    if len(y) != len(s):
        raise ValueError(f"{len(y)} labels but {len(s)} scores")
    if not np.isfinite(s).all():
        raise ValueError("scores contain NaN or infinity")
    ranked = _rank(s)
    tp, fp = _curve(ranked, y, weights)
    out = _metrics_from_curve(tp, fp, target_precision)
    out["f1"] = _f1_at(ranked, y, weights, threshold)
    return out


def evaluate_with_ci(
    y_true: np.ndarray,
    scores: np.ndarray,
    *,
    threshold: float,
    target_precision: float,
    weights: np.ndarray,
    confidence: float = 0.95,
) -> dict[str, Estimate]:
    """Point estimate and percentile-bootstrap interval of every metric in METRICS.

    Pass the SAME ``weights`` for models compared with each other: paired resamples make
    their intervals and differences comparable.
    """
    y = np.asarray(y_true).astype(bool)
    if y.sum() == 0 or (~y).sum() == 0:
        raise ValueError("need both failures and non-failures to compute ranking metrics")
    point = metric_samples(
        y, scores, np.ones((1, len(y))), threshold=threshold, target_precision=target_precision
    )
    boot = metric_samples(y, scores, weights, threshold=threshold, target_precision=target_precision)
    return {m: percentile_interval(float(point[m][0]), boot[m], confidence) for m in METRICS}


def paired_difference(
    y_true: np.ndarray,
    candidate: np.ndarray,
    reference: np.ndarray,
    *,
    metric: str,
    weights: np.ndarray,
    threshold: float,
    target_precision: float,
    reference_threshold: float | None = None,
    confidence: float = 0.95,
) -> Estimate:
    """candidate - reference on the same resamples: the interval non-inferiority tests."""
    y = np.asarray(y_true).astype(bool)
    ones = np.ones((1, len(y)))
    ref_threshold = threshold if reference_threshold is None else reference_threshold
    kw = {"target_precision": target_precision}
    cand_point = metric_samples(y, candidate, ones, threshold=threshold, **kw)[metric][0]
    ref_point = metric_samples(y, reference, ones, threshold=ref_threshold, **kw)[metric][0]
    cand = metric_samples(y, candidate, weights, threshold=threshold, **kw)[metric]
    ref = metric_samples(y, reference, weights, threshold=ref_threshold, **kw)[metric]
    return percentile_interval(float(cand_point - ref_point), cand - ref, confidence)


def choose_threshold(y_true: np.ndarray, scores: np.ndarray, target_precision: float) -> float:
    """Lowest threshold whose precision reaches the target (most recall at that precision),
    else the F1-optimal one. Chosen on the validation split, never on test."""
    y = np.asarray(y_true).astype(bool)
    ranked = _rank(np.asarray(scores, dtype=np.float64))
    tp, fp = _curve(ranked, y, np.ones((1, len(y))))
    tp, fp = tp[0], fp[0]
    precision = tp / np.maximum(tp + fp, 1e-12)
    thresholds = ranked.scores_desc[ranked.group_end]
    ok = np.flatnonzero(precision >= target_precision)
    if ok.size:
        best = ok[np.argmax(tp[ok])]
    else:
        f1 = 2 * tp / np.maximum(tp + fp + y.sum(), 1e-12)
        best = int(np.argmax(f1))
    return float(thresholds[best])
