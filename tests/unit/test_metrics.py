"""The metrics as bootstrap statistics: equal to scikit-learn, ties included, on the whole
sample and on every explicit resample; paired, stratified and clustered resampling."""

import numpy as np
import pytest
from sklearn.metrics import (
    accuracy_score,
    average_precision_score,
    brier_score_loss,
    f1_score,
    mean_absolute_error,
    precision_recall_curve,
    precision_score,
    recall_score,
    roc_auc_score,
)

from shopfloor.errors import InvalidInputError
from shopfloor.evaluation import metrics
from shopfloor.evaluation.bootstrap import Cells, Design, Statistic, bootstrap, on_rows


@pytest.fixture
def scored() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(3)
    y = (rng.random(2000) < 0.05).astype(int)
    scores = np.clip(y * 0.4 + rng.normal(0.3, 0.2, 2000), 0, 1)
    return y, np.round(scores, 2)  # rounding creates ties, as int8 outputs do


def _sklearn(metric: str, y: np.ndarray, s: np.ndarray) -> float:
    if metric == "recall_at_precision":
        precision, recall, _ = precision_recall_curve(y, s)
        return float(recall[precision >= 0.8].max())
    by_threshold = {"f1": f1_score, "accuracy": accuracy_score, "precision": precision_score,
                    "recall": recall_score}
    if metric in by_threshold:
        return float(by_threshold[metric](y, s >= 0.5))
    direct = {"pr_auc": average_precision_score, "roc_auc": roc_auc_score, "brier": brier_score_loss}
    return float(direct[metric](y, s))


SKLEARN_METRICS = (
    "pr_auc", "roc_auc", "recall_at_precision", "f1", "accuracy", "precision", "recall", "brier")


@pytest.mark.parametrize("metric", SKLEARN_METRICS)
def test_point_values_match_sklearn(scored: tuple[np.ndarray, np.ndarray], metric: str) -> None:
    y, s = scored
    assert metrics.metric_value(metric, y, s) == pytest.approx(_sklearn(metric, y, s), abs=1e-12)


@pytest.mark.parametrize("metric", SKLEARN_METRICS)
def test_every_resample_matches_sklearn_on_its_rows(
    scored: tuple[np.ndarray, np.ndarray], metric: str,
) -> None:
    y, s = scored
    rows = np.random.default_rng(1).integers(0, len(y), (4, len(y)))  # duplicates make new ties
    values = on_rows(metrics.Scored.of(y, s).statistic(metric), rows)
    for r in range(len(rows)):
        assert values[r] == pytest.approx(_sklearn(metric, y[rows[r]], s[rows[r]]), abs=1e-12)


def test_regression_and_calibration_metrics() -> None:
    rng = np.random.default_rng(0)
    truth, pred = rng.normal(10, 2, 500), rng.normal(10, 2, 500)
    assert metrics.metric_value("mae", truth, pred) == pytest.approx(mean_absolute_error(truth, pred))
    p = rng.random(4000)
    y = (rng.random(4000) < p).astype(int)  # calibrated by construction
    assert metrics.metric_value("calibration_error", y, p) < 0.03
    assert metrics.metric_value("calibration_error", y, p**3) > 0.1  # a miscalibrated model
    bins = np.minimum((p * 10).astype(int), 9)
    expected = sum(abs((p[bins == b] - y[bins == b]).sum()) for b in range(10)) / len(p)
    assert metrics.metric_value("calibration_error", y, p) == pytest.approx(expected)


def test_stratified_resamples_keep_the_failures_and_clusters_stay_whole() -> None:
    y = np.array([1] * 7 + [0] * 93)
    failures = Statistic.of(Cells(y.astype(np.int64), 2), lambda s: s[:, 0, 1])
    rows = Statistic.of(Cells(np.zeros(100, dtype=np.int64), 1), lambda s: s[:, 0, 0])
    kept = bootstrap({"f": failures}, Design.of(100, strata=y), resamples=300, seed=0)["f"]
    assert set(kept.samples) == {7.0}
    free = bootstrap({"f": failures}, Design.of(100), resamples=300, seed=0)["f"]
    assert len(set(free.samples)) > 3
    groups = np.repeat([0, 1], [30, 70])  # two clusters of 30 and 70 rows
    whole = bootstrap({"n": rows}, Design.of(100, groups=groups), resamples=300, seed=0)["n"]
    assert set(whole.samples) <= {60.0, 100.0, 140.0}


def test_models_on_the_same_resamples_are_paired(scored: tuple[np.ndarray, np.ndarray]) -> None:
    y, s = scored
    reps = metrics.models_replicates(y, {"a": (s, 0.5), "b": (s.copy(), 0.5)}, target_precision=0.8,
                                     resamples=200, seed=0, differences={"ab": ("a", "b", "pr_auc")})
    assert np.array_equal(reps["a/pr_auc"].samples, reps["b/pr_auc"].samples)
    assert set(reps["difference/ab"].samples) == {0.0}
    rng = np.random.default_rng(0)
    strong = y * 2.0 + rng.normal(0, 0.3, len(y))
    weak = y * 0.2 + rng.normal(0, 0.3, len(y))
    reps = metrics.models_replicates(y, {"strong": (strong, 0.5), "weak": (weak, 0.5)}, target_precision=0.8,
                                     resamples=500, seed=0, differences={"d": ("strong", "weak", "pr_auc")})
    assert reps["difference/d"].lower(0.025) > 0
    estimate = metrics.estimate(reps["strong/pr_auc"], "pr_auc", 0.95)
    assert estimate.ci_low <= estimate.value <= estimate.ci_high
    assert estimate.method == metrics.interval_method("pr_auc") == "bca, expanded for the failures"


def test_threshold_reaches_target_precision(scored: tuple[np.ndarray, np.ndarray]) -> None:
    y, s = scored
    t = metrics.choose_threshold(y, s, 0.8)
    predicted = s >= t
    assert y[predicted].mean() >= 0.8


def test_threshold_sits_between_validation_scores_not_on_one() -> None:
    """A cut exactly at a score flips rows tied with it when the edge file rounds that score a
    few ulps lower; midway to the next lower score, validation decisions stay the same."""
    y = np.array([1, 1, 0, 1, 0, 0, 0, 0])
    s = np.array([0.9, 0.8, 0.8, 0.7, 0.4, 0.4, 0.2, 0.1])
    t = metrics.choose_threshold(y, s, 0.6)  # precision 3/4 down to 0.7: cut between 0.7 and 0.4
    assert t == pytest.approx(0.55) and t not in set(s)
    assert ((s >= t) == (s >= 0.7)).all()
    assert metrics.choose_threshold(np.array([1, 1]), np.array([0.3, 0.3]), 0.5) == 0.3  # nothing lower


def test_undefined_without_failures() -> None:
    assert np.isnan(metrics.metric_value("pr_auc", np.zeros(10), np.linspace(0, 1, 10)))
    assert np.isnan(metrics.metric_value("roc_auc", np.ones(10), np.linspace(0, 1, 10)))


@pytest.mark.parametrize(("call", "message"), [
    (lambda: metrics.metric_value("pr_auc", [0, 1], [0.1, np.nan]), "NaN"),
    (lambda: metrics.metric_value("pr_auc", [0, 2], [0.1, 0.2]), "0/1"),
    (lambda: metrics.metric_value("pr_auc", [0, 1, 1], [0.1, 0.2]), "3 true values but 2 scores"),
    (lambda: metrics.metric_value("auc", [0, 1], [0.1, 0.2]), "unknown metric 'auc'"),
    (lambda: metrics.metric_value("brier", [0, 1], [0.1, 1.2]), "probabilities"),
    (lambda: metrics.metric_value("pr_auc", [], []), "no cases"),
])
def test_bad_input_is_named(call, message: str) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(InvalidInputError, match=message):
        call()
