"""Interval estimates shared by evaluation and conversion checks.

A model is judged statistically: every figure we gate on carries an interval, so a lucky
test split cannot push a model through and an unlucky one cannot block a good model.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from scipy.special import ndtr, ndtri

from shopfloor.errors import InvalidInputError


@dataclass(frozen=True)
class Estimate:
    """A point estimate with its two-sided confidence interval (and how it was computed)."""

    value: float
    ci_low: float
    ci_high: float
    method: str = ""

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"value": float(self.value), "ci_low": float(self.ci_low),
                               "ci_high": float(self.ci_high)}
        if self.method:
            out["method"] = self.method
        return out

    def __str__(self) -> str:
        return f"{self.value:.3f} [{self.ci_low:.3f}, {self.ci_high:.3f}]"


def z_of(alpha: float) -> float:
    """The standard normal quantile exceeded with probability ``alpha``."""
    return float(-ndtri(alpha))


def normal_sf(z: float) -> float:
    return float(ndtr(-z))


def wilson_bounds(successes: float, trials: float, alpha: float) -> tuple[float, float]:
    """One-sided Wilson score bounds at level 1 - alpha each (``trials`` may be an effective,
    non-integer sample size)."""
    if trials <= 0:
        raise InvalidInputError("a proportion needs at least one trial")
    z = z_of(alpha)
    p = successes / trials
    denom = 1 + z**2 / trials
    centre = (p + z**2 / (2 * trials)) / denom
    half = z * math.sqrt(max(p * (1 - p), 0.0) / trials + z**2 / (4 * trials**2)) / denom
    return max(0.0, centre - half), min(1.0, centre + half)


def wilson_interval(successes: int, trials: int, confidence: float = 0.95) -> Estimate:
    """Wilson score interval for a proportion: honest near 0 and 1, where agreement rates live."""
    if trials <= 0:
        raise InvalidInputError("wilson_interval needs at least one trial")
    low, high = wilson_bounds(successes, trials, (1 - confidence) / 2)
    return Estimate(successes / trials, low, high, "wilson")
