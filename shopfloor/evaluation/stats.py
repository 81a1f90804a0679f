"""Interval estimates shared by evaluation and conversion checks.

A model is judged statistically: every figure we gate on carries a 95 % interval, so a lucky
test split cannot push a model through and an unlucky one cannot block a good model.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
from scipy import stats


@dataclass(frozen=True)
class Estimate:
    """A point estimate with its two-sided confidence interval."""

    value: float
    ci_low: float
    ci_high: float

    def to_dict(self) -> dict[str, float]:
        return {k: float(v) for k, v in asdict(self).items()}

    def __str__(self) -> str:
        return f"{self.value:.3f} [{self.ci_low:.3f}, {self.ci_high:.3f}]"


def wilson_interval(successes: int, trials: int, confidence: float = 0.95) -> Estimate:
    """Wilson score interval for a proportion: honest near 0 and 1, where agreement rates live."""
    if trials <= 0:
        raise ValueError("wilson_interval needs at least one trial")
    z = float(stats.norm.ppf(0.5 + confidence / 2))
    p = successes / trials
    denom = 1 + z**2 / trials
    centre = (p + z**2 / (2 * trials)) / denom
    half = z * np.sqrt(p * (1 - p) / trials + z**2 / (4 * trials**2)) / denom
    return Estimate(p, max(0.0, centre - half), min(1.0, centre + half))


def percentile_interval(point: float, samples: np.ndarray, confidence: float = 0.95) -> Estimate:
    """Percentile bootstrap interval around a point estimate."""
    finite = samples[np.isfinite(samples)]
    if finite.size == 0:
        return Estimate(point, float("nan"), float("nan"))
    alpha = (1 - confidence) / 2
    low, high = np.quantile(finite, [alpha, 1 - alpha])
    return Estimate(float(point), float(low), float(high))
