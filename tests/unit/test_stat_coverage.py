"""The statistics are honest, checked by simulation on populations with known values (small
runs: benchmarks/bench_coverage.py runs the same code with >= 1,000 repetitions).

Acceptance is a one-sided binomial test: a check fails when the simulation gives significant
evidence (p < 0.005) against its claim. The seeds are fixed, so the result is the same on
every run; with a few hundred repetitions these checks catch gross errors (an interval whose
lower bound misses three times as often as it should, uncorrected p-values in a family), the
benchmark pins the figures down.
"""

from __future__ import annotations

from scipy import stats

from tests.stat_sim import (
    Binormal,
    coverage,
    holm_family_false_passes,
    non_inferiority_false_passes,
)

EVIDENCE = 0.005


def _too_many(events: int, trials: int, rate: float) -> bool:
    """Significantly more than ``rate`` of ``trials``?"""
    return bool(stats.binom.sf(events - 1, trials, rate) < EVIDENCE)


def _too_few(events: int, trials: int, rate: float) -> bool:
    return bool(stats.binom.cdf(events, trials, rate) < EVIDENCE)


def test_gate_intervals_cover_at_the_gates_sample_size() -> None:
    """n = 2,000, 3.4 % failures, ROC-AUC 0.97 (the pipeline's model): 93-97 % asked."""
    reps = 200
    found = coverage(Binormal(2.66), reps=reps, resamples=400, seed=3)
    for metric, c in found.items():
        assert not _too_few(c.covered, reps, 0.93), (metric, c)
        assert not _too_many(c.covered, reps, 0.97), (metric, c)
        # the side a gate relies on: the truth is below the lower bound at most 2.5 % of the time
        assert not _too_many(c.truth_below, reps, 0.025), (metric, c)


def test_non_inferiority_type_one_error_at_the_margin() -> None:
    reps, alpha = 120, 0.05
    passes = non_inferiority_false_passes(reps=reps, alpha=alpha, resamples=400, seed=5)
    assert not _too_many(passes, reps, alpha), passes


def test_holm_keeps_the_family_wise_false_pass_rate() -> None:
    families, alpha = 80, 0.05
    false = holm_family_false_passes(families=families, size=4, alpha=alpha, resamples=400, seed=9)
    assert not _too_many(false["holm"], families, alpha), false
    assert _too_many(false["none"], families, alpha), false  # the check can tell: uncorrected fails
