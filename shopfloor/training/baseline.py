"""The yardstick: a scikit-learn gradient-boosting model on the same features and split.

A neural model for the edge is only worth shipping if it is not clearly worse than a
well-tuned classic model; the evaluate step tests exactly that (non-inferiority).
"""

from __future__ import annotations

from typing import Any

import numpy as np


def train_baseline(x_train: np.ndarray, y_train: np.ndarray, seed: int = 42) -> Any:
    """Histogram gradient boosting: fast on 2 cores, strong on threshold-like physics."""
    from sklearn.ensemble import HistGradientBoostingClassifier

    model = HistGradientBoostingClassifier(
        max_iter=300,
        learning_rate=0.1,
        max_leaf_nodes=15,
        l2_regularization=1.0,
        early_stopping=False,
        random_state=seed,
    )
    model.fit(x_train, y_train.astype(int))
    return model


def predict_baseline(model: Any, x: np.ndarray) -> np.ndarray:
    """Failure probabilities of the baseline."""
    return np.asarray(model.predict_proba(x))[:, 1]
