"""Has a feature drifted between two samples, and could we have seen it if it had?

Two-sample Kolmogorov-Smirnov for numeric values, chi-squared on the contingency table for
categorical ones. "No drift detected" alone says nothing when the samples are small, so every
result carries the test's power against a stated effect: a location shift of ``detect``
reference standard deviations (numeric; simulated by a smoothed bootstrap of the reference,
so no normality is assumed) or Cohen's w = ``detect`` (categorical; noncentral chi-squared). The verdict is
**fail** when drift is detected, **pass** when it is not and the power reaches the target,
**inconclusive** when it is not detected but the samples were too small to see it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from shopfloor.errors import InvalidInputError, excerpt
from shopfloor.evaluation.decision import MAX_SUGGESTED, check_alpha
from shopfloor.evaluation.stats import z_of
from shopfloor.steps import Verdict

#: Largest sample (values per side) a drift check accepts.
MAX_VALUES = 5_000_000
#: Most distinct categories a categorical check accepts.
MAX_CATEGORIES = 10_000
#: Simulated samples behind a numeric power estimate.
POWER_SIMULATIONS = 400
#: Default effect to detect: a shift of a quarter reference SD, or Cohen's w = 0.1 ("small").
DEFAULT_DETECT = {"numeric": 0.25, "categorical": 0.1}
_CHUNK = 1 << 22


@dataclass(frozen=True)
class DriftResult:
    """A drift test's verdict with its power: 'not detected' is a pass only with power."""

    kind: str  # "numeric" | "categorical"
    statistic: float  # KS distance D, or the chi-squared statistic
    p_value: float  # of the drift test: drift is detected iff <= alpha
    power: float  # probability to detect the stated effect at alpha with these sample sizes
    detect: float
    target_power: float
    alpha: float
    verdict: Verdict
    n: int  # smaller of the two sample sizes
    needed: int | None = None  # per-sample size likely to reach the target power

    @property
    def quantity(self) -> str:
        return "KS distance" if self.kind == "numeric" else "chi-squared"

    @property
    def effect(self) -> str:
        if self.kind == "numeric":
            return f"a shift of {self.detect:g} reference SD"
        return f"an effect of Cohen's w = {self.detect:g}"

    @property
    def claim(self) -> str:
        return f"no drift ({self.effect} detectable)"

    @property
    def passed(self) -> bool:
        return self.verdict is Verdict.PASS

    @property
    def method(self) -> str:
        return "two-sample KS" if self.kind == "numeric" else "chi-squared"

    def message(self) -> str:
        test = f"{self.method}: {self.quantity} = {self.statistic:.4g}, p = {self.p_value:.3g}"
        power = f"power {self.power:.2f} to detect {self.effect} at alpha {self.alpha:g}"
        if self.verdict is Verdict.FAIL:
            return f"drift detected ({test}); {power}"
        if self.verdict is Verdict.PASS:
            return f"no drift detected ({test}); {power}"
        more = ("" if self.needed is None else
                f"; about {self.needed:,} cases per sample would likely reach power {self.target_power:g}")
        return (f"inconclusive: no drift detected ({test}) but {power} is below "
                f"{self.target_power:g}: too few cases to tell{more}")

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "statistic": self.statistic, "p_value": self.p_value, "power": self.power,
                "detect": self.detect, "target_power": self.target_power, "alpha": self.alpha,
                "verdict": self.verdict.value, "n": self.n, "needed": self.needed}


def _kind(values: np.ndarray) -> str:
    return "numeric" if values.dtype.kind in "iuf" and values.dtype.kind != "b" else "categorical"


def _side(values: object, what: str) -> np.ndarray:
    arr = np.asarray(values)
    if arr.ndim != 1:
        raise InvalidInputError(f"{what} must be one value per case, got shape {arr.shape}")
    if arr.size == 0:
        raise InvalidInputError(f"{what} is empty")
    if arr.size > MAX_VALUES:
        raise InvalidInputError(f"{what} has {arr.size} values; the limit is {MAX_VALUES}")
    return arr


def drift_test(
    reference: object, current: object, *, kind: str = "auto", detect: float | None = None,
    power: float = 0.8, alpha: float = 0.05, seed: int = 0,
) -> DriftResult:
    """Test ``current`` against ``reference`` and say whether a drift of size ``detect``
    could have been seen (see the module docstring)."""
    alpha = check_alpha(alpha)
    ref, cur = _side(reference, "reference"), _side(current, "current")
    if kind == "auto":
        kind = "numeric" if _kind(ref) == "numeric" and _kind(cur) == "numeric" else "categorical"
    if kind not in DEFAULT_DETECT:
        raise InvalidInputError(f"kind must be auto, numeric or categorical, got {excerpt(kind)}")
    if not 0.0 < power < 1.0:
        raise InvalidInputError(f"power must be in (0, 1), got {power!r}")
    effect = DEFAULT_DETECT[kind] if detect is None else detect
    if isinstance(effect, bool) or not isinstance(effect, int | float) or not 0 < effect < math.inf:
        raise InvalidInputError(f"detect must be a positive number, got {effect!r}")
    if kind == "numeric":
        return _numeric(ref, cur, float(effect), power, alpha, seed)
    return _categorical(ref, cur, float(effect), power, alpha)


def _verdict(p_value: float, achieved: float, target: float, alpha: float) -> Verdict:
    if p_value <= alpha:
        return Verdict.FAIL
    return Verdict.PASS if achieved >= target else Verdict.INCONCLUSIVE


def _numeric(ref: np.ndarray, cur: np.ndarray, detect: float, target: float, alpha: float,
             seed: int) -> DriftResult:
    from scipy.stats import ks_2samp, kstwo

    try:
        a, b = ref.astype(np.float64), cur.astype(np.float64)
    except (TypeError, ValueError):
        raise InvalidInputError("numeric drift needs numbers on both sides") from None
    if not (np.isfinite(a).all() and np.isfinite(b).all()):
        raise InvalidInputError("values contain NaN or infinity")
    test = ks_2samp(a, b, method="asymp")
    n1, n2 = a.size, b.size
    effective = n1 * n2 / (n1 + n2)
    critical = float(kstwo.isf(alpha, max(1, round(effective))))
    sd = float(np.std(a, ddof=1)) if n1 > 1 else 0.0
    if sd == 0.0:  # a constant reference: any change of value is a detectable shift
        achieved = 1.0
    else:
        # Smoothed bootstrap of the reference (Gaussian kernel, Silverman's bandwidth): plain
        # resampling would shift a step function, whose jagged increments overstate power.
        shift = detect * sd
        spread = min(sd, float(np.subtract(*np.percentile(a, [75, 25]))) / 1.34) or sd
        bandwidth = 0.9 * spread * n1 ** (-0.2)
        rng = np.random.default_rng(seed)
        hits = 0
        chunk = max(1, _CHUNK // (n1 + n2))
        for start in range(0, POWER_SIMULATIONS, chunk):
            k = min(chunk, POWER_SIMULATIONS - start)
            x = a[rng.integers(0, n1, (k, n1))] + bandwidth * rng.standard_normal((k, n1))
            y = a[rng.integers(0, n1, (k, n2))] + bandwidth * rng.standard_normal((k, n2)) + shift
            hits += int((_ks_distances(x, y) >= critical).sum())
        achieved = hits / POWER_SIMULATIONS
    verdict = _verdict(float(test.pvalue), achieved, target, alpha)
    needed = None
    if verdict is Verdict.INCONCLUSIVE:
        # Power grows like sqrt(effective n) times the effect (normal approximation).
        z_a, z_t = z_of(alpha / 2), z_of(1 - target)
        now = z_a + z_of(1 - min(max(achieved, alpha / 2 + 0.01), 0.999))
        factor = ((z_a + z_t) / now) ** 2 if now > 0 else math.inf
        per_sample = 2 * effective * factor  # equal sizes: effective n is half of each
        needed = int(min(math.ceil(per_sample), MAX_SUGGESTED)) if math.isfinite(per_sample) else None
    return DriftResult("numeric", float(test.statistic), float(test.pvalue), achieved, detect, target, alpha,
                       verdict, min(n1, n2), needed)


def _ks_distances(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Two-sample KS distance of each row pair (ties handled: compared after each value)."""
    n1, n2 = x.shape[1], y.shape[1]
    values = np.concatenate([x, y], axis=1)
    order = np.argsort(values, axis=1, kind="stable")
    ordered = np.take_along_axis(values, order, axis=1)
    from_x = order < n1
    gap = np.cumsum(from_x, axis=1) / n1 - np.cumsum(~from_x, axis=1) / n2
    last_of_value = np.ones_like(from_x)
    last_of_value[:, :-1] = ordered[:, 1:] != ordered[:, :-1]
    return np.where(last_of_value, np.abs(gap), 0.0).max(axis=1)


def _categorical(ref: np.ndarray, cur: np.ndarray, w: float, target: float, alpha: float) -> DriftResult:
    from scipy.optimize import brentq
    from scipy.stats import chi2, chi2_contingency, ncx2

    ref_s, cur_s = ref.astype(str), cur.astype(str)
    categories, codes = np.unique(np.concatenate([ref_s, cur_s]), return_inverse=True)
    if categories.size > MAX_CATEGORIES:
        raise InvalidInputError(f"{categories.size} categories; the limit is {MAX_CATEGORIES}")
    k = categories.size
    table = np.vstack([np.bincount(codes[: ref_s.size], minlength=k),
                       np.bincount(codes[ref_s.size:], minlength=k)])
    total = int(table.sum())
    if k < 2:
        statistic, p_value = 0.0, 1.0
    else:
        result = chi2_contingency(table, correction=False)
        statistic, p_value = float(result.statistic), float(result.pvalue)
    df = max(k - 1, 1)
    critical = float(chi2.isf(alpha, df))
    achieved = float(ncx2.sf(critical, df, total * w * w))
    verdict = _verdict(p_value, achieved, target, alpha)
    needed = None
    if verdict is Verdict.INCONCLUSIVE:
        lam = brentq(lambda x: float(ncx2.sf(critical, df, x)) - target, 1e-9, 1e7)
        share = min(ref_s.size, cur_s.size) / total
        needed = int(min(math.ceil(lam / (w * w) * share), MAX_SUGGESTED))
    return DriftResult("categorical", statistic, p_value, achieved, w, target, alpha, verdict,
                       min(ref_s.size, cur_s.size), needed)
