"""Reference statistics of the training data, shipped in every version for drift checks on site.

Computed once, in the convert step, from the training rows as the model sees them (the
standardised model inputs, in model-input order) and from each LiteRT format's predicted
probability on the same rows. The document (:class:`shopfloor.contract.ReferenceStats`) is
small and bounded: a handful of quantiles and a fixed-width histogram per variable, so it can
travel to every edge site with the model. numpy only.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from shopfloor import contract
from shopfloor.contract import Distribution, ReferenceStats
from shopfloor.errors import InvalidInputError
from shopfloor.lineage import write_text_atomic

#: Quantile levels recorded per variable (deciles plus the tails drift shows first in).
QUANTILE_LEVELS: tuple[float, ...] = (0.0, 0.01, 0.05, 0.1, 0.25, 0.5, 0.75, 0.9, 0.95, 0.99, 1.0)
#: Histogram bins per variable (equal width over the training range).
BINS = 20


def distribution(name: str, values: np.ndarray, *, levels: Sequence[float] = QUANTILE_LEVELS,
                 bins: int = BINS) -> Distribution:
    """One variable's :class:`~shopfloor.contract.Distribution` (finite values only)."""
    v = np.asarray(values, dtype=np.float64).reshape(-1)
    if v.size == 0 or not np.isfinite(v).all():
        raise InvalidInputError(f"reference statistics of {name}: need at least one value, all finite")
    if not 1 <= bins <= contract.MAX_REFERENCE_BINS:
        raise InvalidInputError(f"bins must be within 1..{contract.MAX_REFERENCE_BINS}, got {bins}")
    lo, hi = float(v.min()), float(v.max())
    edges = np.linspace(lo, hi if hi > lo else lo + 1.0, bins + 1)
    counts, _ = np.histogram(v, bins=edges)
    return Distribution(
        name=name, count=int(v.size), mean=float(v.mean()), std=float(v.std()), min=lo, max=hi,
        quantiles=tuple(float(q) for q in np.quantile(v, list(levels))),
        bin_edges=tuple(float(e) for e in edges), bin_counts=tuple(int(c) for c in counts),
    )


def compute_reference_stats(features: np.ndarray, names: Sequence[str],
                            predictions: Mapping[str, np.ndarray], *, data_version: str | None = None,
                            bins: int = BINS) -> ReferenceStats:
    """Statistics of the model inputs ``features`` ``[n, F]`` (columns named ``names``) and of
    each format's predicted probabilities ``[n]`` on the same rows."""
    x = np.asarray(features, dtype=np.float64)
    if x.ndim != 2 or x.shape[1] != len(names) or len(x) == 0:
        raise InvalidInputError(f"reference statistics: features {list(x.shape)} do not match "
                                f"{len(names)} names")
    if len(names) > contract.MAX_REFERENCE_VARIABLES:
        raise InvalidInputError(f"reference statistics: {len(names)} features, at most "
                                f"{contract.MAX_REFERENCE_VARIABLES}")
    for fmt, p in predictions.items():
        if np.asarray(p).reshape(-1).shape[0] != len(x):
            raise InvalidInputError(f"reference statistics: {fmt} predictions are not one per row")
    stats = ReferenceStats(
        n_rows=len(x), quantile_levels=QUANTILE_LEVELS,
        features=tuple(distribution(n, x[:, i], bins=bins) for i, n in enumerate(names)),
        predictions={fmt: distribution(f"probability_{fmt}", p, bins=bins) for fmt, p in predictions.items()},
        data_version=data_version,
    )
    return ReferenceStats.from_dict(stats.to_dict())  # the contract's own checks, once, here


def write_reference_stats(directory: Path, stats: ReferenceStats) -> Path:
    """Write ``reference_stats.json`` into a version (or edge-model) directory; refuses a
    document over the contract's size bound."""
    text = contract.dumps(stats.to_dict())
    if len(text.encode()) > contract.MAX_REFERENCE_STATS_BYTES:
        raise InvalidInputError(f"{contract.REFERENCE_STATS} would be {len(text.encode())} bytes, over "
                                f"{contract.MAX_REFERENCE_STATS_BYTES}")
    path = Path(directory) / contract.REFERENCE_STATS
    write_text_atomic(path, text)
    return path
