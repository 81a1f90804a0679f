"""One vectorised bootstrap for every interval shopfloor decides on.

A statistic here sees the data only through sums per *cell*: a ranking metric through how
many failures and non-failures sit at each distinct score, a mean through per-row sums. So a
resample is never materialised as rows: the row draws of a chunk of resamples are made once
and each statistic's cells are counted in them with one ``bincount``. Every statistic of a
call reads the SAME draws, which is what makes a candidate-minus-reference difference paired.
Clustered data (readings of one machine are correlated) resamples whole clusters instead: the
cluster draws times per-cluster cell sums.

Intervals are BCa (bias-corrected and accelerated, Efron 1987): for the skewed, bounded
metrics of a rare class the plain percentile interval undercovers, and the bias correction
plus the jackknife acceleration repair most of that. p-values invert the very same
construction, so a verdict read from a p-value and one read from a bound always agree.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace

import numpy as np
from scipy.special import ndtr, ndtri

from shopfloor.errors import InvalidInputError

#: Largest sample (rows) a bootstrap accepts.
MAX_ROWS = 5_000_000
#: Most resamples a bootstrap accepts.
MAX_RESAMPLES = 100_000
#: Most resamples x units one call may draw (about a minute of work on one core).
MAX_DRAWS = 4_000_000_000
#: Draws (or cell sums) held in memory at once: resamples are processed in chunks of this size.
CHUNK_CELLS = 1 << 22
#: Jackknife units evaluated exactly; beyond this a fixed random subset estimates the
#: acceleration (it shrinks like 1/sqrt(n), so a subset is plenty for a large sample).
MAX_JACKKNIFE_UNITS = 4096

SumsFn = Callable[[np.ndarray], np.ndarray]


@dataclass(frozen=True, eq=False)
class Cells:
    """Each row's cell, and per-row values summed per cell besides the row count.

    A statistic built on these sees sums of shape ``(k, 1 + len(values), size)``: channel 0
    counts rows per cell, channel ``c`` sums ``values[c - 1]`` per cell.
    """

    codes: np.ndarray
    size: int
    values: tuple[np.ndarray, ...] = ()

    @property
    def channels(self) -> int:
        return 1 + len(self.values)


@dataclass(frozen=True, eq=False)
class Term:
    """``weight * fn(sums of cells)``: one part of a statistic."""

    cells: Cells
    fn: SumsFn
    weight: float = 1.0


@dataclass(frozen=True)
class Statistic:
    """A weighted sum of terms, e.g. a metric, or candidate minus reference (paired)."""

    terms: tuple[Term, ...]

    @classmethod
    def of(cls, cells: Cells, fn: SumsFn) -> Statistic:
        return cls((Term(cells, fn),))

    def __sub__(self, other: Statistic) -> Statistic:
        return Statistic(self.terms + tuple(Term(t.cells, t.fn, -t.weight) for t in other.terms))


@dataclass(frozen=True, eq=False)
class Design:
    """How the sample was drawn, so that resamples mimic it.

    ``strata``: resample within each stratum (a stratified test split keeps its number of
    failures, so its resamples must too). ``groups``: resample whole clusters (readings of
    one machine are not independent). Both None: rows are independent draws.
    """

    n: int
    strata: np.ndarray | None = None
    groups: np.ndarray | None = None

    @classmethod
    def of(cls, n: int, *, strata: object = None, groups: object = None) -> Design:
        """A checked design; InvalidInputError naming the problem otherwise."""
        if n < 1:
            raise InvalidInputError("a bootstrap needs at least one row")
        if n > MAX_ROWS:
            raise InvalidInputError(f"{n} rows exceed the bootstrap's limit of {MAX_ROWS}")
        if strata is not None and groups is not None:
            raise InvalidInputError("give strata or groups, not both: clusters are resampled whole")
        return cls(n, _labels(strata, n, "strata"), _labels(groups, n, "groups"))

    @property
    def units(self) -> int:
        """Independent units: clusters when grouped, else rows."""
        return int(self.groups.max()) + 1 if self.groups is not None else self.n

    @property
    def unit(self) -> str:
        return "groups" if self.groups is not None else "cases"


def _labels(values: object, n: int, what: str) -> np.ndarray | None:
    """Arbitrary labels -> dense codes 0..k-1 (None stays None)."""
    if values is None:
        return None
    arr = np.asarray(values)
    if arr.ndim != 1 or len(arr) != n:
        raise InvalidInputError(f"{what} must be one label per row ({n}), got shape {arr.shape}")
    if arr.dtype.kind == "f" and not np.isfinite(arr).all():
        raise InvalidInputError(f"{what} contain NaN or infinity")
    _, codes = np.unique(arr, return_inverse=True)
    return codes.astype(np.int64)


@dataclass(frozen=True, eq=False)
class Replicates:
    """A statistic's point value, its bootstrap distribution and its BCa constants."""

    point: float
    samples: np.ndarray  # sorted, finite
    undefined: int  # resamples in which the statistic was undefined (NaN)
    bias: float  # z0
    acceleration: float  # a
    #: Calibrated widening of the lower half-width (1: plain BCa); see metrics.calibrated.
    widen_low: float = 1.0
    #: Effective sample size for the small-sample expansion (0: none); see :meth:`expanded`.
    expand: int = 0

    @classmethod
    def of(cls, point: float, samples: np.ndarray, jackknife: np.ndarray, scale: float = 1.0,
           strata: np.ndarray | None = None) -> Replicates:
        finite = np.sort(samples[np.isfinite(samples)])
        undefined = int(samples.size - finite.size)
        if not math.isfinite(point) or finite.size == 0:
            return cls(float(point), finite, undefined, 0.0, 0.0)
        r = finite.size
        below = np.searchsorted(finite, point, side="left")
        ties = np.searchsorted(finite, point, side="right") - below
        frac = min(max((below + 0.5 * ties) / r, 0.5 / r), 1 - 0.5 / r)
        acceleration = _acceleration(jackknife, scale, strata)
        return cls(float(point), finite, undefined, float(ndtri(frac)), acceleration)

    @property
    def defined(self) -> bool:
        return math.isfinite(self.point) and self.samples.size > 0

    @property
    def standard_error(self) -> float:
        return float(np.std(self.samples, ddof=1)) if self.samples.size > 1 else float("nan")

    # -- the BCa map between nominal and adjusted levels ----------------------------------
    def _level(self, beta: float) -> float:
        """Adjusted quantile level of the BCa bound at nominal level ``beta``."""
        z0, a = self.bias, self.acceleration
        if beta <= 0.0 or beta >= 1.0:
            low_end = beta <= 0.0
            if a != 0.0 and (a > 0) == low_end:  # the map flattens at this end
                return float(ndtr(z0 - 1.0 / a))
            return 0.0 if low_end else 1.0
        w = z0 + float(ndtri(beta))
        denominator = 1.0 - a * w
        if denominator <= 0.0:  # beyond the map's range: the bound is the sample's extreme
            return 1.0 if a > 0 else 0.0
        return float(ndtr(z0 + w / denominator))

    def _nominal(self, level: float, *, smallest: bool) -> float:
        """Inverse of :meth:`_level`: the smallest (``smallest``) or largest nominal level
        whose adjusted level is at least (resp. at most) ``level``; 1 or -inf when none is."""
        z0, a = self.bias, self.acceleration
        z = float("-inf") if level <= 0.0 else float("inf") if level >= 1.0 else float(ndtri(level))
        d = z - z0
        if a == 0.0:
            return float(ndtr(d - z0))
        if math.isinf(d) and (d < 0) == (a < 0):  # the map's flat end: its limit
            return float(ndtr(1.0 / a - z0))
        denominator = 1.0 + a * d
        if denominator <= 0.0 or math.isinf(d):  # `level` lies outside the map's range
            below_range = a > 0  # then every adjusted level is above `level`
            if smallest:
                return 0.0 if below_range else 1.0
            return float("-inf") if below_range else 1.0
        return float(ndtr(d / denominator - z0))

    # -- quantiles of the bootstrap distribution (linear interpolation, as numpy's default) -
    def _quantile(self, level: float) -> float:
        x = self.samples
        h = min(max(level, 0.0), 1.0) * (x.size - 1)
        lo = math.floor(h)
        hi = min(lo + 1, x.size - 1)
        return float(x[lo] + (h - lo) * (x[hi] - x[lo]))

    def _first_level_reaching(self, limit: float) -> float | None:
        """Smallest quantile level whose quantile is >= limit (None: above every sample)."""
        x = self.samples
        if limit <= x[0]:
            return 0.0
        if limit > x[-1]:
            return None
        j = int(np.searchsorted(x, limit, side="left"))
        h = (j - 1) + (limit - x[j - 1]) / (x[j] - x[j - 1])
        return h / (x.size - 1)

    def _last_level_within(self, limit: float) -> float | None:
        """Largest quantile level whose quantile is <= limit (None: below every sample)."""
        x = self.samples
        if limit >= x[-1]:
            return 1.0
        if limit < x[0]:
            return None
        j = int(np.searchsorted(x, limit, side="right"))
        h = (j - 1) + (limit - x[j - 1]) / (x[j] - x[j - 1])
        return h / (x.size - 1)

    # -- what callers use --------------------------------------------------------------------
    def expanded(self, size: int) -> Replicates:
        """Hesterberg's expansion for a small effective sample of ``size`` units (for a rare
        class: its count): the bootstrap spread is too narrow by sqrt((m - 1) / m) and
        normal quantiles are too short by t(m - 1) / z, so each bound is taken at the nominal
        level whose normal quantile is t(m - 1) * sqrt(m / (m - 1)). Negligible for large m."""
        return replace(self, expand=int(size) if size >= 2 else 0)

    def percentile(self) -> Replicates:
        """The plain percentile interval (no bias correction, no acceleration), kept expanded
        and widened as they were."""
        return replace(self, bias=0.0, acceleration=0.0)

    def _to_bca(self, alpha: float) -> float:
        """The nominal level BCa uses for a bound at level 1 - alpha (expanded)."""
        if not self.expand or alpha <= 0.0 or alpha >= 1.0:
            return alpha
        from scipy.stats import t

        m = self.expand
        return float(ndtr(-float(t.ppf(1.0 - alpha, m - 1)) * math.sqrt(m / (m - 1))))

    def _from_bca(self, beta: float) -> float:
        """Inverse of :meth:`_to_bca`."""
        if not self.expand or beta <= 0.0 or beta >= 1.0:
            return beta
        from scipy.stats import t

        m = self.expand
        return float(t.sf(-float(ndtri(beta)) / math.sqrt(m / (m - 1)), m - 1))

    def widened(self, factor: float) -> Replicates:
        """The same distribution with the lower bound's distance from the point estimate
        multiplied by ``factor`` (>= 1)."""
        return replace(self, widen_low=max(1.0, float(factor)))

    def _unwiden(self, limit: float) -> float:
        """The plain BCa limit equivalent to ``limit`` for the widened lower bound."""
        return self.point - (self.point - limit) / self.widen_low

    def lower(self, alpha: float) -> float:
        """One-sided lower confidence bound at level 1 - alpha."""
        if not self.defined:
            return float("nan")
        bound = self._quantile(self._level(self._to_bca(alpha)))
        return self.point - self.widen_low * (self.point - bound)

    def upper(self, alpha: float) -> float:
        """One-sided upper confidence bound at level 1 - alpha."""
        return self._quantile(self._level(1.0 - self._to_bca(alpha))) if self.defined else float("nan")

    def p_at_least(self, limit: float) -> float:
        """Evidence that the statistic is at least ``limit``: the smallest alpha at which the
        lower bound reaches it (1 when undefined)."""
        if not self.defined:
            return 1.0
        level = self._first_level_reaching(self._unwiden(limit))
        if level is None:
            return 1.0
        return self._from_bca(min(max(self._nominal(level, smallest=True), 0.0), 1.0))

    def p_below(self, limit: float) -> float:
        """Evidence that the statistic is below ``limit``: the smallest alpha at which the
        upper bound is below it (1 when undefined)."""
        if not self.defined:
            return 1.0
        level = self._first_level_reaching(limit)
        if level is None:  # above every resample: the upper bound is always below it
            return 0.0
        return self._from_bca(min(max(1.0 - self._nominal(level, smallest=True), 0.0), 1.0))

    def p_above(self, limit: float) -> float:
        """Evidence that the statistic is above ``limit``: the smallest alpha at which the
        lower bound is above it (1 when undefined)."""
        if not self.defined:
            return 1.0
        level = self._last_level_within(self._unwiden(limit))
        if level is None:  # below every resample: the lower bound is always above it
            return 0.0
        beta = self._nominal(level, smallest=False)
        return 0.0 if not math.isfinite(beta) else self._from_bca(min(max(beta, 0.0), 1.0))

    def p_at_most(self, limit: float) -> float:
        """Evidence that the statistic is at most ``limit``: the smallest alpha at which the
        upper bound stays within it (1 when undefined)."""
        if not self.defined:
            return 1.0
        level = self._last_level_within(limit)
        if level is None:
            return 1.0
        beta = self._nominal(level, smallest=False)
        return 1.0 if not math.isfinite(beta) else self._from_bca(min(max(1.0 - beta, 0.0), 1.0))


def _acceleration(jackknife: np.ndarray, scale: float, strata: np.ndarray | None) -> float:
    """Efron's acceleration from leave-one-unit-out values, centred within each stratum (the
    multi-sample form: each stratum's influence values sum to zero); ``scale`` corrects for
    a subset of units."""
    keep = np.isfinite(jackknife)
    values = jackknife[keep]
    if values.size < 3:
        return 0.0
    if strata is None:
        d = values.mean() - values
    else:
        codes = strata[keep]
        means = np.bincount(codes, weights=values) / np.maximum(np.bincount(codes), 1)
        d = means[codes] - values
    s2 = float(np.sum(d * d))
    if s2 <= 0.0:
        return 0.0
    return float(np.sum(d**3) / (6.0 * s2**1.5)) * scale


# -- the engine ---------------------------------------------------------------------------------
def point_value(statistic: Statistic, n: int) -> float:
    """A statistic's value on the whole sample of ``n`` rows (no resampling)."""
    cells = _distinct_cells({"x": statistic}, n)
    return float(_evaluate(statistic, {id(c): _sums(c, None, 1) for c in cells})[0])


def on_rows(statistic: Statistic, rows: np.ndarray) -> np.ndarray:
    """The statistic on explicit resamples, one row of ``rows`` (k x m row indices) each:
    what one bootstrap draw computes, exposed to check it against a direct computation."""
    rows = np.atleast_2d(np.asarray(rows, dtype=np.int64))
    cells = {id(t.cells): t.cells for t in statistic.terms}
    return _evaluate(statistic, {key: _sums(c, rows, rows.shape[0]) for key, c in cells.items()})


def bootstrap(
    statistics: Mapping[str, Statistic], design: Design, *, resamples: int, seed: int
) -> dict[str, Replicates]:
    """Point value, ``resamples`` bootstrap values and BCa constants of every statistic, all
    from one set of draws (statistics of one call are paired)."""
    if isinstance(resamples, bool) or not isinstance(resamples, int) or not 1 <= resamples <= MAX_RESAMPLES:
        raise InvalidInputError(f"resamples must be an integer in [1, {MAX_RESAMPLES}], got {resamples!r}")
    if resamples * design.units > MAX_DRAWS:
        raise InvalidInputError(f"{resamples} resamples of {design.units} {design.unit} exceed "
                                f"{MAX_DRAWS} draws; use fewer resamples")
    cells = _distinct_cells(statistics, design.n)
    full = {id(c): _sums(c, None, 1) for c in cells}
    points = {name: _evaluate(stat, full) for name, stat in statistics.items()}
    draws = _draw_all(cells, design, resamples, seed, statistics)
    jackknife, scale, chosen = _jackknife(statistics, cells, full, design, seed)
    strata = design.strata[chosen] if design.strata is not None else None
    return {
        name: Replicates.of(float(points[name][0]), draws[name], jackknife[name], scale, strata)
        for name in statistics
    }


def _distinct_cells(statistics: Mapping[str, Statistic], n: int) -> list[Cells]:
    seen: dict[int, Cells] = {}
    for stat in statistics.values():
        for term in stat.terms:
            c = term.cells
            if id(c) in seen:
                continue
            if c.codes.shape != (n,) or any(v.shape != (n,) for v in c.values):
                raise InvalidInputError(f"cells for {c.codes.shape[0]} rows, but the design has {n}")
            seen[id(c)] = c
    return list(seen.values())


def _evaluate(stat: Statistic, sums: Mapping[int, np.ndarray]) -> np.ndarray:
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.asarray(sum(t.weight * t.fn(sums[id(t.cells)]) for t in stat.terms), dtype=np.float64)


def _sums(cells: Cells, rows: np.ndarray | None, k: int) -> np.ndarray:
    """Cell sums over ``rows`` (k x n_rows draws, row indices) or all rows (k=1)."""
    size = cells.size
    if rows is None:
        flat = cells.codes
    else:
        flat = (cells.codes[rows] + (np.arange(k, dtype=np.int64) * size)[:, None]).ravel()
    out = np.empty((k, cells.channels, size))
    out[:, 0, :] = np.bincount(flat, minlength=k * size).reshape(k, size)
    for c, values in enumerate(cells.values, start=1):
        weights = values if rows is None else values[rows].ravel()
        out[:, c, :] = np.bincount(flat, weights=weights, minlength=k * size).reshape(k, size)
    return out


def _draw_all(
    cells: list[Cells], design: Design, resamples: int, seed: int, statistics: Mapping[str, Statistic]
) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    out = {name: np.empty(resamples) for name in statistics}
    if design.groups is not None:
        groups, g = design.groups, design.units
        per_cluster = {id(c): _cluster_sums(c, groups, g) for c in cells}
        widest = max([g] + [c.channels * c.size for c in cells])
        chunk = max(1, CHUNK_CELLS // widest)
        for start in range(0, resamples, chunk):
            k = min(chunk, resamples - start)
            drawn = rng.integers(0, g, (k, g))
            counts = np.bincount((drawn + (np.arange(k) * g)[:, None]).ravel(), minlength=k * g)
            counts = counts.reshape(k, g).astype(np.float64)
            sums = {key: (counts @ m.reshape(g, -1)).reshape(k, *m.shape[1:])
                    for key, m in per_cluster.items()}
            for name, stat in statistics.items():
                out[name][start:start + k] = _evaluate(stat, sums)
        return out
    strata = [np.arange(design.n)] if design.strata is None else [
        np.flatnonzero(design.strata == s) for s in range(int(design.strata.max()) + 1)]
    chunk = max(1, CHUNK_CELLS // max(design.n, max(c.channels * c.size for c in cells)))
    for start in range(0, resamples, chunk):
        k = min(chunk, resamples - start)
        picks = [rows[rng.integers(0, len(rows), (k, len(rows)))] for rows in strata if len(rows)]
        sums = {id(c): sum(_sums(c, p, k) for p in picks) for c in cells}
        for name, stat in statistics.items():
            out[name][start:start + k] = _evaluate(stat, sums)
    return out


def _cluster_sums(cells: Cells, groups: np.ndarray, g: int) -> np.ndarray:
    """Per-cluster cell sums, (clusters, channels, size)."""
    size = cells.size
    flat = groups * size + cells.codes
    out = np.empty((g, cells.channels, size))
    out[:, 0, :] = np.bincount(flat, minlength=g * size).reshape(g, size)
    for c, values in enumerate(cells.values, start=1):
        out[:, c, :] = np.bincount(flat, weights=values, minlength=g * size).reshape(g, size)
    return out


def _jackknife(
    statistics: Mapping[str, Statistic], cells: list[Cells], full: Mapping[int, np.ndarray],
    design: Design, seed: int,
) -> tuple[dict[str, np.ndarray], float, np.ndarray]:
    """Leave-one-unit-out values of every statistic (a fixed subset of units when there are
    many), the factor that scales the subset's acceleration to the whole sample, and the
    units left out."""
    units = design.units
    if units > MAX_JACKKNIFE_UNITS:
        chosen = np.sort(np.random.default_rng([seed, 1]).choice(units, MAX_JACKKNIFE_UNITS, replace=False))
        scale = math.sqrt(MAX_JACKKNIFE_UNITS / units)
    else:
        chosen, scale = np.arange(units), 1.0
    per_term: dict[tuple[int, int], np.ndarray] = {}
    out: dict[str, np.ndarray] = {}
    for name, stat in statistics.items():
        total = np.zeros(chosen.size)
        for term in stat.terms:
            key = (id(term.cells), id(term.fn))
            cached = per_term.get(key)
            if cached is None:
                cached = per_term[key] = _leave_one_out(term, full[id(term.cells)], design, chosen)
            total += term.weight * cached
        out[name] = total
    return out, scale, chosen


def _leave_one_out(term: Term, full: np.ndarray, design: Design, chosen: np.ndarray) -> np.ndarray:
    cells = term.cells
    size, channels = cells.size, cells.channels
    block = max(1, CHUNK_CELLS // (channels * size))
    if design.groups is not None:
        per_cluster = _cluster_sums(cells, design.groups, design.units)[chosen]
        values = np.empty(chosen.size)
        for start in range(0, chosen.size, block):
            part = full - per_cluster[start:start + block]
            values[start:start + block] = _fn(term, part)
        return values
    codes = cells.codes[chosen]
    if not cells.values:  # a row's leave-one-out value depends only on its cell
        distinct, inverse = np.unique(codes, return_inverse=True)
        by_cell = np.empty(distinct.size)
        for start in range(0, distinct.size, block):
            part = np.repeat(full, len(distinct[start:start + block]), axis=0)
            part[np.arange(part.shape[0]), 0, distinct[start:start + block]] -= 1.0
            by_cell[start:start + block] = _fn(term, part)
        return by_cell[inverse]
    values = np.empty(chosen.size)
    for start in range(0, chosen.size, block):
        rows = chosen[start:start + block]
        part = np.repeat(full, rows.size, axis=0)
        idx = np.arange(rows.size)
        part[idx, 0, cells.codes[rows]] -= 1.0
        for c, v in enumerate(cells.values, start=1):
            part[idx, c, cells.codes[rows]] -= v[rows]
        values[start:start + block] = _fn(term, part)
    return values


def _fn(term: Term, sums: np.ndarray) -> np.ndarray:
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.asarray(term.fn(sums), dtype=np.float64)
