"""The tree-ensemble candidate: scikit-learn histogram gradient boosting, float32 throughout.

Why float32 throughout: the edge runs the ensemble compiled to a float32 LiteRT graph
(:mod:`shopfloor.conversion.trees`), so it only ever sees float32 feature values. Trained on
float64 features, the model can place a split between two doubles that round to the same
float32 (an engineered temperature difference of 7.6 next to 7.6000000000000227); the float32
edge file then cannot tell them apart and its decisions flip against the float64 reference.
Fitted on float32-rounded features, every threshold falls between distinct float32 values and
the compiled graph can reproduce the ensemble exactly. :func:`predict_trees` rounds the same
way, so it is the reference every equivalence check compares against.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from shopfloor.errors import InvalidInputError

#: Hyper-parameters of the ensemble: 300 small trees, shrinkage 0.1, fixed iterations (no
#: early stopping: its validation carve-out would depend on the split and change the model).
TREE_PARAMS: dict[str, Any] = {
    "max_iter": 300,
    "learning_rate": 0.1,
    "max_leaf_nodes": 15,
    "l2_regularization": 1.0,
    "early_stopping": False,
}


def as_float32(x: Any) -> np.ndarray:
    """A C-contiguous float32 ``[rows, features]`` matrix (a view when ``x`` already is one)."""
    array = np.ascontiguousarray(x, dtype=np.float32)
    if array.ndim != 2:
        raise InvalidInputError(f"features must be a 2-D [rows, features] array, "
                                f"got shape {list(array.shape)}")
    return array


def train_trees(x_train: np.ndarray, y_train: np.ndarray, seed: int = 42) -> Any:
    """A :class:`~sklearn.ensemble.HistGradientBoostingClassifier` fitted on float32-rounded
    features (see the module docstring for why)."""
    from sklearn.ensemble import HistGradientBoostingClassifier

    model = HistGradientBoostingClassifier(**TREE_PARAMS, random_state=seed)
    model.fit(as_float32(x_train), np.asarray(y_train).astype(int))
    return model


def predict_trees(model: Any, x: np.ndarray) -> np.ndarray:
    """Failure probabilities (float64, shape ``[rows]``) on float32-rounded features: what the
    float32 edge file computes, and so the reference it is checked against."""
    return np.asarray(model.predict_proba(as_float32(x)), dtype=np.float64)[:, 1]
