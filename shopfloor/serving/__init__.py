"""Cloud predictor: the failure model behind KServe's V1 / Open Inference Protocol (V2) APIs.

``python -m shopfloor.serving --model-dir DIR`` (or ``shopfloor serve``) serves a registry
model version over REST and gRPC on loopback by default; see :mod:`shopfloor.serving.server`
for why kserve's own server start is not used, and :mod:`shopfloor.serving.codec` for the
request format (raw sensor readings in the canonical schema).
"""

from shopfloor.serving.codec import DEFAULT_MAX_BATCH, PREDICTED, PROBABILITY
from shopfloor.serving.model import FORMATS, FailureModel, ModelLoadError
from shopfloor.serving.server import DEFAULT_HOST, PredictorServer

__all__ = [
    "DEFAULT_HOST",
    "DEFAULT_MAX_BATCH",
    "FORMATS",
    "PREDICTED",
    "PROBABILITY",
    "FailureModel",
    "ModelLoadError",
    "PredictorServer",
]
