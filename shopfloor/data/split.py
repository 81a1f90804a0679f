"""Stratified, seeded train/validation/test split."""

from __future__ import annotations

import numpy as np
import pandas as pd

from shopfloor.data import schema
from shopfloor.errors import InvalidInputError, excerpt


def _fraction(name: str, value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 < value < 1:
        raise InvalidInputError(f"{name} must be a number in (0, 1), got {excerpt(value)}")
    return float(value)


def check_fractions(validation_fraction: object, test_fraction: object) -> tuple[float, float]:
    """Both fractions numbers in (0, 1) that leave rows to train on; InvalidInputError naming
    the parameter otherwise."""
    validation = _fraction("validation_fraction", validation_fraction)
    test = _fraction("test_fraction", test_fraction)
    if validation + test >= 1:
        raise InvalidInputError(f"validation_fraction + test_fraction must be below 1 (got {validation} + "
                                f"{test}): no rows would be left to train on")
    return validation, test


def stratified_split(
    frame: pd.DataFrame,
    *,
    validation_fraction: float = 0.2,
    test_fraction: float = 0.2,
    seed: int = 42,
    stratify_on: str = schema.TARGET,
) -> dict[str, pd.DataFrame]:
    """Split keeping the failure rate equal in every part.

    With ~3 % failures a plain random split can leave a test set with too few failures to
    bound a metric; stratifying keeps the intervals comparable from run to run.
    """
    check_fractions(validation_fraction, test_fraction)
    if stratify_on not in frame.columns:
        raise InvalidInputError(f"cannot stratify: column {stratify_on!r} is missing")
    rng = np.random.default_rng(seed)
    parts: dict[str, list[np.ndarray]] = {"train": [], "validation": [], "test": []}
    labels = frame[stratify_on].to_numpy()
    for label in np.unique(labels):
        idx = rng.permutation(np.flatnonzero(labels == label))
        n_test = round(len(idx) * test_fraction)
        n_val = round(len(idx) * validation_fraction)
        parts["test"].append(idx[:n_test])
        parts["validation"].append(idx[n_test : n_test + n_val])
        parts["train"].append(idx[n_test + n_val :])
    return {
        name: frame.iloc[np.sort(np.concatenate(chunks))].reset_index(drop=True)
        for name, chunks in parts.items()
    }
