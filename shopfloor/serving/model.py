"""The failure model as a KServe model: a thin adapter over :class:`shopfloor.inference.Predictor`.

kserve types live only here and in :mod:`shopfloor.serving.codec`: ``load()`` builds the
core predictor from a version directory, ``predict()`` converts kserve's request to core
tensors (or a V1 body), asks the core, and answers in kserve's response type. The core's
:class:`~shopfloor.errors.InvalidInputError` becomes kserve's ``InvalidInput`` (HTTP 400,
gRPC INVALID_ARGUMENT) with the same bounded message. Everything happens in one synchronous
``predict`` on the event loop: a batch-64 request is ~0.1 ms of work, less than a thread
hand-off would cost.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np
from kserve import Model
from kserve.errors import InvalidInput
from kserve.protocol.infer_type import InferRequest, InferResponse

from shopfloor import contract, settings
from shopfloor.errors import InvalidInputError, bounded
from shopfloor.inference import codec as core
from shopfloor.inference.predictor import Prediction, Predictor, ProbabilityFn
from shopfloor.serving import codec
from shopfloor.serving.metrics import ModelMetrics, ServingMetrics, serving_metrics

#: Formats ``fmt`` may name: ``auto`` (the version's edge format) or a servable format (the
#: SavedModel needs TensorFlow, imported only when it is served).
FORMATS: tuple[str, ...] = (contract.AUTO_FORMAT, *contract.SERVABLE_FORMATS)


def _saved_model_predictor(directory: Path) -> ProbabilityFn:
    import tensorflow as tf  # only this format needs TensorFlow

    signature = tf.saved_model.load(str(directory)).signatures["serving_default"]

    def predict(features: np.ndarray) -> np.ndarray:
        outputs = signature(features=tf.constant(features))
        (probability,) = outputs.values()
        return np.asarray(probability, dtype=np.float64).reshape(-1)

    return predict


class FailureModel(Model):
    """Serve one model version directory (manifest, feature spec, decision, model files).

    ``fmt`` ``auto`` serves the LiteRT file the version names (int8 for an MLP, float32 for a
    tree ensemble); :attr:`fmt` and :attr:`platform` say what was loaded once :meth:`load` ran.
    """

    def __init__(
        self,
        name: str,
        version_dir: Path | str,
        fmt: str = contract.AUTO_FORMAT,
        max_batch: int = settings.MAX_BATCH,
        decision_datatype: str = "BOOL",
        metrics: ServingMetrics | None = None,
    ) -> None:
        super().__init__(name)
        if fmt not in FORMATS:
            raise InvalidInputError(f"unknown model format {fmt!r}; expected one of {list(FORMATS)}")
        if decision_datatype not in core.DECISION_DATATYPES:
            raise InvalidInputError(f"decision datatype must be BOOL or INT32, got {decision_datatype!r}")
        if max_batch < 1:
            raise InvalidInputError(f"max_batch must be >= 1, got {max_batch}")
        self.version_dir = Path(version_dir)
        self.requested_format = fmt
        self.fmt = fmt
        #: V2 metadata ``platform`` of the format served (known once loaded when ``auto``).
        self.platform = contract.PLATFORMS.get(fmt, "")
        self.max_batch = max_batch
        self.decision_datatype = decision_datatype
        self.predictor: Predictor | None = None
        self._metrics_source = metrics
        self._metrics: ModelMetrics | None = None

    @property
    def version(self) -> str:
        return self.predictor.version if self.predictor is not None else ""

    @property
    def versions(self) -> list[str]:
        """V2 model metadata ``versions``: the registry version being served."""
        return [self.version] if self.version else []

    def load(self) -> bool:
        """Read the version directory through the core; ready only once everything loaded."""
        requested = None if self.requested_format == contract.AUTO_FORMAT else self.requested_format
        loader = _saved_model_predictor if requested == contract.SAVED_MODEL_FORMAT else None
        predictor = Predictor.load(self.version_dir, requested, max_batch=self.max_batch, model_loader=loader)
        self.fmt, self.platform = predictor.fmt, predictor.platform
        metrics = self._metrics_source or serving_metrics()
        self._metrics = metrics.bind(self.name, predictor.version, predictor.data_version, self.fmt,
                                     self.platform)
        self.predictor = predictor
        self.ready = True
        return self.ready

    def get_input_types(self) -> list[dict[str, Any]]:
        return core.input_metadata()

    def get_output_types(self) -> list[dict[str, Any]]:
        return core.output_metadata(self.decision_datatype)

    def predict(
        self,
        payload: dict[str, Any] | InferRequest,
        headers: dict[str, str] | None = None,
        response_headers: dict[str, str] | None = None,
    ) -> dict[str, Any] | InferResponse:
        """One request: V2 ``InferRequest`` (REST or gRPC) or a V1 ``{"instances": [...]}`` body."""
        start = time.perf_counter()
        predictor, metrics = self.predictor, self._metrics
        assert predictor is not None and metrics is not None, "load() first"
        request = payload if isinstance(payload, InferRequest) else None
        protocol = "v1" if request is None else ("v2-grpc" if request.from_grpc else "v2-rest")
        response: dict[str, Any] | InferResponse
        try:
            if request is not None:
                prediction: Prediction = predictor.predict_v2(codec.tensors(request))
                response = codec.encode_v2(request, self.name, predictor.version, prediction.probability,
                                           prediction.predicted, self.decision_datatype)
            else:
                prediction = predictor.predict_v1(payload)
                response = codec.encode_v1(prediction.probability, prediction.predicted)
        except InvalidInputError as exc:
            metrics.reject(protocol)
            raise InvalidInput(bounded(str(exc))) from None
        metrics.record(protocol, prediction.columns, prediction.predicted, time.perf_counter() - start)
        return response
