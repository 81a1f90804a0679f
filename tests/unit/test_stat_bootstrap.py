"""The bootstrap engine and its BCa intervals: agree with scipy, with themselves (bound vs
p-value), are deterministic, bounded in size, and paired across statistics."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from scipy import stats

import shopfloor.evaluation.bootstrap as engine
from shopfloor.errors import InvalidInputError
from shopfloor.evaluation.bootstrap import Cells, Design, Replicates, Statistic, bootstrap


def _mean_statistic(values: np.ndarray) -> Statistic:
    cells = Cells(np.zeros(len(values), dtype=np.int64), 1, (values,))
    return Statistic.of(cells, lambda s: s[:, 1, 0] / s[:, 0, 0])


def test_bca_of_a_mean_agrees_with_scipy() -> None:
    """Same method, independent implementations: the bounds agree up to resampling noise."""
    x = np.random.default_rng(2).exponential(1.0, 150)  # skewed: BCa differs from percentile
    ours = bootstrap({"m": _mean_statistic(x)}, Design.of(len(x)), resamples=20_000, seed=1)["m"]
    theirs = stats.bootstrap((x,), np.mean, n_resamples=20_000, method="BCa", confidence_level=0.95,
                             random_state=np.random.default_rng(1)).confidence_interval
    width = theirs.high - theirs.low
    assert ours.lower(0.025) == pytest.approx(theirs.low, abs=0.03 * width)
    assert ours.upper(0.025) == pytest.approx(theirs.high, abs=0.03 * width)
    percentile = np.quantile(ours.samples, [0.025, 0.975])
    assert ours.lower(0.025) > percentile[0] and ours.upper(0.025) > percentile[1]  # shifted toward the skew


@pytest.mark.parametrize(("widen", "expand"), [(1.0, 0), (1.7, 0), (1.0, 12), (1.4, 40)])
def test_p_values_and_bounds_never_disagree(widen: float, expand: int) -> None:
    rng = np.random.default_rng(5)
    for trial in range(40):
        samples = rng.gamma(2.0, 1.0, 500) + (rng.integers(0, 3, 500) if trial % 2 else 0.0)  # ties too
        point = float(np.median(samples) + rng.normal(0, 0.3))
        rep = Replicates.of(point, samples, rng.gamma(2.0, 1.0, 60)).widened(widen).expanded(expand)
        if trial % 3 == 0:
            rep = rep.percentile()
        for limit in np.linspace(samples.min() - 1, samples.max() + 1, 25):
            for alpha in (0.01, 0.025, 0.05, 0.2):
                assert (rep.p_at_least(limit) <= alpha) == (rep.lower(alpha) >= limit - 1e-9), (limit, alpha)
                assert (rep.p_at_most(limit) <= alpha) == (rep.upper(alpha) <= limit + 1e-9), (limit, alpha)
                assert (rep.p_below(limit) <= alpha) <= (rep.upper(alpha) < limit + 1e-9)
                assert (rep.p_above(limit) <= alpha) <= (rep.lower(alpha) > limit - 1e-9)


def test_expansion_widens_small_samples_only() -> None:
    rng = np.random.default_rng(0)
    rep = Replicates.of(0.0, rng.normal(size=5000), rng.normal(size=50))
    plain = rep.upper(0.025) - rep.lower(0.025)
    assert rep.expanded(10).upper(0.025) - rep.expanded(10).lower(0.025) > 1.1 * plain
    large = rep.expanded(10_000)
    assert large.upper(0.025) - large.lower(0.025) == pytest.approx(plain, rel=0.01)


def test_p_value_falls_as_the_limit_falls() -> None:
    rng = np.random.default_rng(0)
    rep = Replicates.of(1.0, rng.normal(1.0, 0.1, 2000), rng.normal(size=50))
    limits = np.linspace(0.5, 1.5, 101)
    p = [rep.p_at_least(v) for v in limits]
    assert all(a <= b for a, b in itertools.pairwise(p))
    assert p[0] == 0.0 and p[-1] == 1.0


def test_same_seed_same_resamples_other_seed_others() -> None:
    x = np.random.default_rng(0).normal(size=300)
    one = bootstrap({"m": _mean_statistic(x)}, Design.of(300), resamples=500, seed=7)["m"]
    again = bootstrap({"m": _mean_statistic(x)}, Design.of(300), resamples=500, seed=7)["m"]
    other = bootstrap({"m": _mean_statistic(x)}, Design.of(300), resamples=500, seed=8)["m"]
    assert np.array_equal(one.samples, again.samples) and not np.array_equal(one.samples, other.samples)


def test_chunks_do_not_change_the_distribution(monkeypatch: pytest.MonkeyPatch) -> None:
    x = np.random.default_rng(0).normal(size=400)
    whole = bootstrap({"m": _mean_statistic(x)}, Design.of(400), resamples=4000, seed=1)["m"]
    monkeypatch.setattr(engine, "CHUNK_CELLS", 1000)  # 2 resamples per chunk
    chunked = bootstrap({"m": _mean_statistic(x)}, Design.of(400), resamples=4000, seed=1)["m"]
    assert chunked.standard_error == pytest.approx(whole.standard_error, rel=0.08)
    assert chunked.acceleration == pytest.approx(whole.acceleration, abs=1e-12)


def test_jackknife_subset_estimates_the_acceleration(monkeypatch: pytest.MonkeyPatch) -> None:
    x = np.random.default_rng(3).lognormal(0, 1, 3000)
    full = bootstrap({"m": _mean_statistic(x)}, Design.of(3000), resamples=200, seed=0)["m"]
    monkeypatch.setattr(engine, "MAX_JACKKNIFE_UNITS", 1000)
    subset = bootstrap({"m": _mean_statistic(x)}, Design.of(3000), resamples=200, seed=0)["m"]
    assert full.acceleration > 0.01
    assert subset.acceleration == pytest.approx(full.acceleration, rel=0.35)


def test_undefined_resamples_are_counted_not_hidden() -> None:
    y = np.array([1] + [0] * 49)
    cells = Cells(y.astype(np.int64), 2)
    share = Statistic.of(cells, lambda s: np.where(s[:, 0, 1] > 0, s[:, 0, 1] / s[:, 0, 1], np.nan))
    rep = bootstrap({"s": share}, Design.of(50), resamples=1000, seed=0)["s"]
    assert 250 < rep.undefined < 450  # (49/50)^50 of resamples hold no failure
    assert rep.undefined + rep.samples.size == 1000


@pytest.mark.parametrize(("call", "message"), [
    (lambda x: bootstrap({"m": _mean_statistic(x)}, Design.of(10), resamples=0, seed=0), "resamples"),
    (lambda x: bootstrap({"m": _mean_statistic(x)}, Design.of(10), resamples=10**6, seed=0), "resamples"),
    (lambda x: Design.of(10, strata=np.zeros(10), groups=np.zeros(10)), "not both"),
    (lambda x: Design.of(10, groups=np.zeros(9)), "one label per row"),
    (lambda x: Design.of(engine.MAX_ROWS + 1), "exceed"),
    (lambda x: bootstrap({"m": _mean_statistic(x)}, Design.of(11), resamples=10, seed=0), "design has 11"),
])
def test_bad_requests_are_refused(call, message: str) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(InvalidInputError, match=message):
        call(np.arange(10.0))
