"""Prometheus metrics of the predictor, exposed on the REST port's ``/metrics`` beside kserve's.

kserve's ``/metrics`` serves prometheus_client's global ``REGISTRY``; ours register there
too (prefix ``shopfloor_``, no name clashes), so one scrape gets both. Per-field input
histograms are the raw material of drift detection: comparing their bucket shares with the
training data's (e.g. PSI per field) needs no request logging.

Refusals: ``shopfloor_rejected_requests_total`` counts invalid requests per model and protocol
(what the model refused); ``shopfloor_refused_requests_total`` counts every request the server
refused, by surface and status (400, 404, 408, 413, 503, gRPC codes), including those that
never reached a model. The latter is fed by the core's :class:`~shopfloor.inference.RefusalLog`,
which also writes the rate-limited log line.

Hot path: per-request cost is a handful of counter increments plus one numpy
``searchsorted``/``bincount`` per field; per-value ``Histogram.observe`` calls would cost
~1 µs each, i.e. most of a batch-64 request.
"""

from __future__ import annotations

import threading
from bisect import bisect_left
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field

import numpy as np
from prometheus_client import REGISTRY, CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import CounterMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector

from shopfloor.data import schema
from shopfloor.inference.refusals import RefusalLog

#: Bucket upper bounds per raw reading: the AI4I operating envelope at a resolution where a
#: shift of a few percent of the range moves mass between buckets (drift), plus tails.
INPUT_BUCKETS: dict[str, tuple[float, ...]] = {
    schema.AIR_TEMPERATURE: tuple(float(x) for x in np.arange(294.0, 306.5, 1.0)),
    schema.PROCESS_TEMPERATURE: tuple(float(x) for x in np.arange(305.0, 315.5, 1.0)),
    schema.ROTATIONAL_SPEED: tuple(float(x) for x in range(1100, 3001, 100)),
    schema.TORQUE: tuple(float(x) for x in range(0, 86, 5)),
    schema.TOOL_WEAR: tuple(float(x) for x in range(0, 281, 20)),
}
LATENCY_BUCKETS = (0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0)


@dataclass
class _InputCounts:
    buckets: dict[str, np.ndarray]
    sums: dict[str, float]
    types: dict[str, int] = field(default_factory=lambda: dict.fromkeys(schema.PRODUCT_TYPES, 0))
    rows: int = 0


class InputStatistics(Collector):
    """Per-model histograms of every raw numeric input, and counts of product types.

    A request only appends its columns to a pending list (~1 µs); binning happens in bulk when
    ``FLUSH_ROWS`` rows are pending or at scrape time, where one ``searchsorted`` over
    thousands of values costs less per value than per-request binning.
    """

    # Small enough that one flush (~0.2 ms at 1024 rows) never shows in p99 latency.
    FLUSH_ROWS = 1024

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._models: dict[str, _InputCounts] = {}
        self._pending: dict[str, list[Mapping[str, np.ndarray]]] = {}
        self._pending_rows = 0
        self._bounds = {name: np.asarray(b) for name, b in INPUT_BUCKETS.items()}

    def observe(self, model_name: str, columns: Mapping[str, np.ndarray]) -> None:
        with self._lock:
            self._pending.setdefault(model_name, []).append(columns)
            self._pending_rows += len(columns[schema.PRODUCT_TYPE])
            if self._pending_rows >= self.FLUSH_ROWS:
                self._flush()

    def _flush(self) -> None:
        """Bin pending rows (caller holds the lock)."""
        for model_name, batches in self._pending.items():
            if not batches:
                continue
            counts = self._models.get(model_name)
            if counts is None:
                counts = self._models[model_name] = _InputCounts(
                    {n: np.zeros(len(b) + 1, dtype=np.int64) for n, b in self._bounds.items()},
                    dict.fromkeys(self._bounds, 0.0),
                )
            for name, bounds in self._bounds.items():
                values = np.concatenate([batch[name] for batch in batches])
                # searchsorted(side="left") gives the first bound >= x: Prometheus' "le" bucket.
                counts.buckets[name] += np.bincount(
                    np.searchsorted(bounds, values), minlength=len(bounds) + 1
                )
                counts.sums[name] += float(values.sum())
            types = np.concatenate([batch[schema.PRODUCT_TYPE] for batch in batches])
            # Known types by comparison (np.unique sorts strings: several times slower); any
            # other value is added after them in sorted order, as np.unique would.
            known = 0
            for t in schema.PRODUCT_TYPES:
                c = int(np.count_nonzero(types == t))
                if c:
                    counts.types[t] = counts.types.get(t, 0) + c
                    known += c
            if known != len(types):
                others = types[~np.isin(types, schema.PRODUCT_TYPES)]
                for t, c in zip(*np.unique(others, return_counts=True), strict=True):
                    counts.types[str(t)] = counts.types.get(str(t), 0) + int(c)
            counts.rows += len(types)
        self._pending = {}
        self._pending_rows = 0

    def collect(self) -> Iterator[Metric]:
        with self._lock:
            self._flush()
            snapshot = {
                m: ({n: b.copy() for n, b in c.buckets.items()}, dict(c.sums), dict(c.types))
                for m, c in self._models.items()
            }
        for name, bounds in INPUT_BUCKETS.items():
            family = HistogramMetricFamily(
                f"shopfloor_input_{name}",
                f"Raw {name} readings received for prediction (drift input).",
                labels=["model_name"],
            )
            for model_name, (buckets, sums, _) in snapshot.items():
                cumulative = np.cumsum(buckets[name]).tolist()
                family.add_metric(
                    [model_name],
                    [(str(b), c) for b, c in zip(bounds, cumulative[:-1], strict=True)]
                    + [("+Inf", cumulative[-1])],
                    sums[name],
                )
            yield family
        types = CounterMetricFamily(
            "shopfloor_input_product_type",
            "Rows received per product type (drift input).",
            labels=["model_name", "product_type"],
        )
        for model_name, (_, _, type_counts) in snapshot.items():
            for t, c in type_counts.items():
                types.add_metric([model_name, t], c)
        yield types


class RefusalCounts(Collector):
    """``shopfloor_refused_requests_total{protocol, status}`` from a :class:`RefusalLog`."""

    def __init__(self, refusals: RefusalLog) -> None:
        self._refusals = refusals

    def collect(self) -> Iterator[Metric]:
        family = CounterMetricFamily(
            "shopfloor_refused_requests",
            "Requests the server refused (bad request, unknown model, too large, timeout, overload).",
            labels=["protocol", "status"],
        )
        for (protocol, status), count in sorted(self._refusals.counts().items()):
            family.add_metric([protocol, status], count)
        yield family


class ServingMetrics:
    """All predictor metrics of one registry (create once per process: see :func:`serving_metrics`)."""

    def __init__(self, registry: CollectorRegistry = REGISTRY) -> None:
        self.latency = Histogram(
            "shopfloor_inference_duration_seconds",
            "Time in the model per request: decode, features, inference, encode.",
            ["model_name", "protocol"],
            buckets=LATENCY_BUCKETS,
            registry=registry,
        )
        self.predictions = Counter(
            "shopfloor_predictions",
            "Rows predicted, by predicted class.",
            ["model_name", "model_version", "predicted_class"],
            registry=registry,
        )
        self.rejected = Counter(
            "shopfloor_rejected_requests",
            "Requests rejected as invalid (HTTP 400 / INVALID_ARGUMENT).",
            ["model_name", "protocol"],
            registry=registry,
        )
        self.model_info = Gauge(
            "shopfloor_model_info",
            "The model version being served (value 1).",
            ["model_name", "model_version", "data_version", "format", "platform"],
            registry=registry,
        )
        self.inputs = InputStatistics()
        registry.register(self.inputs)
        self.refusals = RefusalLog()
        registry.register(RefusalCounts(self.refusals))

    def bind(
        self, model_name: str, model_version: str, data_version: str, fmt: str, platform: str
    ) -> ModelMetrics:
        """Metrics of one loaded model, label children resolved once (not per request)."""
        self.model_info.labels(model_name, model_version, data_version, fmt, platform).set(1)
        return ModelMetrics(self, model_name, model_version)


class ModelMetrics:
    """The per-request recording of one model."""

    def __init__(self, metrics: ServingMetrics, model_name: str, model_version: str) -> None:
        self._inputs = metrics.inputs
        self._model_name = model_name
        self._failure = metrics.predictions.labels(model_name, model_version, "failure")
        self._no_failure = metrics.predictions.labels(model_name, model_version, "no_failure")
        self._latency = {p: metrics.latency.labels(model_name, p) for p in PROTOCOLS}
        self._rejected = {p: metrics.rejected.labels(model_name, p) for p in PROTOCOLS}
        # Histogram.observe, unrolled: the same sum and bucket, a bisection instead of a loop.
        self._latency_parts = {
            p: (child._sum, child._buckets, child._upper_bounds) for p, child in self._latency.items()
        }

    def record(
        self, protocol: str, columns: Mapping[str, np.ndarray], predicted: np.ndarray, seconds: float
    ) -> None:
        failures = int(np.count_nonzero(predicted))
        if failures:
            self._failure.inc(failures)
        if len(predicted) - failures:
            self._no_failure.inc(len(predicted) - failures)
        self._inputs.observe(self._model_name, columns)
        total, buckets, bounds = self._latency_parts[protocol]
        total.inc(seconds)
        bucket = bisect_left(bounds, seconds)  # the first bound >= seconds: Histogram's bucket
        if bucket < len(buckets):
            buckets[bucket].inc(1)

    def reject(self, protocol: str) -> None:
        self._rejected[protocol].inc()


PROTOCOLS = ("v1", "v2-rest", "v2-grpc")
_metrics: dict[int, ServingMetrics] = {}
_metrics_lock = threading.Lock()


def serving_metrics(registry: CollectorRegistry = REGISTRY) -> ServingMetrics:
    """The process's metrics for ``registry``: prometheus_client rejects duplicate names, so
    several models in one process (or tests) share one set, told apart by labels."""
    with _metrics_lock:
        metrics = _metrics.get(id(registry))
        if metrics is None:
            metrics = _metrics[id(registry)] = ServingMetrics(registry)
        return metrics
