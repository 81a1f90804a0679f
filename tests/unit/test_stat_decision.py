"""Three verdicts and their evidence: bounds, p-values, sample sizes, family corrections,
drift with power, latency quantiles."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from shopfloor.errors import InvalidInputError
from shopfloor.evaluation.bootstrap import Replicates
from shopfloor.evaluation.decision import (
    AT_LEAST,
    AT_MOST,
    adjust,
    adjusted_verdict,
    direction_of,
    judge,
    judge_proportion,
    judge_quantile,
)
from shopfloor.evaluation.drift import drift_test
from shopfloor.evaluation.stats import wilson_interval
from shopfloor.steps import Verdict


def _rep(point: float, spread: float) -> Replicates:
    rng = np.random.default_rng(0)
    return Replicates.of(point, point + spread * rng.standard_normal(4000), rng.standard_normal(50))


@pytest.mark.parametrize(("point", "direction", "verdict"), [
    (0.90, AT_LEAST, Verdict.PASS), (0.70, AT_LEAST, Verdict.FAIL), (0.81, AT_LEAST, Verdict.INCONCLUSIVE),
    (0.70, AT_MOST, Verdict.PASS), (0.90, AT_MOST, Verdict.FAIL), (0.79, AT_MOST, Verdict.INCONCLUSIVE),
])
def test_three_verdicts(point: float, direction: str, verdict: Verdict) -> None:
    j = judge(_rep(point, 0.02), quantity="m", limit=0.8, direction=direction, alpha=0.05, n=500)
    assert j.verdict is verdict
    assert j.low <= j.estimate <= j.high
    if verdict is Verdict.PASS:
        assert (j.low >= 0.8) if direction == AT_LEAST else (j.high <= 0.8)
    if verdict is Verdict.INCONCLUSIVE:
        assert j.low < 0.8 < j.high and j.needed is not None and j.needed > 500
        assert f"about {j.needed - 500:,} more cases ({j.needed:,} in all)" in j.message()


def test_sample_size_estimate_settles_it() -> None:
    """Quadrupling the cases halves the spread: the suggested size should then decide."""
    j = judge(_rep(0.82, 0.02), quantity="m", limit=0.8, direction=AT_LEAST, alpha=0.05, n=500)
    shrink = np.sqrt(500 / j.needed)
    later = judge(_rep(0.82, 0.02 * shrink), quantity="m", limit=0.8, direction=AT_LEAST, alpha=0.05,
                  n=j.needed)
    assert later.verdict is Verdict.PASS


def test_undefined_and_degenerate_are_inconclusive() -> None:
    nan = float("nan")
    undefined = judge(Replicates.of(nan, np.full(10, nan), np.zeros(3)), quantity="pr_auc", limit=0.5,
                      direction=AT_LEAST, alpha=0.05, n=30)
    assert undefined.verdict is Verdict.INCONCLUSIVE and "cannot be bounded" in undefined.message()
    flat = judge(Replicates.of(1.0, np.ones(100), np.ones(5)), quantity="roc_auc", limit=0.9,
                 direction=AT_LEAST, alpha=0.05, n=30)
    assert flat.verdict is Verdict.INCONCLUSIVE and "same value" in flat.message()
    same_models = judge(Replicates.of(0.0, np.zeros(100), np.zeros(5)), quantity="difference", limit=-0.01,
                        direction=AT_LEAST, alpha=0.05, n=30, bounded=False)
    assert same_models.verdict is Verdict.PASS and same_models.low == same_models.high == 0.0


def test_proportion_bounds_are_wilson_and_match_the_p_value() -> None:
    j = judge_proportion(992, 1000, quantity="agreement", limit=0.985, direction=AT_LEAST, alpha=0.025)
    w = wilson_interval(992, 1000, 0.95)
    assert (j.low, j.high) == pytest.approx((w.ci_low, w.ci_high))
    assert j.p_value == pytest.approx(stats.norm.sf((0.992 - 0.985) / np.sqrt(0.985 * 0.015 / 1000)))
    for alpha in (0.01, 0.025, 0.05, 0.1):
        again = judge_proportion(992, 1000, quantity="a", limit=0.985, direction=AT_LEAST, alpha=alpha)
        assert (again.verdict is Verdict.PASS) == (again.low >= 0.985)
    clustered = judge_proportion(992, 1000, quantity="a", limit=0.985, direction=AT_LEAST, alpha=0.025,
                                 design_effect=4.0, units=20, unit="groups")
    assert clustered.low < j.low and clustered.p_value > j.p_value and clustered.unit == "groups"
    perfect = judge_proportion(30, 30, quantity="a", limit=0.99, direction=AT_LEAST, alpha=0.05)
    assert perfect.verdict is Verdict.INCONCLUSIVE and perfect.needed is not None


def test_latency_quantile_is_exact_order_statistics() -> None:
    durations = np.arange(1, 1001) / 1000.0  # 1 ms .. 1 s
    j = judge_quantile(durations, quantile=0.9, limit=0.95, alpha=0.05)
    within = 950
    assert j.p_value == pytest.approx(stats.binom.sf(within - 1, 1000, 0.9))
    assert j.verdict is Verdict.PASS and j.high <= 0.95
    upper_rank = int(stats.binom.ppf(0.95, 1000, 0.9)) + 1
    assert j.high == durations[upper_rank - 1]
    assert judge_quantile(durations, quantile=0.9, limit=0.5, alpha=0.05).verdict is Verdict.FAIL
    few = judge_quantile(np.full(200, 0.5), quantile=0.99, limit=0.6, alpha=0.05)  # 0.99^200 > 0.05
    assert few.verdict is Verdict.INCONCLUSIVE and few.needed == 299  # 0.99^299 <= 0.05 < 0.99^298
    with pytest.raises(InvalidInputError, match="not negative"):
        judge_quantile(np.array([-1.0]), quantile=0.5, limit=1.0, alpha=0.05)


def test_holm_and_bonferroni_adjustments() -> None:
    p = [0.01, 0.04, 0.03, 0.005]
    assert adjust(p, "bonferroni") == pytest.approx([0.04, 0.16, 0.12, 0.02])
    # Holm: sorted 0.005, 0.01, 0.03, 0.04 -> 0.02, 0.03, 0.06, 0.06 (monotone)
    assert adjust(p, "holm") == pytest.approx([0.03, 0.06, 0.06, 0.02])
    assert adjust(p, "none") == p
    with pytest.raises(InvalidInputError, match="correction"):
        adjust(p, "fdr")
    j = judge(_rep(0.82, 0.01), quantity="m", limit=0.8, direction=AT_LEAST, alpha=0.05, n=500)
    assert j.verdict is Verdict.PASS
    assert adjusted_verdict(j, j.p_value).verdict is Verdict.PASS
    assert adjusted_verdict(j, 0.2).verdict is Verdict.INCONCLUSIVE


def test_direction_needs_exactly_one_limit() -> None:
    assert direction_of(0.8, None) == (AT_LEAST, 0.8)
    assert direction_of(None, 0.1) == (AT_MOST, 0.1)
    for bad in ((None, None), (0.8, 0.1), (float("nan"), None), ("0.8", None)):
        with pytest.raises(InvalidInputError):
            direction_of(*bad)  # type: ignore[arg-type]


def test_drift_fails_when_detected_and_reports_power() -> None:
    rng = np.random.default_rng(0)
    reference = rng.normal(size=2000)
    same = drift_test(reference, rng.normal(size=2000), seed=1)
    assert same.verdict is Verdict.PASS and same.power > 0.8 and same.p_value > 0.05
    shifted = drift_test(reference, rng.normal(0.3, 1, 2000), seed=1)
    assert shifted.verdict is Verdict.FAIL and "drift detected" in shifted.message()
    small = drift_test(reference[:40], rng.normal(size=40), seed=1)
    assert small.verdict is Verdict.INCONCLUSIVE and small.power < 0.8
    assert small.needed is not None and small.needed > 40 and "power" in small.message()


def test_drift_power_is_close_to_simulated_power() -> None:
    """The reported power predicts how often the KS test finds a real shift of that size."""
    rng = np.random.default_rng(4)
    reference = rng.normal(size=300)
    power = drift_test(reference, rng.normal(size=300), detect=0.25, seed=2).power
    hits = sum(stats.ks_2samp(rng.normal(size=300), rng.normal(0.25, 1, 300), method="asymp").pvalue <= 0.05
               for _ in range(300))
    assert power == pytest.approx(hits / 300, abs=0.08)


def test_categorical_drift() -> None:
    rng = np.random.default_rng(0)
    reference = rng.choice(["L", "M", "H"], 3000, p=[0.6, 0.3, 0.1])
    assert drift_test(reference, rng.choice(["L", "M", "H"], 3000, p=[0.6, 0.3, 0.1])).verdict is Verdict.PASS
    moved = drift_test(reference, rng.choice(["L", "M", "H"], 3000, p=[0.4, 0.4, 0.2]))
    assert moved.verdict is Verdict.FAIL and moved.kind == "categorical"
    few = drift_test(reference[:50], rng.choice(["L", "M", "H"], 50, p=[0.6, 0.3, 0.1]))
    assert few.verdict is Verdict.INCONCLUSIVE and few.needed is not None
    with pytest.raises(InvalidInputError, match="kind"):
        drift_test(reference, reference, kind="text")
