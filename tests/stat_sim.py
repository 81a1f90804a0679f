"""Simulations behind the statistical tests and ``benchmarks/bench_coverage.py``.

Binormal scores (non-failures N(0, 1), failures N(separation, 1)) have population metrics that
can be computed exactly, so an interval's coverage -- how often it holds the true value over
repeated samples -- can be measured. The sample mimics the pipeline's test split: ``n`` rows,
stratified (a fixed number of failures) unless ``stratified=False``.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np
from scipy import integrate, optimize, stats

from shopfloor.evaluation import metrics


@dataclass(frozen=True)
class Binormal:
    """A population of scores with known metrics."""

    separation: float
    prevalence: float = 0.034
    target_precision: float = 0.8

    def _tpr(self, t: float) -> float:
        return float(stats.norm.sf(t - self.separation))

    def _precision(self, t: float) -> float:
        p = self.prevalence
        tp, fp = p * self._tpr(t), (1 - p) * float(stats.norm.sf(t))
        return tp / (tp + fp)

    @cached_property
    def threshold(self) -> float:
        """The population threshold at which precision reaches the target (F1 is taken at it)."""
        return float(optimize.brentq(lambda t: self._precision(t) - self.target_precision, -10, 20))

    def value(self, metric: str) -> float:
        """The population value of a gate metric (F1 at :attr:`threshold`)."""
        if metric == "pr_auc":
            return float(integrate.quad(lambda x: self._precision(x) * stats.norm.pdf(x - self.separation),
                                        -12, 25, limit=400)[0])
        if metric == "roc_auc":
            return float(stats.norm.cdf(self.separation / np.sqrt(2)))
        p, t = self.prevalence, self.threshold
        tpr, fpr = self._tpr(t), float(stats.norm.sf(t))
        if metric == "recall_at_precision":
            # precision rises with the threshold (equal variances): the most recall at the
            # target precision is at the threshold where it is reached
            return tpr
        return 2 * p * tpr / (p * tpr + (1 - p) * fpr + p)

    @cached_property
    def truth(self) -> dict[str, float]:
        return {m: self.value(m) for m in metrics.METRICS}

    def sample(
        self, rng: np.random.Generator, n: int, *, stratified: bool = True,
    ) -> tuple[np.ndarray, np.ndarray]:
        if stratified:
            failures = round(n * self.prevalence)
            y = np.r_[np.ones(failures, dtype=int), np.zeros(n - failures, dtype=int)]
        else:
            y = (rng.random(n) < self.prevalence).astype(int)
        return y, rng.normal(0.0, 1.0, n) + self.separation * y


def shifted_for_difference(reference: Binormal, difference: float, metric: str = "pr_auc") -> Binormal:
    """A population whose ``metric`` is the reference's plus ``difference`` (same prevalence)."""
    target = reference.value(metric) + difference

    def gap(separation: float) -> float:
        return Binormal(separation, reference.prevalence, reference.target_precision).value(metric) - target

    return Binormal(float(optimize.brentq(gap, 0.05, 8.0)), reference.prevalence, reference.target_precision)


@dataclass
class Coverage:
    """How often the two-sided intervals held the truth, and on which side they missed."""

    reps: int = 0
    covered: int = 0
    truth_below: int = 0  # the lower bound was above the truth (a gate would pass too easily)
    truth_above: int = 0

    def add(self, low: float, high: float, truth: float) -> None:
        self.reps += 1
        if truth < low:
            self.truth_below += 1
        elif truth > high:
            self.truth_above += 1
        else:
            self.covered += 1

    @property
    def rate(self) -> float:
        return self.covered / self.reps if self.reps else float("nan")


def coverage(
    population: Binormal, *, reps: int, n: int = 2000, resamples: int = 1000, seed: int = 0,
    confidence: float = 0.95, stratified: bool = True,
) -> dict[str, Coverage]:
    """Coverage of the gates' intervals (the evaluate step's code path) for every gate metric."""
    rng = np.random.default_rng(seed)
    truth = population.truth
    found = {m: Coverage() for m in metrics.METRICS}
    for rep in range(reps):
        y, scores = population.sample(rng, n, stratified=stratified)
        reps_ = metrics.models_replicates(
            y, {"m": (scores, population.threshold)}, target_precision=population.target_precision,
            resamples=resamples, seed=seed * 100_003 + rep, stratify=stratified)
        for m in metrics.METRICS:
            est = metrics.estimate(reps_[f"m/{m}"], m, confidence)
            found[m].add(est.ci_low, est.ci_high, truth[m])
    return found


def paired_sample(
    rng: np.random.Generator, reference: Binormal, candidate: Binormal, n: int, correlation: float = 0.7,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Labels and two models' scores on the same rows: each marginally binormal as its
    population says, their noise correlated (two models of the same machines)."""
    y, reference_scores = reference.sample(rng, n)
    noise = reference_scores - reference.separation * y
    own = rng.normal(0.0, 1.0, n)
    candidate_scores = candidate.separation * y + correlation * noise + np.sqrt(1 - correlation**2) * own
    return y, candidate_scores, reference_scores


def non_inferiority_false_passes(
    *, reps: int, margin: float = 0.1, alpha: float = 0.025, n: int = 2000, resamples: int = 1000,
    seed: int = 0, reference: Binormal = Binormal(2.66),
) -> int:
    """How often the non-inferiority gate passes a candidate exactly ``margin`` worse on
    PR-AUC than the reference (the null at its boundary): at most ``alpha`` of ``reps``."""
    from shopfloor.evaluation.decision import AT_LEAST, judge

    candidate = shifted_for_difference(reference, -margin)
    rng = np.random.default_rng(seed)
    passes = 0
    for rep in range(reps):
        y, cand, ref = paired_sample(rng, reference, candidate, n)
        reps_ = metrics.models_replicates(
            y, {"c": (cand, 0.5), "r": (ref, 0.5)}, target_precision=0.8, resamples=resamples,
            seed=seed * 100_003 + rep, metrics=("pr_auc",), differences={"d": ("c", "r", "pr_auc")})
        judged = judge(reps_["difference/d"], quantity="d", limit=-margin, direction=AT_LEAST, alpha=alpha,
                       n=n)
        passes += judged.passed
    return passes


def holm_family_false_passes(
    *, families: int, size: int = 4, alpha: float = 0.05, n: int = 2000, resamples: int = 1000,
    seed: int = 0, population: Binormal = Binormal(2.66), corrections: tuple[str, ...] = ("holm", "none"),
) -> dict[str, int]:
    """Families of ``size`` assertions "PR-AUC >= its true value" (every null true, at its
    boundary) on independent samples: per correction, in how many a pass survived."""
    from shopfloor.evaluation.decision import AT_LEAST, adjust, judge

    truth = population.value("pr_auc")
    rng = np.random.default_rng(seed)
    false = dict.fromkeys(corrections, 0)
    for family in range(families):
        p_values = []
        for member in range(size):
            y, scores = population.sample(rng, n)
            rep = metrics.models_replicates(y, {"m": (scores, 0.5)}, target_precision=0.8,
                                            resamples=resamples,
                                            seed=seed * 100_003 + family * size + member,
                                            metrics=("pr_auc",))["m/pr_auc"]
            p_values.append(judge(rep, quantity="pr_auc", limit=truth, direction=AT_LEAST, alpha=alpha,
                                  n=n).p_value)
        for correction in corrections:
            false[correction] += any(p <= alpha for p in adjust(p_values, correction))
    return false
