"""The one-pass bootstrap metrics must agree with scikit-learn, ties included."""

import numpy as np
import pytest
from sklearn.metrics import average_precision_score, f1_score, precision_recall_curve, roc_auc_score

from shopfloor.evaluation import metrics


@pytest.fixture
def scored() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(3)
    y = (rng.random(2000) < 0.05).astype(int)
    scores = np.clip(y * 0.4 + rng.normal(0.3, 0.2, 2000), 0, 1)
    return y, np.round(scores, 2)  # rounding creates ties, as int8 outputs do


def test_unit_weights_match_sklearn(scored: tuple[np.ndarray, np.ndarray]) -> None:
    y, s = scored
    out = metrics.metric_samples(y, s, np.ones((1, len(y))), threshold=0.5, target_precision=0.8)
    assert out["pr_auc"][0] == pytest.approx(average_precision_score(y, s), abs=1e-12)
    assert out["roc_auc"][0] == pytest.approx(roc_auc_score(y, s), abs=1e-12)
    assert out["f1"][0] == pytest.approx(f1_score(y, s >= 0.5), abs=1e-12)
    precision, recall, _ = precision_recall_curve(y, s)
    assert out["recall_at_precision"][0] == pytest.approx(recall[precision >= 0.8].max(), abs=1e-12)


def test_weights_equal_index_resampling(scored: tuple[np.ndarray, np.ndarray]) -> None:
    y, s = scored
    w = metrics.bootstrap_weights(y, 3, seed=1)
    out = metrics.metric_samples(y, s, w, threshold=0.5, target_precision=0.8)
    for r in range(3):
        idx = np.repeat(np.arange(len(y)), w[r].astype(int))
        assert out["pr_auc"][r] == pytest.approx(average_precision_score(y[idx], s[idx]), abs=1e-12)
        assert out["roc_auc"][r] == pytest.approx(roc_auc_score(y[idx], s[idx]), abs=1e-12)


def test_stratified_weights_keep_class_counts(scored: tuple[np.ndarray, np.ndarray]) -> None:
    y, _ = scored
    w = metrics.bootstrap_weights(y, 50, seed=0)
    assert np.all(w[:, y == 1].sum(axis=1) == y.sum())
    assert np.all(w.sum(axis=1) == len(y))


def test_interval_contains_point_and_shrinks_with_separation() -> None:
    rng = np.random.default_rng(0)
    y = (rng.random(3000) < 0.05).astype(int)
    weak = y * 0.2 + rng.normal(0, 0.3, 3000)
    strong = y * 2.0 + rng.normal(0, 0.3, 3000)
    w = metrics.bootstrap_weights(y, 500, seed=0)
    e_weak = metrics.evaluate_with_ci(y, weak, threshold=0.5, target_precision=0.8, weights=w)
    e_strong = metrics.evaluate_with_ci(y, strong, threshold=0.5, target_precision=0.8, weights=w)
    for e in (e_weak, e_strong):
        assert e["pr_auc"].ci_low <= e["pr_auc"].value <= e["pr_auc"].ci_high
    assert e_strong["pr_auc"].ci_low > e_weak["pr_auc"].ci_high
    diff = metrics.paired_difference(
        y, strong, weak, metric="pr_auc", weights=w, threshold=0.5, target_precision=0.8
    )
    assert diff.ci_low > 0


def test_threshold_reaches_target_precision(scored: tuple[np.ndarray, np.ndarray]) -> None:
    y, s = scored
    t = metrics.choose_threshold(y, s, 0.8)
    predicted = s >= t
    assert y[predicted].mean() >= 0.8


def test_bad_scores_are_named() -> None:
    with pytest.raises(ValueError, match="NaN"):
        metrics.metric_samples(
            np.array([0, 1]), np.array([0.1, np.nan]), np.ones((1, 2)), threshold=0.5, target_precision=0.8
        )
    with pytest.raises(ValueError, match="both failures and non-failures"):
        metrics.evaluate_with_ci(
            np.zeros(5), np.zeros(5), threshold=0.5, target_precision=0.8, weights=np.ones((2, 5))
        )
