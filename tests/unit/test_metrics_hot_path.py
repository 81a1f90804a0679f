"""The cheaper per-request metrics recording must expose exactly what prometheus_client's own
calls would: same histogram buckets and sums, same product-type counts."""

from __future__ import annotations

import random

import numpy as np
from prometheus_client import CollectorRegistry, generate_latest

from shopfloor.data import schema
from shopfloor.serving.metrics import InputStatistics, ServingMetrics


def _samples(registry: CollectorRegistry) -> list[str]:
    return [line for line in generate_latest(registry).decode().splitlines() if "_created" not in line]


def test_recording_matches_prometheus_observe_and_inc() -> None:
    rng = random.Random(4)
    fast, reference = CollectorRegistry(), CollectorRegistry()
    recorded = ServingMetrics(fast).bind("m", "v1", "d", "int8", "tflite")
    expected = ServingMetrics(reference).bind("m", "v1", "d", "int8", "tflite")
    for _ in range(3000):
        rows = rng.choice([1, 3, 64])
        columns = {n: np.array([rng.uniform(0, 3000) for _ in range(rows)]) for n in schema.SENSOR_COLUMNS}
        columns[schema.PRODUCT_TYPE] = np.array([rng.choice(schema.PRODUCT_TYPES) for _ in range(rows)])
        predicted = np.array([rng.random() < 0.2 for _ in range(rows)])
        seconds = rng.choice([0.0, 0.0001, 0.00025, 1.0, 5.0, rng.random() * 0.01])
        protocol = rng.choice(["v1", "v2-rest", "v2-grpc"])
        recorded.record(protocol, columns, predicted, seconds)
        failures = int(predicted.sum())
        if failures:
            expected._failure.inc(failures)
        if rows - failures:
            expected._no_failure.inc(rows - failures)
        expected._inputs.observe("m", columns)
        expected._latency[protocol].observe(seconds)
    assert _samples(fast) == _samples(reference)
    assert any("shopfloor_inference_duration_seconds_bucket" in s for s in _samples(fast))


def test_product_type_counts_include_values_outside_the_schema() -> None:
    stats = InputStatistics()
    types = ["L", "M", "zz", "H", "L", "aa", "zz"]
    columns = {n: np.zeros(len(types)) for n in schema.SENSOR_COLUMNS}
    columns[schema.PRODUCT_TYPE] = np.array(types)
    stats.observe("m", columns)
    family = next(f for f in stats.collect() if f.name == "shopfloor_input_product_type")
    counts = {s.labels["product_type"]: s.value for s in family.samples if s.name.endswith("_total")}
    assert list(counts) == [*schema.PRODUCT_TYPES, "aa", "zz"]
    assert counts == {"L": 2, "M": 1, "H": 1, "aa": 1, "zz": 2}
