"""The failure model as a KServe model: raw readings -> training features -> probability -> decision.

One class serves a registry version directory in any of its formats (int8 / float32 LiteRT,
or the TF SavedModel), in the style of KServe's sklearnserver: ``load()`` reads the artifacts,
``predict()`` does the whole request. Everything happens in one synchronous ``predict`` on
the event loop: a batch-64 request is ~0.1 ms of work, less than a thread hand-off would cost.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from kserve import Model
from kserve.errors import InvalidInput
from kserve.protocol.infer_type import InferRequest, InferResponse

from shopfloor.serving import codec
from shopfloor.serving.metrics import ModelMetrics, ServingMetrics, serving_metrics
from shopfloor.training.features import FeatureSpec

FORMATS: dict[str, tuple[str, str]] = {
    # format -> (artifact in the version directory, V2 platform name)
    "int8": ("model_int8.tflite", "tflite"),
    "float32": ("model_float32.tflite", "tflite"),
    "saved_model": ("saved_model", "tensorflow_savedmodel"),
}


class ModelLoadError(RuntimeError):
    """A version directory does not hold what the registry contract promises."""


def _read_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise ModelLoadError(f"cannot read {path}: {exc}") from exc
    if not isinstance(data, dict):
        raise ModelLoadError(f"{path} must hold a JSON object")
    return data


def _saved_model_predictor(directory: Path) -> Callable[[np.ndarray], np.ndarray]:
    import tensorflow as tf  # only this format needs TensorFlow

    signature = tf.saved_model.load(str(directory)).signatures["serving_default"]

    def predict(features: np.ndarray) -> np.ndarray:
        outputs = signature(features=tf.constant(features))
        (probability,) = outputs.values()
        return np.asarray(probability, dtype=np.float64).reshape(-1)

    return predict


class FailureModel(Model):
    """Serve one model version directory (manifest, feature spec, decision, model files)."""

    def __init__(
        self,
        name: str,
        version_dir: Path | str,
        fmt: str = "int8",
        max_batch: int = codec.DEFAULT_MAX_BATCH,
        decision_datatype: str = "BOOL",
        metrics: ServingMetrics | None = None,
    ) -> None:
        super().__init__(name)
        if fmt not in FORMATS:
            raise ValueError(f"unknown model format {fmt!r}; expected one of {sorted(FORMATS)}")
        if decision_datatype not in ("BOOL", "INT32"):
            raise ValueError(f"decision datatype must be BOOL or INT32, got {decision_datatype!r}")
        if max_batch < 1:
            raise ValueError(f"max_batch must be >= 1, got {max_batch}")
        self.version_dir = Path(version_dir)
        self.fmt = fmt
        self.platform = FORMATS[fmt][1]
        self.max_batch = max_batch
        self.decision_datatype = decision_datatype
        self.version = ""
        self.data_version = ""
        self.threshold = 0.5
        self.feature_spec: FeatureSpec | None = None
        self._metrics_source = metrics
        self._metrics: ModelMetrics | None = None
        self._predict_proba: Callable[[np.ndarray], np.ndarray] | None = None
        # LiteRT interpreters are not thread-safe; kserve calls predict on the event loop, but
        # a lock keeps a threaded caller (e.g. a custom server) correct at ~0.1 µs per request.
        self._lock = threading.Lock()

    @property
    def versions(self) -> list[str]:
        """V2 model metadata ``versions``: the registry version being served."""
        return [self.version] if self.version else []

    def load(self) -> bool:
        """Read the version directory; ready only once every artifact loaded."""
        directory = self.version_dir
        if not directory.is_dir():
            raise ModelLoadError(f"model version directory not found: {directory}")
        manifest = _read_json(directory / "manifest.json")
        decision = _read_json(directory / "decision.json")
        try:
            self.threshold = float(decision["threshold"])
        except (KeyError, TypeError, ValueError) as exc:
            raise ModelLoadError(f"{directory / 'decision.json'} has no numeric 'threshold'") from exc
        self.feature_spec = FeatureSpec.load(directory / "feature_spec.json")
        self.version = str(manifest.get("version") or directory.name)
        self.data_version = str(manifest.get("data_version", ""))
        artifact = directory / FORMATS[self.fmt][0]
        if not artifact.exists():
            raise ModelLoadError(f"{self.fmt} model not found: {artifact}")
        if self.fmt == "saved_model":
            self._predict_proba = _saved_model_predictor(artifact)
        else:
            from shopfloor.conversion.runtime import LiteRTModel

            lite = LiteRTModel(artifact)
            if lite.n_features != len(self.feature_spec.names):
                raise ModelLoadError(
                    f"{artifact} takes {lite.n_features} features, the feature spec "
                    f"makes {len(self.feature_spec.names)}"
                )
            self._predict_proba = lite.predict_proba
        metrics = self._metrics_source or serving_metrics()
        self._metrics = metrics.bind(self.name, self.version, self.data_version, self.fmt, self.platform)
        self.ready = True
        return self.ready

    def get_input_types(self) -> list[dict[str, Any]]:
        return codec.input_metadata()

    def get_output_types(self) -> list[dict[str, Any]]:
        return codec.output_metadata(self.decision_datatype)

    def features(self, columns: codec.Columns) -> np.ndarray:
        """Standardised model input: the training feature code path, applied to decoded columns."""
        assert self.feature_spec is not None, "load() first"
        return self.feature_spec.transform(columns)

    def predict_columns(self, columns: codec.Columns) -> tuple[np.ndarray, np.ndarray]:
        """Probabilities and decisions (``p >= threshold``, as evaluation decides) for decoded rows."""
        assert self._predict_proba is not None, "load() first"
        features = self.features(columns)
        with self._lock:
            probability = self._predict_proba(features)
        return probability, probability >= self.threshold

    def predict(
        self,
        payload: dict[str, Any] | InferRequest,
        headers: dict[str, str] | None = None,
        response_headers: dict[str, str] | None = None,
    ) -> dict[str, Any] | InferResponse:
        """One request: V2 ``InferRequest`` (REST or gRPC) or a V1 ``{"instances": [...]}`` body."""
        start = time.perf_counter()
        metrics = self._metrics
        assert metrics is not None, "load() first"
        request = payload if isinstance(payload, InferRequest) else None
        protocol = "v1" if request is None else ("v2-grpc" if request.from_grpc else "v2-rest")
        try:
            if request is not None:
                columns = codec.decode_v2(request, self.max_batch)
                probability, predicted = self.predict_columns(columns)
                response: dict[str, Any] | InferResponse = codec.encode_v2(
                    request, self.name, self.version, probability, predicted, self.decision_datatype
                )
            else:
                columns = codec.decode_v1(payload, self.max_batch)
                probability, predicted = self.predict_columns(columns)
                response = codec.encode_v1(probability, predicted)
        except InvalidInput:
            metrics.reject(protocol)
            raise
        metrics.record(protocol, columns, predicted, time.perf_counter() - start)
        return response
