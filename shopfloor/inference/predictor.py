"""The predictor core: a model version directory -> readings in, probability and decision out.

Every surface (the kserve predictor, the edge runtime, later MQTT or OPC UA) is an adapter
over :class:`Predictor`: it turns its wire format into :class:`~shopfloor.inference.codec.Tensor`
objects or V1 instances, calls :meth:`Predictor.predict_v2` / :meth:`Predictor.predict_v1`,
and encodes the :class:`Prediction`. What a version holds is read only through
:mod:`shopfloor.contract`; numpy and LiteRT only (no kserve, pandas or TensorFlow).

Thread-safe: one LiteRT interpreter owns its input and output tensors, so two threads that
share it without a lock silently get each other's results. The lock is held only around
the interpreter call (a few microseconds); features are computed outside it.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import numpy as np

from shopfloor import contract, settings
from shopfloor.data import schema
from shopfloor.errors import IntegrityError, InvalidInputError, NotFoundError
from shopfloor.inference import codec
from shopfloor.inference.features import Featurizer

#: Features [n, F] (float32) -> failure probabilities [n] (float64).
ProbabilityFn = Callable[[np.ndarray], np.ndarray]
#: Opens a model artifact that the core cannot (the SavedModel: TensorFlow, adapter-only).
ModelLoader = Callable[[Path], ProbabilityFn]
#: Rows per interpreter call for a tree version. The compiled ensemble's intermediate tensors
#: are rows x trees x nodes (and x leaves), so its memory grows with the batch: at the batch
#: cap it would outgrow the smallest device profile's memory limit. Small chunks bound it
#: and cost no time (the answers are per row, so they do not change).
TREE_CHUNK_ROWS = 64


def in_chunks(probability: ProbabilityFn, rows: int) -> ProbabilityFn:
    """``probability`` applied at most ``rows`` rows at a time, results concatenated."""
    if rows < 1:
        raise InvalidInputError(f"rows must be >= 1, got {rows}")

    def chunked(features: np.ndarray) -> np.ndarray:
        if len(features) <= rows:
            return probability(features)
        return np.concatenate([probability(features[i : i + rows]) for i in range(0, len(features), rows)])

    return chunked


def litert_scorer(model: Any, family: str) -> ProbabilityFn:
    """A LiteRT file's probabilities as its family must be called: a tree ensemble's file
    ``TREE_CHUNK_ROWS`` rows at a time, everything else whole. The one place that knows it,
    for the serving core and the convert step alike."""
    if family == contract.HIST_GBT:
        return in_chunks(model.predict_proba, TREE_CHUNK_ROWS)
    return cast(ProbabilityFn, model.predict_proba)


@dataclass(frozen=True)
class Prediction:
    """One request's answer, plus the decoded readings (for metrics and logs)."""

    columns: codec.Columns
    probability: np.ndarray
    predicted: np.ndarray

    @property
    def rows(self) -> int:
        return len(self.probability)


class Predictor:
    """One model version, ready to answer: decision threshold, featurizer, model."""

    def __init__(
        self,
        featurizer: Featurizer,
        probability: ProbabilityFn,
        decision: contract.Decision,
        *,
        version: str,
        data_version: str = "",
        fmt: str,
        max_batch: int = settings.MAX_BATCH,
    ) -> None:
        if max_batch < 1:
            raise InvalidInputError(f"max_batch must be >= 1, got {max_batch}")
        self.featurizer = featurizer
        self.decision = decision
        self.threshold = decision.threshold
        self.version = version
        self.data_version = data_version
        self.fmt = fmt
        self.platform = contract.PLATFORMS[fmt]
        self.max_batch = max_batch
        self._probability = probability
        self._lock = threading.Lock()
        self._answers: dict[tuple[str, str], codec.PlainAnswer] = {}

    @classmethod
    def load(
        cls,
        version_dir: Path | str,
        fmt: str | None = None,
        *,
        prefer: str | None = None,
        max_batch: int = settings.MAX_BATCH,
        model_loader: ModelLoader | None = None,
    ) -> Predictor:
        """Read a version directory through the contract; refuse one that does not hold together.

        ``fmt`` None: the LiteRT file the version runs (:func:`contract.choose_format`, with
        ``prefer`` when the version has it: a device profile's preference), never an assumed
        int8; a tree version has only float32. An explicit ``fmt`` the version lacks is refused
        naming the formats it has. LiteRT formats load here; another format (the SavedModel)
        needs ``model_loader``.
        """
        directory = Path(version_dir)
        if not directory.is_dir():
            raise NotFoundError(f"model version directory not found: {directory}")
        manifest = contract.load_manifest(directory)
        fmt = manifest.resolve_format(fmt, prefer)
        artifact = directory / contract.model_artifact(fmt)
        decision = contract.load_decision(directory)
        if decision.inputs and tuple(decision.inputs) != schema.INPUT_COLUMNS:
            raise IntegrityError(
                f"{contract.DECISION}: the model takes inputs {list(decision.inputs)}, this predictor "
                f"decodes {list(schema.INPUT_COLUMNS)}", contract.DECISION)
        featurizer = Featurizer.from_version(directory)
        if not artifact.exists():
            raise IntegrityError(f"{fmt} model missing: {artifact}", contract.model_artifact(fmt))
        probability: ProbabilityFn
        if fmt in contract.LITERT_FORMATS:
            from shopfloor.inference.runtime import LiteRTModel

            lite = LiteRTModel(artifact)
            if lite.n_features != len(featurizer.names):
                raise IntegrityError(
                    f"{artifact.name} takes {lite.n_features} features, the feature spec makes "
                    f"{len(featurizer.names)}", artifact.name)
            probability = litert_scorer(lite, manifest.model_family)
        elif model_loader is not None:
            probability = model_loader(artifact)
        else:
            raise InvalidInputError(f"format {fmt} needs a model loader (the SavedModel needs TensorFlow: "
                                    "serve it through shopfloor.serving)")
        return cls(featurizer, probability, decision, version=manifest.version,
                   data_version=manifest.data_version or "", fmt=fmt, max_batch=max_batch)

    def features(self, columns: codec.Columns) -> np.ndarray:
        """Standardised model input: the training feature code, applied to decoded columns."""
        return self.featurizer.transform(columns)

    def predict(self, columns: codec.Columns) -> Prediction:
        """Probabilities and decisions (``p >= threshold``, as evaluation decides) for decoded rows."""
        features = self.features(columns)
        with self._lock:
            probability = self._probability(features)
        return Prediction(columns, probability, probability >= self.threshold)

    def predict_v2(self, inputs: Sequence[codec.Tensor]) -> Prediction:
        return self.predict(codec.decode_columns(inputs, self.max_batch))

    def predict_v1(self, body: Any) -> Prediction:
        return self.predict(codec.decode_v1(body, self.max_batch))

    def answer_v2(self, request: codec.InferenceRequest, model_name: str,
                  decision_datatype: str = "BOOL") -> tuple[bytes, int | None, Prediction]:
        """A whole V2 exchange: parsed request -> response body (and binary header length)."""
        prediction = self.predict_v2(request.inputs)
        outputs = codec.output_tensors(prediction.probability, prediction.predicted, decision_datatype)
        body, json_length = codec.encode_response(request, model_name, self.version, outputs)
        return body, json_length, prediction

    def answer_v2_body(self, body: bytes, header_length: str | bytes | int | None, model_name: str,
                       decision_datatype: str = "BOOL") -> tuple[bytes, int | None, Prediction]:
        """:meth:`answer_v2` from the raw REST body: the common JSON request takes a one-pass
        decode and a precomputed response frame; every other body the strict path. Same bytes."""
        plain = codec.plain_json_columns(body, self.max_batch) if header_length is None else None
        if plain is None:
            return self.answer_v2(codec.parse_request(body, header_length), model_name, decision_datatype)
        columns, request_id = plain
        prediction = self.predict(columns)
        key = (model_name, decision_datatype)
        answer = self._answers.get(key)
        if answer is None:
            answer = self._answers[key] = codec.PlainAnswer(model_name, self.version, decision_datatype)
        return answer.body(prediction.probability, prediction.predicted, request_id), None, prediction
