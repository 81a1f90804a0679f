"""Testing a model in CI with shopfloor.testing -- a file to copy into your own test suite.

Every assertion is a confidence statement, not a point value: it passes when the metric's
confidence bound clears the limit, fails when the whole interval is on the wrong side, and is
inconclusive -- never a silent pass -- when the test set is too small to tell (the message
says how many more cases would likely settle it). Installing shopfloor enables the pytest
plugin: each assertion's resampling seed comes from the test's node id (reruns give the same
verdict), and the error rate of the whole run is controlled (Holm) and summarised at the end.

Replace the two fixtures with your held-out test set and your models' scores.
"""

import numpy as np
import pytest
from sklearn.ensemble import GradientBoostingClassifier
from sklearn.linear_model import LogisticRegression

from shopfloor.testing import (
    assert_agreement,
    assert_calibrated,
    assert_metric,
    assert_no_drift,
    assert_non_inferior,
)


@pytest.fixture(scope="module")
def data() -> dict[str, np.ndarray]:
    """Stand-in for your data: sensor features, failure labels and the machine of each reading."""
    rng = np.random.default_rng(42)
    n = 8000
    machine = rng.integers(0, 40, n)
    x = rng.normal(size=(n, 4)) + rng.normal(0, 0.3, (40, 4))[machine]
    logit = 2.5 * x[:, 0] - 1.5 * x[:, 1] + 1.0 * x[:, 2] * x[:, 3] - 4.5
    y = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(int)
    train = np.arange(n) < n // 2
    return {"x_train": x[train], "y_train": y[train],
            "x": x[~train], "y": y[~train], "machine": machine[~train]}


@pytest.fixture(scope="module")
def scores(data: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Stand-in for your models: the candidate and the one in production, scored on the test set."""
    candidate = GradientBoostingClassifier(random_state=0).fit(data["x_train"], data["y_train"])
    production = LogisticRegression().fit(data["x_train"], data["y_train"])
    return {"candidate": candidate.predict_proba(data["x"])[:, 1],
            "production": production.predict_proba(data["x"])[:, 1]}


def test_candidate_finds_failures(data: dict[str, np.ndarray], scores: dict[str, np.ndarray]) -> None:
    # groups=: readings of one machine are correlated, so whole machines are resampled
    assert_metric(data["y"], scores["candidate"], metric="pr_auc", at_least=0.5, groups=data["machine"])
    assert_metric(data["y"], scores["candidate"], metric="recall_at_precision", precision=0.8,
                  at_least=0.15, groups=data["machine"])


def test_candidate_is_no_worse_than_production(
    data: dict[str, np.ndarray], scores: dict[str, np.ndarray],
) -> None:
    # paired: both models on the same cases and the same resamples
    assert_non_inferior(data["y"], scores["candidate"], scores["production"], metric="pr_auc", margin=0.05,
                        groups=data["machine"])


def test_probabilities_are_calibrated(data: dict[str, np.ndarray], scores: dict[str, np.ndarray]) -> None:
    assert_calibrated(data["y"], scores["candidate"], at_most=0.05)
    assert_metric(data["y"], scores["candidate"], metric="brier", at_most=0.1)


def test_edge_model_decides_like_the_original(scores: dict[str, np.ndarray]) -> None:
    edge = np.round(scores["candidate"] * 255) / 255  # stand-in for an int8 model's output
    assert_agreement(scores["candidate"] >= 0.5, edge >= 0.5, at_least=0.99)


def test_inputs_have_not_drifted(data: dict[str, np.ndarray]) -> None:
    # fails on drift; inconclusive when too few readings could have shown a 0.25-SD shift
    for feature in range(data["x"].shape[1]):
        assert_no_drift(data["x_train"][:, feature], data["x"][:, feature], detect=0.25)
