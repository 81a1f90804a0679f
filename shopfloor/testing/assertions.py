"""Assertions whose verdict is a confidence statement, not a point value.

Each assertion computes an interval (or a test with its power), decides **pass**, **fail** or
**inconclusive** (see :mod:`shopfloor.evaluation.decision`), records the result for the run's
family correction and the summary, and then: returns the result on a pass, raises
:class:`StatisticalAssertionError` on a fail, and on an inconclusive verdict does what
``--stat-inconclusive`` says (fail the test, xfail it, or warn) -- never a silent pass.

numpy and scipy are imported when an assertion runs, not when this module is imported: the
pytest plugin loads with every pytest session, also where they are not installed.
"""

from __future__ import annotations

import math
import time
import warnings
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from shopfloor.errors import InvalidInputError
from shopfloor.testing import _state

if TYPE_CHECKING:
    from shopfloor.evaluation.decision import Judgement
    from shopfloor.evaluation.drift import DriftResult

#: Resamples per bootstrap assertion unless the call says otherwise.
DEFAULT_RESAMPLES = 2000
#: Most calls ``assert_latency`` makes (and most durations it accepts).
MAX_CALLS = 1_000_000


class StatisticalAssertionError(AssertionError):
    """A statistical assertion failed, or was inconclusive where that counts as a failure."""


class InconclusiveWarning(UserWarning):
    """A statistical assertion could not decide (``--stat-inconclusive=warn``)."""


def _needs_numpy() -> None:
    try:
        import numpy  # noqa: F401
        import scipy  # noqa: F401
    except ImportError:  # pragma: no cover - depends on the installation
        raise InvalidInputError(
            "shopfloor.testing needs numpy and scipy: pip install 'shopfloor[testing]'") from None


def _conclude(assertion: str, result: Any, *, index: int, in_family: bool = True) -> Any:
    """Record ``result`` for the run, then pass, raise or handle an inconclusive verdict."""
    __tracebackhide__ = True
    from shopfloor.steps import Verdict

    run = _state.current()
    record = _state.Record(run.nodeid, index, assertion, result, in_family)
    run.add(record)
    if run.properties is not None:
        run.properties.extend(_properties(record))
    message = result.message()
    if result.verdict is Verdict.PASS:
        return result
    if result.verdict is Verdict.FAIL:
        raise StatisticalAssertionError(message)
    mode = run.settings.inconclusive
    if mode == "warn":
        warnings.warn(InconclusiveWarning(message), stacklevel=3)
        return result
    if mode == "xfail" and run.xfail is not None:
        run.xfail(message)
    raise StatisticalAssertionError(message)


def _properties(record: _state.Record) -> list[tuple[str, object]]:
    """JUnit XML properties of one assertion (name-spaced by its index in the test)."""
    r = record.result
    prefix = f"stat.{record.index}"
    props: list[tuple[str, object]] = [
        (f"{prefix}.assertion", f"{record.assertion}: {r.claim}"),
        (f"{prefix}.verdict", r.verdict.value),
        (f"{prefix}.p_value", f"{r.p_value:.6g}"),
        (f"{prefix}.method", r.method),
        (f"{prefix}.n", r.n),
    ]
    if hasattr(r, "power"):
        props.append((f"{prefix}.power", f"{r.power:.4g}"))
        props.append((f"{prefix}.statistic", f"{r.statistic:.6g}"))
    else:
        props += [(f"{prefix}.estimate", f"{r.estimate:.6g}"), (f"{prefix}.ci_low", f"{r.low:.6g}"),
                  (f"{prefix}.ci_high", f"{r.high:.6g}"), (f"{prefix}.limit", f"{r.limit:.6g}")]
    return props


def _begin() -> tuple[_state.Run, int, int]:
    _needs_numpy()
    run = _state.current()
    index = run.next_index()
    return run, index, run.seed_for(index)


def _resamples(value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 100:
        raise InvalidInputError(f"resamples must be an integer of at least 100, got {value!r}")
    return value


def _strata(y: Any, stratify: bool, groups: object) -> Any:
    if stratify and groups is not None:
        raise InvalidInputError("stratify=True and groups= cannot be combined: clusters are resampled whole")
    return y if stratify else None


def assert_metric(
    y_true: Sequence[float] | Any,
    y_pred: Sequence[float] | Any,
    *,
    metric: str,
    at_least: float | None = None,
    at_most: float | None = None,
    groups: Sequence[Any] | Any | None = None,
    threshold: float = 0.5,
    precision: float = 0.8,
    bins: int = 10,
    stratify: bool = False,
    resamples: int = DEFAULT_RESAMPLES,
) -> Judgement:
    """Assert a metric is at least (or at most) a limit, judged on its confidence bound.

    ``metric``: ``pr_auc``, ``roc_auc``, ``recall_at_precision`` (at ``precision``), ``f1``,
    ``accuracy``, ``precision``, ``recall`` (at ``threshold``), ``brier``,
    ``calibration_error`` (``bins`` equal-width bins) or ``mae`` (regression). ``groups``:
    one cluster id per case (e.g. the machine): whole clusters are resampled. ``stratify``:
    resample within each class, for a test set that was split stratified.
    """
    __tracebackhide__ = True
    return _metric("assert_metric", y_true, y_pred, metric=metric, at_least=at_least, at_most=at_most,
                   groups=groups, threshold=threshold, precision=precision, bins=bins, stratify=stratify,
                   resamples=resamples)


def _metric(
    assertion: str, y_true: Any, y_pred: Any, *, metric: str, at_least: float | None, at_most: float | None,
    groups: Any, threshold: float, precision: float, bins: int, stratify: bool, resamples: int,
) -> Judgement:
    __tracebackhide__ = True
    run, index, seed = _begin()
    from shopfloor.evaluation import metrics
    from shopfloor.evaluation.decision import direction_of, judge

    direction, limit = direction_of(at_least, at_most)
    metrics.check_metric(metric)
    scored = metrics.Scored.of(y_true, y_pred, threshold=threshold, target_precision=precision, bins=bins,
                               regression=metric in metrics.REGRESSION_METRICS)
    n = len(scored.y)
    rep = metrics.replicate({metric: scored.statistic(metric)}, n, resamples=_resamples(resamples), seed=seed,
                            strata=_strata(scored.y, stratify, groups), groups=groups)[metric]
    rep = metrics.calibrated(rep, metric, int(scored.y.sum()))
    units, unit = _units(n, groups)
    judgement = judge(rep, quantity=metric, limit=limit, direction=direction, alpha=run.settings.alpha,
                      n=units, unit=unit, method=metrics.interval_method(metric))
    return _conclude(assertion, judgement, index=index)


def _units(n: int, groups: object) -> tuple[int, str]:
    if groups is None:
        return n, "cases"
    import numpy as np

    return int(np.unique(np.asarray(groups)).size), "groups"


def assert_non_inferior(
    y_true: Sequence[float] | Any,
    candidate: Sequence[float] | Any,
    reference: Sequence[float] | Any,
    *,
    metric: str = "pr_auc",
    margin: float,
    groups: Sequence[Any] | Any | None = None,
    threshold: float = 0.5,
    reference_threshold: float | None = None,
    precision: float = 0.8,
    bins: int = 10,
    stratify: bool = False,
    resamples: int = DEFAULT_RESAMPLES,
) -> Judgement:
    """Assert the candidate is at most ``margin`` worse than the reference on the same cases
    (paired bootstrap of candidate - reference; "worse" follows the metric's direction)."""
    __tracebackhide__ = True
    run, index, seed = _begin()
    from shopfloor.evaluation import metrics
    from shopfloor.evaluation.decision import AT_LEAST, AT_MOST, judge

    metrics.check_metric(metric)
    if isinstance(margin, bool) or not isinstance(margin, int | float) or not 0 <= margin < math.inf:
        raise InvalidInputError(f"margin must be a number >= 0, got {margin!r}")
    regression = metric in metrics.REGRESSION_METRICS
    cand = metrics.Scored.of(y_true, candidate, threshold=threshold, target_precision=precision, bins=bins,
                             regression=regression)
    ref_threshold = threshold if reference_threshold is None else reference_threshold
    ref = metrics.Scored.of(y_true, reference, threshold=ref_threshold, target_precision=precision, bins=bins,
                            regression=regression)
    n = len(cand.y)
    if len(ref.y) != n:
        raise InvalidInputError(f"candidate has {n} scores but reference has {len(ref.y)}")
    difference = cand.statistic(metric) - ref.statistic(metric)
    rep = metrics.replicate({"d": difference}, n, resamples=_resamples(resamples), seed=seed,
                            strata=_strata(cand.y, stratify, groups), groups=groups)["d"]
    kind = metric if metric in metrics.MEAN_METRICS else None  # a difference of means is not expanded
    rep = metrics.calibrated(rep, kind, int(cand.y.sum()) if kind is None else n)
    higher = metrics.HIGHER_IS_BETTER[metric]
    units, unit = _units(n, groups)
    judgement = judge(rep, quantity=f"{metric} difference (candidate - reference)",
                      limit=-float(margin) if higher else float(margin),
                      direction=AT_LEAST if higher else AT_MOST,
                      alpha=run.settings.alpha, n=units, unit=unit, method=metrics.interval_method(kind),
                      bounded=False)
    return _conclude("assert_non_inferior", judgement, index=index)


def assert_agreement(
    decisions_a: Sequence[Any] | Any,
    decisions_b: Sequence[Any] | Any,
    *,
    at_least: float,
    groups: Sequence[Any] | Any | None = None,
) -> Judgement:
    """Assert two models' decisions agree on at least ``at_least`` of the cases (Wilson
    score bound; with ``groups``, on the clusters' effective sample size)."""
    __tracebackhide__ = True
    run, index, _ = _begin()
    import numpy as np

    from shopfloor.evaluation.decision import AT_LEAST, direction_of, judge_proportion

    _, limit = direction_of(at_least, None)
    a, b = np.asarray(decisions_a), np.asarray(decisions_b)
    if a.size > MAX_CALLS * 10 or b.size > MAX_CALLS * 10:
        raise InvalidInputError(f"at most {MAX_CALLS * 10} decisions per side, got {a.size} and {b.size}")
    if a.ndim != 1 or a.shape != b.shape or a.size == 0:
        raise InvalidInputError(
            f"need two equally long, non-empty lists of decisions; got {a.shape}, {b.shape}")
    agree = (a == b).astype(np.float64)
    effect, units, unit, method = 1.0, a.size, "cases", "wilson"
    if groups is not None:
        effect, units = _design_effect(agree, groups)
        unit, method = "groups", "wilson, clustered (design effect)"
    judgement = judge_proportion(int(agree.sum()), a.size, quantity="agreement", limit=limit,
                                 direction=AT_LEAST,
                                 alpha=run.settings.alpha, design_effect=effect, units=units, unit=unit,
                                 method=method)
    return _conclude("assert_agreement", judgement, index=index)


def _design_effect(agree: Any, groups: object) -> tuple[float, int]:
    """Kish's design effect of a clustered proportion (cluster-robust variance over the
    binomial one), and the number of clusters. Without any disagreement the clustering cannot
    be estimated, so the worst case is assumed: every cluster counts as one case."""
    import numpy as np

    g = np.asarray(groups)
    if g.ndim != 1 or g.size != agree.size:
        raise InvalidInputError(f"groups must be one label per case ({agree.size}), got shape {g.shape}")
    _, codes = np.unique(g, return_inverse=True)
    clusters = int(codes.max()) + 1
    n = agree.size
    rate = agree.mean()
    if clusters < 2 or rate in (0.0, 1.0):
        return n / clusters, clusters
    sizes = np.bincount(codes).astype(np.float64)
    hits = np.bincount(codes, weights=agree)
    robust = np.sum((hits - rate * sizes) ** 2) / n**2 * clusters / (clusters - 1)
    binomial = rate * (1 - rate) / n
    return float(min(max(robust / binomial, 1.0), n / clusters)), clusters


def assert_calibrated(
    y_true: Sequence[float] | Any,
    y_prob: Sequence[float] | Any,
    *,
    at_most: float,
    bins: int = 10,
    groups: Sequence[Any] | Any | None = None,
    stratify: bool = False,
    resamples: int = DEFAULT_RESAMPLES,
) -> Judgement:
    """Assert the expected calibration error (``bins`` equal-width bins) is at most a limit."""
    __tracebackhide__ = True
    return _metric("assert_calibrated", y_true, y_prob, metric="calibration_error", at_least=None,
                   at_most=at_most, groups=groups, threshold=0.5, precision=0.8, bins=bins, stratify=stratify,
                   resamples=resamples)


def assert_no_drift(
    reference: Sequence[Any] | Any,
    current: Sequence[Any] | Any,
    *,
    kind: str = "auto",
    detect: float | None = None,
    power: float = 0.8,
) -> DriftResult:
    """Assert no drift between two samples of a feature, and that the test could have seen
    one: fails when drift is detected, is inconclusive when it is not but the power to detect
    ``detect`` (reference SDs of shift, or Cohen's w for categories) is below ``power``."""
    __tracebackhide__ = True
    run, index, seed = _begin()
    from shopfloor.evaluation.drift import drift_test

    result = drift_test(reference, current, kind=kind, detect=detect, power=power, alpha=run.settings.alpha,
                        seed=seed)
    return _conclude("assert_no_drift", result, index=index, in_family=False)


def assert_latency(
    fn: Callable[[], object] | Sequence[float] | Any,
    *,
    at_most: float,
    quantile: float = 0.99,
    calls: int = 1000,
    warmup: int = 10,
    clock: Callable[[], float] = time.perf_counter,
) -> Judgement:
    """Assert a latency quantile (p99 by default) is at most ``at_most`` seconds, judged on
    its distribution-free upper bound. ``fn`` is called ``warmup`` times untimed, then
    ``calls`` times timed with ``clock``; or pass measured durations (seconds) instead."""
    __tracebackhide__ = True
    run, index, _ = _begin()
    import numpy as np

    from shopfloor.evaluation.decision import direction_of, judge_quantile

    _, limit = direction_of(None, at_most)
    if callable(fn):
        for name, value, low in (("calls", calls, 1), ("warmup", warmup, 0)):
            if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= MAX_CALLS:
                raise InvalidInputError(f"{name} must be an integer in [{low}, {MAX_CALLS}], got {value!r}")
        for _ in range(warmup):
            fn()
        durations = np.empty(calls)
        for i in range(calls):
            start = clock()
            fn()
            durations[i] = clock() - start
    else:
        durations = np.asarray(fn, dtype=np.float64).reshape(-1)
        if durations.size > MAX_CALLS:
            raise InvalidInputError(f"{durations.size} durations; the limit is {MAX_CALLS}")
    judgement = judge_quantile(durations, quantile=quantile, limit=limit, alpha=run.settings.alpha)
    return _conclude("assert_latency", judgement, index=index)
