"""Benchmark: the full validation suite on 1,000,000 rows (target: 5 s or less).

Run: ``.venv/bin/python benchmarks/bench_validation.py [--rows 1000000] [--repeats 5]``

Data comes from ``shopfloor.data.simulator`` when it is importable, else from the real AI4I file
tiled and jittered. Every figure is the median of ``--repeats`` warm runs (the GE import and
context creation are paid once per process and reported separately as "first call"). Baselines
measured in the same run:

* pandas: the same checks written as plain vectorised pandas/numpy (the floor any framework
  could reach; the ratio is GE's overhead for its per-expectation reports).
* GE 10k x scale: GE on 10,000 rows times rows/10,000 (what linear scaling would predict).
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd

from shopfloor.data import loader, schema
from shopfloor.validation import load_reference_profile, validate
from shopfloor.validation.profile import TEMPERATURE_DELTA, temperature_delta


def make_rows(n_rows: int, seed: int = 0) -> tuple[pd.DataFrame, str]:
    """n_rows canonical rows: the simulator if available, else the real file tiled with jitter."""
    try:
        from shopfloor.data.simulator import simulate
    except ImportError:
        pass
    else:
        return simulate(n_rows, n_machines=10, seed=seed), "simulator (10 machines)"
    real = loader.load().frame
    rng = np.random.default_rng(seed)
    frame = real.iloc[np.arange(n_rows) % len(real)].reset_index(drop=True)
    frame[schema.ID] = np.arange(1, n_rows + 1)
    for column in (schema.AIR_TEMPERATURE, schema.PROCESS_TEMPERATURE, schema.TORQUE):
        frame[column] = (frame[column] + rng.choice([-0.1, 0.0, 0.1], n_rows)).round(1)
    return frame, "real file tiled + jitter"


def _kl(values: np.ndarray, partition: dict[str, Any]) -> float:
    bins = np.asarray(partition["bins"])
    counts = np.histogram(values, bins)[0]
    observed = np.concatenate(([np.sum(values < bins[0])], counts, [np.sum(values > bins[-1])])) / len(values)
    low_tail, high_tail = partition["tail_weights"]
    expected = np.concatenate(([low_tail], partition["weights"], [high_tail]))
    mask = observed > 0
    return float(np.sum(observed[mask] * np.log(observed[mask] / expected[mask])))


def pandas_checks(frame: pd.DataFrame, profile: dict[str, Any]) -> bool:
    """The suite's checks as plain vectorised pandas (no per-check reports, no examples)."""
    columns = profile["columns"]
    ok = set(frame.columns) - set(schema.OPTIONAL_COLUMNS) == set(schema.CANONICAL_COLUMNS)
    ok &= not frame[list(schema.CANONICAL_COLUMNS)].isna().to_numpy().any()
    ok &= all(pd.api.types.is_numeric_dtype(frame[c]) for c in (schema.ID, *schema.SENSOR_COLUMNS))
    for r in schema.PHYSICAL_RANGES:
        ok &= bool(frame[r.column].between(r.low, r.high).all())
    ok &= bool(frame[schema.ID].is_unique)
    ok &= bool(frame[schema.PRODUCT_TYPE].isin(schema.PRODUCT_TYPES).all())
    ok &= bool(frame[list(schema.LABEL_COLUMNS)].isin([0, 1]).to_numpy().all())
    ok &= bool((frame[schema.PROCESS_TEMPERATURE] > frame[schema.AIR_TEMPERATURE]).all())
    for column in (schema.ROTATIONAL_SPEED, schema.TORQUE, schema.TOOL_WEAR):
        ok &= _kl(frame[column].to_numpy(dtype=float), columns[column]["partition"]) <= 0.1
    reference = columns[schema.PRODUCT_TYPE]["partition"]
    shares = frame[schema.PRODUCT_TYPE].value_counts(normalize=True).reindex(reference["values"]).fillna(0.0)
    observed, expected = shares.to_numpy(), np.asarray(reference["weights"])
    mask = observed > 0
    ok &= float(np.sum(observed[mask] * np.log(observed[mask] / expected[mask]))) <= 0.05
    levels = {
        schema.AIR_TEMPERATURE: frame[schema.AIR_TEMPERATURE],
        schema.PROCESS_TEMPERATURE: frame[schema.PROCESS_TEMPERATURE],
        TEMPERATURE_DELTA: temperature_delta(frame),
    }
    for column, series in levels.items():
        low, high = columns[column]["median_band"]
        ok &= low <= float(series.median()) <= high
    return bool(ok)


def median_seconds(run: Callable[[], object], repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()

    frame, source = make_rows(args.rows)
    small = frame.iloc[:10_000]
    profile = load_reference_profile()

    start = time.perf_counter()
    first = validate(small)
    first_call = time.perf_counter() - start
    report = validate(frame)
    expected = pandas_checks(frame, profile)
    if report.success != expected:
        raise SystemExit(f"GE and pandas baseline disagree: {report.reason()}")

    suite = median_seconds(lambda: validate(frame), args.repeats)
    plain = median_seconds(lambda: pandas_checks(frame, profile), args.repeats)
    ge_small = median_seconds(lambda: validate(small), args.repeats)
    scale = len(frame) / len(small)

    outcome = "pass" if report.success else "fail: " + report.reason()[:80]
    print(f"data: {source}; {len(first.results)} expectations; outcome {outcome}")
    print(f"first call (GE import + context, 10,000 rows): {first_call:.2f} s")
    print(f"medians of {args.repeats} warm runs:")
    header = ("rows", "GE suite s", "pandas s", "GE/pandas", "GE 10k x scale s")
    rows = [
        (
            f"{len(frame):,}",
            f"{suite:.2f}",
            f"{plain:.2f}",
            f"{suite / plain:.1f}x",
            f"{ge_small * scale:.2f}",
        ),
        (f"{len(small):,}", f"{ge_small:.2f}", "", "", ""),
    ]
    widths = [max(len(row[i]) for row in (header, *rows)) for i in range(len(header))]
    for row in (header, *rows):
        print(" | ".join(cell.rjust(width) for cell, width in zip(row, widths, strict=True)))
    verdict = "OK" if suite <= 5.0 else "OVER"
    print(f"target: {len(frame):,} rows in <= 5 s -> {verdict} ({suite:.2f} s)")


if __name__ == "__main__":
    main()
