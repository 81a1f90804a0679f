"""Reference profile: what the sensor distributions of known-good data look like.

The profile is computed from the embedded AI4I 2020 data by :func:`build_reference_profile` and
shipped as ``reference_profile.json`` so a drift check never depends on re-reading training data.
A unit test recomputes it from the embedded data, so the shipped file cannot silently go stale.

Distributions are stored as Great Expectations partition objects (histogram bins, weights and
tail weights) because the suite compares new data with GE's KL-divergence expectation. KL of an
observed histogram against fixed reference bins has a sampling bias of about ``bins / (2 n)``, so
one threshold works from 1,000 rows (bias ~0.01) to millions of rows (bias ~0).

Temperatures are different: in AI4I both the air temperature and the process-minus-air
difference are slow random walks, so a batch of good data covers only part of their long-run
range and a histogram test would flag healthy batches. Their *level* is checked instead: the
batch median must lie inside the reference 1-99 % band. The difference is the sharp one (band
7.8-11.8 K), so a +3 K process-temperature sensor offset (median ~12.8 K) fails at any size.
"""

from __future__ import annotations

import json
from importlib import resources
from typing import Any

import numpy as np
import pandas as pd

from shopfloor.data import loader, schema

PROFILE_VERSION = "1.0.0"
PROFILE_FILE = "reference_profile.json"

#: Derived column: process minus air temperature (about 10 K +- 1 K in AI4I). Checking it exposes
#: a process-temperature offset that the wide random walk of the ambient level would hide.
TEMPERATURE_DELTA = "temperature_delta_k"

#: Measurement resolution of each histogrammed column; bin edges sit half a step between
#: representable readings so float noise (e.g. in the derived difference) never flips a bin.
RESOLUTION: dict[str, float] = {
    schema.ROTATIONAL_SPEED: 1.0,
    schema.TORQUE: 0.1,
    schema.TOOL_WEAR: 1.0,
}
#: Random-walk columns whose batch median is checked against the reference band.
LEVEL_COLUMNS: tuple[str, ...] = (schema.AIR_TEMPERATURE, schema.PROCESS_TEMPERATURE, TEMPERATURE_DELTA)
#: Quantiles that become bin edges: 20 equal-mass bins between 1 % and 99 %, 1 % in each tail.
EDGE_QUANTILES: tuple[float, ...] = tuple(float(q) for q in np.linspace(0.01, 0.99, 21))
LEVEL_BAND: tuple[float, float] = (0.01, 0.99)


def temperature_delta(frame: pd.DataFrame) -> pd.Series:
    """Process minus air temperature in K (the derived column the suite checks)."""
    return (frame[schema.PROCESS_TEMPERATURE] - frame[schema.AIR_TEMPERATURE]).rename(TEMPERATURE_DELTA)


def _partition(values: np.ndarray, resolution: float) -> dict[str, list[float]]:
    """GE continuous partition object: quantile edges snapped between readings, weights, tails."""
    raw_edges = np.quantile(values, EDGE_QUANTILES)
    edges = np.unique(np.round((np.round(raw_edges / resolution) + 0.5) * resolution, 6))
    counts, _ = np.histogram(values, edges)
    n = len(values)
    return {
        "bins": [float(e) for e in edges],
        "weights": [float(c) / n for c in counts],
        "tail_weights": [float(np.sum(values < edges[0])) / n, float(np.sum(values > edges[-1])) / n],
    }


def build_reference_profile(frame: pd.DataFrame) -> dict[str, Any]:
    """Compute the reference profile of a clean canonical table (pure function of its content)."""
    columns: dict[str, Any] = {}
    numeric = frame.assign(**{TEMPERATURE_DELTA: temperature_delta(frame)})
    for column, resolution in RESOLUTION.items():
        values = numeric[column].to_numpy(dtype=float)
        columns[column] = {"partition": _partition(values, resolution)}
    for column in LEVEL_COLUMNS:
        low, high = np.quantile(numeric[column].to_numpy(dtype=float), LEVEL_BAND)
        columns[column] = {"median_band": [round(float(low), 6), round(float(high), 6)]}
    shares = frame[schema.PRODUCT_TYPE].value_counts(normalize=True)
    columns[schema.PRODUCT_TYPE] = {
        "partition": {
            "values": list(schema.PRODUCT_TYPES),
            "weights": [float(shares.get(t, 0.0)) for t in schema.PRODUCT_TYPES],
        }
    }
    return {
        "profile_version": PROFILE_VERSION,
        "source_data_version": loader.data_version(frame),
        "n_rows": len(frame),
        "columns": columns,
    }


def load_reference_profile() -> dict[str, Any]:
    """The shipped reference profile (computed from the embedded AI4I 2020 data)."""
    text = (resources.files("shopfloor.validation") / PROFILE_FILE).read_text(encoding="utf-8")
    profile: dict[str, Any] = json.loads(text)
    return profile


def expectation_parameters(profile: dict[str, Any]) -> dict[str, Any]:
    """Map a profile onto the ``$PARAMETER`` names the suite's distribution checks use."""
    params: dict[str, Any] = {}
    for column, entry in profile["columns"].items():
        if "partition" in entry:
            params[f"reference_partition__{column}"] = entry["partition"]
        if "median_band" in entry:
            params[f"reference_median_min__{column}"] = entry["median_band"][0]
            params[f"reference_median_max__{column}"] = entry["median_band"][1]
    return params
