"""Three verdicts from an interval, and error control over a family of them.

A claim such as "PR-AUC is at least 0.8" is decided on one-sided confidence bounds at level
1 - alpha: **pass** when the lower bound reaches the limit (the whole interval is on the right
side), **fail** when the upper bound is below it (the whole interval is on the wrong side),
**inconclusive** otherwise: the data cannot tell, which is never a pass. Each verdict carries a
p-value for the claim (pass iff p <= alpha, the same construction as the bound, so the two
never disagree), which is what a family correction (Holm) adjusts, and for an inconclusive
verdict an estimate of how many cases would likely settle it.

The pipeline's gates are the same decision at alpha = (1 - confidence) / 2 per gate: a
two-sided 95 % interval's lower bound is a one-sided 97.5 % bound.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from shopfloor.errors import InvalidInputError
from shopfloor.evaluation.bootstrap import Replicates
from shopfloor.evaluation.stats import normal_sf, wilson_bounds, z_of
from shopfloor.steps import Verdict

AT_LEAST = "at_least"
AT_MOST = "at_most"
#: Probability that the suggested number of cases settles an inconclusive verdict (if the
#: estimate stays where it is): the usual 80 % power.
SETTLE_POWER = 0.8
#: Family corrections the plugin offers.
CORRECTIONS: tuple[str, ...] = ("holm", "bonferroni", "none")
#: Most cases a sample-size estimate names (beyond it: "more than").
MAX_SUGGESTED = 10**9


def check_alpha(alpha: object) -> float:
    if isinstance(alpha, bool) or not isinstance(alpha, int | float) or not 0.0 < alpha < 0.5:
        raise InvalidInputError(f"alpha must be a number in (0, 0.5), got {alpha!r}")
    return float(alpha)


def direction_of(at_least: float | None, at_most: float | None) -> tuple[str, float]:
    """Exactly one of ``at_least`` / ``at_most`` -> (direction, limit)."""
    if (at_least is None) == (at_most is None):
        raise InvalidInputError("give exactly one of at_least= or at_most=")
    limit = at_least if at_least is not None else at_most
    if isinstance(limit, bool) or not isinstance(limit, int | float) or not math.isfinite(limit):
        raise InvalidInputError(f"the limit must be a finite number, got {limit!r}")
    return (AT_LEAST if at_least is not None else AT_MOST), float(limit)


@dataclass(frozen=True)
class Judgement:
    """A claim about a quantity, decided three ways, with its evidence."""

    quantity: str
    direction: str
    limit: float
    estimate: float
    low: float  # one-sided lower bound at 1 - alpha
    high: float  # one-sided upper bound at 1 - alpha
    alpha: float
    p_value: float  # evidence for the claim: pass iff <= alpha
    p_against: float  # evidence for its negation: fail iff <= alpha
    verdict: Verdict
    method: str
    n: int
    unit: str = "cases"
    needed: int | None = None  # units likely to settle an inconclusive verdict (in all)
    note: str = ""

    @property
    def claim(self) -> str:
        return f"{self.quantity} {'>=' if self.direction == AT_LEAST else '<='} {self.limit:.4g}"

    @property
    def passed(self) -> bool:
        return self.verdict is Verdict.PASS

    def interval(self) -> str:
        return f"[{self.low:.4g}, {self.high:.4g}]"

    def explanation(self) -> str:
        if self.verdict is Verdict.PASS:
            return "the whole interval is on the right side of the limit"
        if self.verdict is Verdict.FAIL:
            return "the whole interval is on the wrong side of the limit"
        if not math.isfinite(self.estimate) or math.isnan(self.low) or math.isnan(self.high):
            why = f": {self.note}" if self.note else ""
            return f"cannot be bounded on these {self.n:,} {self.unit}{why}"
        if self.needed is None:
            return (f"the interval straddles the limit and the estimate sits on it: more {self.unit} "
                    "alone will likely not settle it")
        more = self.needed - self.n
        amount = f"more than {MAX_SUGGESTED:,}" if self.needed >= MAX_SUGGESTED else f"about {more:,} more"
        return (f"the interval straddles the limit: too few {self.unit}; {amount} {self.unit} "
                f"({self.needed:,} in all) would likely settle it")

    def message(self) -> str:
        level = 100 * (1 - self.alpha)
        text = (f"{self.claim}: {self.verdict.value} ({self.explanation()}); {self.quantity} = "
                f"{self.estimate:.4g}, one-sided {level:g} % bounds {self.interval()}, {self.method}, "
                f"{self.n:,} {self.unit}, p = {self.p_value:.3g}")
        return text + (f"; {self.note}" if self.note and math.isfinite(self.estimate) else "")

    def to_dict(self) -> dict[str, Any]:
        return {"quantity": self.quantity, "direction": self.direction, "limit": self.limit,
                "estimate": self.estimate, "low": self.low, "high": self.high, "alpha": self.alpha,
                "p_value": self.p_value, "verdict": self.verdict.value, "method": self.method,
                "n": self.n, "unit": self.unit, "needed": self.needed, "note": self.note}


def _verdict(p_value: float, p_against: float, alpha: float) -> Verdict:
    if p_value <= alpha:
        return Verdict.PASS
    if p_against <= alpha:
        return Verdict.FAIL
    return Verdict.INCONCLUSIVE


def _needed(n: int, half_width: float, distance: float, alpha: float) -> int | None:
    """Units at which a one-sided bound at 1 - alpha likely (80 %) clears the limit, if the
    estimate stays and the bound's distance from it (``half_width`` now, on the limit's side)
    shrinks like 1/sqrt(n)."""
    se = half_width / z_of(alpha)
    if not (math.isfinite(se) and se > 0 and math.isfinite(distance) and distance > 0):
        return None
    factor = ((z_of(alpha) + z_of(1 - SETTLE_POWER)) * se / distance) ** 2
    total = n * factor
    if total <= n:
        return None
    return int(min(math.ceil(total), MAX_SUGGESTED))


def judge(
    rep: Replicates, *, quantity: str, limit: float, direction: str, alpha: float, n: int,
    unit: str = "cases", method: str = "bca", bounded: bool = True,
) -> Judgement:
    """Decide ``quantity`` >= / <= ``limit`` from a bootstrap distribution.

    ``bounded``: the quantity lives in [0, 1] (a metric, not a difference). Then a value of 0
    or 1 that every resample repeats (a perfect ranking, say) is inconclusive: the cases
    show no variation, which bounds nothing. A difference that every resample repeats (two
    identical models) is exact and decided as it is."""
    alpha = check_alpha(alpha)
    note = ""
    if rep.undefined:
        share = rep.undefined / (rep.undefined + rep.samples.size)
        note = f"undefined in {100 * share:.1f} % of resamples (left out)"
    flat_at_bound = rep.defined and bounded and rep.samples[0] == rep.samples[-1] and rep.point in (0.0, 1.0)
    if not rep.defined or flat_at_bound:
        nan = float("nan")
        reason = note or "the metric is undefined (e.g. no failures, or only failures)"
        if rep.defined:
            reason = "every resample gives the same value: the cases show no variation to bound it by"
        return Judgement(quantity, direction, limit, rep.point, nan, nan, alpha, 1.0, 1.0,
                         Verdict.INCONCLUSIVE, method, n, unit, None, reason)
    if direction == AT_LEAST:
        p, against = rep.p_at_least(limit), rep.p_below(limit)
    else:
        p, against = rep.p_at_most(limit), rep.p_above(limit)
    verdict = _verdict(p, against, alpha)
    low, high = rep.lower(alpha), rep.upper(alpha)
    needed = None
    if verdict is Verdict.INCONCLUSIVE:
        toward_limit = rep.point - low if rep.point >= limit else high - rep.point
        needed = _needed(n, toward_limit, abs(rep.point - limit), alpha)
    return Judgement(quantity, direction, limit, rep.point, low, high, alpha, p, against, verdict,
                     method, n, unit, needed, note)


def judge_proportion(
    successes: int, trials: int, *, quantity: str, limit: float, direction: str, alpha: float,
    design_effect: float = 1.0, units: int | None = None, unit: str = "cases", method: str = "wilson",
) -> Judgement:
    """Decide a proportion against a limit with the Wilson score bounds and the score test
    they invert (exact agreement between bound and p-value). ``design_effect`` > 1 shrinks the
    sample to its effective size (clustered cases)."""
    alpha = check_alpha(alpha)
    if trials < 1:
        raise InvalidInputError("a proportion needs at least one case")
    n_eff = trials / max(design_effect, 1.0)
    rate = successes / trials
    low, high = wilson_bounds(rate * n_eff, n_eff, alpha)

    def p_above(value: float) -> float:  # evidence that the proportion exceeds `value`
        if value <= 0.0:
            return 0.0 if rate > 0 or value < 0 else 1.0
        if value >= 1.0:
            return 1.0
        return normal_sf((rate - value) / math.sqrt(value * (1 - value) / n_eff))

    def p_below(value: float) -> float:
        if value >= 1.0:
            return 0.0 if rate < 1 or value > 1 else 1.0
        if value <= 0.0:
            return 1.0
        return normal_sf((value - rate) / math.sqrt(value * (1 - value) / n_eff))

    if direction == AT_LEAST:
        p, against = p_above(limit), p_below(limit)
    else:
        p, against = p_below(limit), p_above(limit)
    verdict = _verdict(p, against, alpha)
    needed = None
    count = units if units is not None else trials
    if verdict is Verdict.INCONCLUSIVE and 0.0 < limit < 1.0 and rate != limit:
        z_a, z_b = z_of(alpha), z_of(1 - SETTLE_POWER)
        spread = z_a * math.sqrt(limit * (1 - limit)) + z_b * math.sqrt(rate * (1 - rate))
        total_eff = (spread / abs(rate - limit)) ** 2
        total = total_eff * count / n_eff
        needed = int(min(math.ceil(total), MAX_SUGGESTED)) if total > count else None
    return Judgement(quantity, direction, limit, rate, low, high, alpha, p, against, verdict, method,
                     count, unit, needed)


def judge_quantile(
    durations: np.ndarray, *, quantile: float, limit: float, alpha: float, quantity: str = "latency",
) -> Judgement:
    """Decide "the ``quantile`` of the durations is at most ``limit``" with the distribution-free
    order-statistic bounds (the number of durations within the limit is binomial)."""
    from scipy.stats import binom

    alpha = check_alpha(alpha)
    x = np.sort(np.asarray(durations, dtype=np.float64))
    n = x.size
    if n < 1 or not np.isfinite(x).all() or (x < 0).any():
        raise InvalidInputError("need at least one duration, each finite and not negative")
    if not 0.0 < quantile < 1.0:
        raise InvalidInputError(f"quantile must be in (0, 1), got {quantile!r}")
    within = int(np.searchsorted(x, limit, side="right"))  # durations <= limit
    # Claim q <= limit: under "q > limit" fewer than a quantile's share lie within the limit.
    p = float(binom.sf(within - 1, n, quantile))
    # Claim q > limit: under "q <= limit" at least a quantile's share lie within the limit.
    against = float(binom.cdf(within, n, quantile))
    hi_rank = int(binom.ppf(1 - alpha, n, quantile)) + 1  # 1-based order statistic
    lo_rank = int(binom.ppf(alpha, n, quantile))
    high = float(x[hi_rank - 1]) if hi_rank <= n else float("inf")
    low = float(x[lo_rank - 1]) if lo_rank >= 1 else 0.0
    verdict = _verdict(p, against, alpha)
    needed = None
    if verdict is Verdict.INCONCLUSIVE:
        needed = _calls_needed(within / n, quantile, alpha, n)
    estimate = float(np.quantile(x, quantile))
    return Judgement(f"{quantity} p{100 * quantile:g}", AT_MOST, float(limit), estimate, low, high, alpha,
                     p, against, verdict, "order statistics", n, "calls", needed)


def _calls_needed(share: float, quantile: float, alpha: float, n: int) -> int | None:
    """Calls at which the exact binomial test would decide if the share of durations within
    the limit stayed as observed (a plain estimate: it ignores the share's own noise)."""
    from scipy.stats import binom

    if share == quantile:
        return None

    def decides(m: int) -> bool:
        k = round(share * m)
        return bool(binom.sf(k - 1, m, quantile) <= alpha or binom.cdf(k, m, quantile) <= alpha)

    high = n + 1
    while not decides(high):
        if high >= MAX_SUGGESTED:
            return MAX_SUGGESTED
        high = min(2 * high, MAX_SUGGESTED)
    low = n
    while high - low > 1:
        mid = (low + high) // 2
        low, high = (low, mid) if decides(mid) else (mid, high)
    return high


def adjust(p_values: Sequence[float], correction: str) -> list[float]:
    """Family-adjusted p-values: a claim survives iff its adjusted p-value <= alpha.

    Holm's step-down controls the family-wise error rate at alpha under any dependence
    between the claims and never rejects less than Bonferroni.
    """
    if correction not in CORRECTIONS:
        raise InvalidInputError(f"correction must be one of {', '.join(CORRECTIONS)}, got {correction!r}")
    m = len(p_values)
    if correction == "none" or m == 0:
        return [float(p) for p in p_values]
    if correction == "bonferroni":
        return [min(1.0, m * float(p)) for p in p_values]
    order = sorted(range(m), key=lambda i: p_values[i])
    adjusted = [0.0] * m
    running = 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (m - rank) * float(p_values[i])))
        adjusted[i] = running
    return adjusted


def adjusted_verdict(judgement: Judgement, adjusted_p: float) -> Judgement:
    """The verdict after family correction: a pass whose adjusted p-value exceeds alpha is
    no longer shown, so it becomes inconclusive; fail and inconclusive stay."""
    if judgement.verdict is Verdict.PASS and adjusted_p > judgement.alpha:
        return replace(judgement, verdict=Verdict.INCONCLUSIVE)
    return judgement
