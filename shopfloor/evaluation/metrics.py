"""Model-quality metrics as bootstrap statistics: one definition gives the point value, every
resample and the jackknife, so the gates, the equivalence check and ``shopfloor.testing``
cannot disagree about what a metric is.

Ranking metrics (PR-AUC, ROC-AUC, recall at precision) see the data only through the number
of failures at each distinct failure score and of non-failures above, at and below those
scores. Ties are grouped as scikit-learn groups them (int8 outputs take only 256 values) and
the point values equal scikit-learn's (tested). Threshold metrics (F1, accuracy, precision,
recall) see the confusion matrix; Brier score, mean absolute error and calibration error see
per-row sums.
"""

from __future__ import annotations

import numbers
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

import numpy as np

from shopfloor.contract import GATE_METRICS
from shopfloor.errors import InvalidInputError
from shopfloor.evaluation.bootstrap import Cells, Design, Replicates, Statistic, bootstrap, point_value
from shopfloor.evaluation.stats import Estimate

#: The metrics the release policy gates on, in report order.
METRICS: tuple[str, ...] = GATE_METRICS
#: Every metric known here, and whether a higher value is better.
HIGHER_IS_BETTER: dict[str, bool] = {
    "pr_auc": True, "roc_auc": True, "recall_at_precision": True, "f1": True, "accuracy": True,
    "precision": True, "recall": True, "brier": False, "mae": False, "calibration_error": False,
}
#: Metrics of a regressor: ``y_true`` may be any number.
REGRESSION_METRICS = frozenset({"mae"})
#: Metrics that are means over all cases (the failures are not their effective sample).
MEAN_METRICS = frozenset({"mae", "brier", "calibration_error"})
#: Metrics of probabilities: scores must lie in [0, 1].
PROBABILITY_METRICS = frozenset({"brier", "calibration_error"})


def check_metric(metric: str) -> str:
    if metric not in HIGHER_IS_BETTER:
        raise InvalidInputError(f"unknown metric {metric!r}; known: {', '.join(HIGHER_IS_BETTER)}")
    return metric


def _array(values: object, what: str) -> np.ndarray:
    try:
        arr = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError):
        raise InvalidInputError(f"{what} must be numbers") from None
    if arr.ndim == 2 and arr.shape[1] == 1:
        arr = arr[:, 0]
    if arr.ndim != 1:
        raise InvalidInputError(f"{what} must be one value per case, got shape {arr.shape}")
    if not np.isfinite(arr).all():
        raise InvalidInputError(f"{what} contain NaN or infinity")
    return arr


def labels(y_true: object) -> np.ndarray:
    """Binary labels as booleans; InvalidInputError when they are not 0/1."""
    y = _array(y_true, "labels")
    if not np.isin(y, (0.0, 1.0)).all():
        raise InvalidInputError("labels must be 0/1 (or booleans) for a classification metric")
    return y.astype(bool)


@dataclass
class Scored:
    """Labels and one model's scores, with the cells its metrics need (built once, shared by
    every metric of this model so one resample pass serves them all)."""

    y: np.ndarray
    scores: np.ndarray
    threshold: float = 0.5
    target_precision: float = 0.8
    bins: int = 10
    _cells: dict[str, tuple[Cells, int]] = field(default_factory=dict, repr=False)

    @classmethod
    def of(cls, y_true: object, scores: object, *, threshold: float = 0.5, target_precision: float = 0.8,
           bins: int = 10, regression: bool = False) -> Scored:
        s = _array(scores, "scores")
        y = _array(y_true, "true values") if regression else labels(y_true).astype(np.float64)
        if len(y) != len(s):
            raise InvalidInputError(f"{len(y)} true values but {len(s)} scores")
        if len(y) == 0:
            raise InvalidInputError("no cases to evaluate")
        for name, value in (("threshold", threshold), ("target precision", target_precision)):
            if isinstance(value, bool) or not isinstance(value, numbers.Real) or not np.isfinite(value):
                raise InvalidInputError(f"{name} must be a finite number, got {value!r}")
        if not 0.0 <= target_precision <= 1.0:
            raise InvalidInputError(f"target precision must be in [0, 1], got {target_precision!r}")
        if isinstance(bins, bool) or not isinstance(bins, int) or not 1 <= bins <= 1000:
            raise InvalidInputError(f"bins must be an integer in [1, 1000], got {bins!r}")
        return cls(y, s, float(threshold), float(target_precision), bins)

    def statistic(self, metric: str) -> Statistic:
        """The bootstrap statistic of ``metric`` for these scores."""
        check_metric(metric)
        if metric in PROBABILITY_METRICS and ((self.scores < 0).any() or (self.scores > 1).any()):
            raise InvalidInputError(f"{metric} needs probabilities in [0, 1]")
        if metric in ("pr_auc", "roc_auc", "recall_at_precision"):
            cells, k = self._ranking()
            fns: dict[str, Callable[[np.ndarray], np.ndarray]] = {
                "pr_auc": lambda s: _pr_auc(s, k),
                "roc_auc": lambda s: _roc_auc(s, k),
                "recall_at_precision": lambda s: _recall_at_precision(s, k, self.target_precision),
            }
            return Statistic.of(cells, fns[metric])
        if metric in ("f1", "accuracy", "precision", "recall"):
            return Statistic.of(self._confusion(), _CONFUSION_FNS[metric])
        if metric == "calibration_error":
            return Statistic.of(self._calibration(), _calibration_error)
        loss = (self.scores - self.y) ** 2 if metric == "brier" else np.abs(self.scores - self.y)
        return Statistic.of(Cells(np.zeros(len(self.y), dtype=np.int64), 1, (loss,)), _mean_of_values)

    def _ranking(self) -> tuple[Cells, int]:
        """Cells: failures by distinct failure score u_0 > ... > u_{K-1} (cells 0..K-1), then
        non-failures strictly between consecutive u (even offsets) or equal to one (odd)."""
        if "ranking" not in self._cells:
            y = self.y.astype(bool)
            u = np.unique(self.scores[y])[::-1]  # distinct failure scores, descending
            k = len(u)
            ascending = u[::-1]
            codes = np.empty(len(self.y), dtype=np.int64)
            codes[y] = k - 1 - np.searchsorted(ascending, self.scores[y])
            neg = self.scores[~y]
            right = np.searchsorted(ascending, neg, side="right")
            left = np.searchsorted(ascending, neg, side="left")
            above = k - right  # failure scores strictly above this non-failure's score
            codes[~y] = k + 2 * above + (right > left)
            self._cells["ranking"] = (Cells(codes, 3 * k + 1), k)
        return self._cells["ranking"]

    def _confusion(self) -> Cells:
        if "confusion" not in self._cells:
            codes = 2 * self.y.astype(np.int64) + (self.scores >= self.threshold)
            self._cells["confusion"] = (Cells(codes, 4), 0)
        return self._cells["confusion"][0]

    def _calibration(self) -> Cells:
        if "calibration" not in self._cells:
            codes = np.minimum((self.scores * self.bins).astype(np.int64), self.bins - 1)
            self._cells["calibration"] = (Cells(codes, self.bins, (self.scores - self.y,)), 0)
        return self._cells["calibration"][0]


# -- metrics as functions of cell sums (k, channels, cells) -> (k,) -----------------------------
def _ranking_parts(sums: np.ndarray, k: int) -> tuple[np.ndarray, ...]:
    counts = sums[:, 0, :]
    pos = counts[:, :k]
    tp = np.cumsum(pos, axis=1)
    neg_cum = np.cumsum(counts[:, k:], axis=1)
    fp = neg_cum[:, 1::2]  # non-failures scoring at or above each failure score
    tied = counts[:, k + 1::2]  # non-failures scoring exactly a failure score
    return pos, tp, fp, tied, tp[:, -1] if k else np.zeros(len(sums)), neg_cum[:, -1]


def _precision(tp: np.ndarray, fp: np.ndarray) -> np.ndarray:
    total = tp + fp
    return np.divide(tp, total, out=np.ones_like(tp), where=total > 0)


def _pr_auc(sums: np.ndarray, k: int) -> np.ndarray:
    pos, tp, fp, _, p, _ = _ranking_parts(sums, k)
    ap = np.sum(pos * _precision(tp, fp), axis=1)
    return np.where(p > 0, ap / np.where(p > 0, p, 1.0), np.nan)


def _roc_auc(sums: np.ndarray, k: int) -> np.ndarray:
    pos, _, fp, tied, p, n = _ranking_parts(sums, k)
    pairs = p * n
    wins = np.sum(pos * (n[:, None] - fp + 0.5 * tied), axis=1)
    return np.where(pairs > 0, wins / np.where(pairs > 0, pairs, 1.0), np.nan)


def _recall_at_precision(sums: np.ndarray, k: int, target: float) -> np.ndarray:
    _, tp, fp, _, p, _ = _ranking_parts(sums, k)
    if k == 0:
        return np.full(len(sums), np.nan)
    reachable = np.where(_precision(tp, fp) >= target, tp, 0.0).max(axis=1)
    return np.where(p > 0, reachable / np.where(p > 0, p, 1.0), np.nan)


def _ratio(num: np.ndarray, den: np.ndarray, empty: float) -> np.ndarray:
    return np.divide(num, den, out=np.full_like(num, empty), where=den > 0)


def _f1(s: np.ndarray) -> np.ndarray:
    _, fp, fn, tp = (s[:, 0, i] for i in range(4))
    return _ratio(2 * tp, 2 * tp + fp + fn, 0.0)


_CONFUSION_FNS: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "f1": _f1,
    "accuracy": lambda s: _ratio(s[:, 0, 0] + s[:, 0, 3], s[:, 0, :].sum(axis=1), np.nan),
    "precision": lambda s: _ratio(s[:, 0, 3], s[:, 0, 1] + s[:, 0, 3], np.nan),
    "recall": lambda s: _ratio(s[:, 0, 3], s[:, 0, 2] + s[:, 0, 3], np.nan),
}


def _mean_of_values(s: np.ndarray) -> np.ndarray:
    return _ratio(s[:, 1, 0], s[:, 0, 0], np.nan)


def _calibration_error(s: np.ndarray) -> np.ndarray:
    """Expected calibration error: the case-weighted mean over bins of |mean p - failure rate|."""
    return _ratio(np.abs(s[:, 1, :]).sum(axis=1), s[:, 0, :].sum(axis=1), np.nan)


# -- what callers use ---------------------------------------------------------------------------
def metric_value(
    metric: str, y_true: object, scores: object, *, threshold: float = 0.5, target_precision: float = 0.8,
    bins: int = 10,
) -> float:
    """One metric's value (e.g. ``metric_value("pr_auc", y, p)``), as the gates compute it."""
    scored = Scored.of(y_true, scores, threshold=threshold, target_precision=target_precision, bins=bins,
                       regression=check_metric(metric) in REGRESSION_METRICS)
    return point_value(scored.statistic(metric), len(scored.y))


def model_statistics(scored: Scored, metrics: tuple[str, ...] = METRICS) -> dict[str, Statistic]:
    return {m: scored.statistic(m) for m in metrics}


def replicate(
    statistics: dict[str, Statistic], n: int, *, resamples: int, seed: int,
    strata: object = None, groups: object = None,
) -> dict[str, Replicates]:
    """Every statistic on the same resamples of the ``n`` cases (see :class:`Design`)."""
    return bootstrap(statistics, Design.of(n, strata=strata, groups=groups), resamples=resamples, seed=seed)


def models_replicates(
    y_true: object,
    models: Mapping[str, tuple[object, float]],
    *,
    target_precision: float,
    resamples: int,
    seed: int,
    metrics: tuple[str, ...] = METRICS,
    differences: Mapping[str, tuple[str, str, str]] | None = None,
    stratify: bool = True,
    groups: object = None,
) -> dict[str, Replicates]:
    """Each metric of each model (``name -> (scores, threshold)``) and each difference
    ``key -> (candidate, reference, metric)``, all on the SAME resamples of the cases (so
    models are compared pairwise), calibrated as :func:`calibrated` says.

    Keys: ``"<model>/<metric>"`` and ``"difference/<key>"``.
    """
    statistics: dict[str, Statistic] = {}
    y = labels(y_true)
    for name, (scores, threshold) in models.items():
        scored = Scored.of(y, scores, threshold=threshold, target_precision=target_precision)
        statistics.update({f"{name}/{m}": scored.statistic(m) for m in metrics})
    for key, (candidate, reference, metric) in (differences or {}).items():
        difference = statistics[f"{candidate}/{metric}"] - statistics[f"{reference}/{metric}"]
        statistics[f"difference/{key}"] = difference
    reps = replicate(statistics, len(y), resamples=resamples, seed=seed, strata=y if stratify else None,
                     groups=groups)
    failures = int(y.sum())
    return {key: calibrated(rep, key.split("/")[1] if not key.startswith("difference/") else None, failures)
            for key, rep in reps.items()}


#: How far the BCa lower bound of ROC-AUC is pushed down (see :func:`roc_auc_widening`).
ROC_WIDENING = (4.5, 1.15, 0.6)


def roc_auc_widening(failures: int, auc: float) -> float:
    """The calibrated widening of ROC-AUC's lower bound.

    Near 1, ROC-AUC is an average over the failures of how many non-failures each one
    outranks, and its variance comes from the rare failures that rank low: a sample of a few
    dozen failures usually holds none of them, so every resampling interval (percentile, BCa,
    studentized, variance-stabilised: all measured) is too narrow exactly when the estimate
    is high. The lower bound's distance from the estimate is therefore multiplied by a factor
    calibrated on binormal simulations; it grows as the failures and the room below 1 shrink.
    """
    if failures < 1 or not 0.0 < auc < 1.0:
        return 1.0
    c, b, a = ROC_WIDENING
    return 1.0 + c * failures ** (-b) * (1.0 - auc) ** (-a)


def calibrated(rep: Replicates, metric: str | None, failures: int) -> Replicates:
    """``rep`` with the interval method its metric needs (see :func:`interval_method`).

    Every classification metric is expanded for its number of failures (the rare class is
    the effective sample). Recall at precision is a maximum over thresholds: its bootstrap
    distribution is not a smooth shift of the estimator's, and the BCa bias correction moves
    the interval the wrong way, so it keeps the percentile interval. ROC-AUC's lower bound is
    widened (:func:`roc_auc_widening`).
    """
    if not rep.defined or metric in MEAN_METRICS:
        return rep
    rep = rep.expanded(failures)
    if metric == "recall_at_precision":
        return rep.percentile()
    if metric == "roc_auc":
        return rep.widened(roc_auc_widening(failures, rep.point))
    return rep


def interval_method(metric: str | None) -> str:
    """How the interval of ``metric`` (None: a paired difference) is computed."""
    if metric in MEAN_METRICS:
        return "bca"
    if metric == "recall_at_precision":
        return "percentile, expanded for the failures"
    if metric == "roc_auc":
        return "bca, expanded for the failures, lower bound widened (calibrated)"
    return "bca, expanded for the failures"


def estimate(rep: Replicates, metric: str | None, confidence: float) -> Estimate:
    """The two-sided interval at ``confidence`` (one-sided bounds at (1 + confidence) / 2)."""
    alpha = (1 - confidence) / 2
    return Estimate(rep.point, rep.lower(alpha), rep.upper(alpha), interval_method(metric))


def choose_threshold(y_true: np.ndarray, scores: np.ndarray, target_precision: float) -> float:
    """Lowest threshold whose precision reaches the target (most recall at that precision),
    else the F1-optimal one. Chosen on the validation split, never on test.

    The threshold sits midway between the chosen validation score and the next lower one
    (the same validation decisions): a tree ensemble gives many rows exactly the chosen score,
    and its float32 edge file lands a few ulps either side of it, so a threshold equal to a
    score would flip those rows on the edge."""
    y = labels(y_true)
    s = _array(scores, "scores")
    order = np.argsort(-s, kind="stable")
    sorted_scores, sorted_y = s[order], y[order]
    ends = np.flatnonzero(np.r_[np.diff(sorted_scores) != 0, True])  # last row of each distinct score
    tp = np.cumsum(sorted_y)[ends].astype(np.float64)
    fp = (ends + 1) - tp
    precision = tp / np.maximum(tp + fp, 1e-12)
    thresholds = sorted_scores[ends]
    ok = np.flatnonzero(precision >= target_precision)
    if ok.size:
        best = ok[np.argmax(tp[ok])]
    else:
        f1 = 2 * tp / np.maximum(tp + fp + y.sum(), 1e-12)
        best = int(np.argmax(f1))
    if best + 1 < len(thresholds):
        return float((thresholds[best] + thresholds[best + 1]) / 2)
    return float(thresholds[best])
