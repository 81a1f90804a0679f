"""The yardstick: a logistic regression on the same features and split, never shipped.

Every candidate family (the Keras MLP, the tree ensemble) must be non-inferior to a fixed,
simple model that anyone can refit and reason about; the evaluate step tests exactly that.
The yardstick is not a candidate: if it were, a gate "not worse than the best candidate"
would compare a model with itself.
"""

from __future__ import annotations

from typing import Any

import numpy as np


def train_baseline(x_train: np.ndarray, y_train: np.ndarray, seed: int = 42) -> Any:
    """L2-regularised logistic regression on the standardised features (lbfgs, deterministic;
    ``seed`` kept for a uniform signature)."""
    from sklearn.linear_model import LogisticRegression

    model = LogisticRegression(C=1.0, max_iter=2000, random_state=seed)
    model.fit(np.asarray(x_train, dtype=np.float64), y_train.astype(int))
    return model


def predict_baseline(model: Any, x: np.ndarray) -> np.ndarray:
    """Failure probabilities of the yardstick."""
    return np.asarray(model.predict_proba(np.asarray(x, dtype=np.float64)))[:, 1]
