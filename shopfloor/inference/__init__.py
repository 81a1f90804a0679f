"""The serving core: Open Inference Protocol codec, features, LiteRT runtime and predictor.

No kserve, pandas, FastAPI or TensorFlow here (a test imports this package in a fresh
interpreter and checks): the cloud predictor (:mod:`shopfloor.serving`, kserve) and the edge
runtime are adapters over :class:`~shopfloor.inference.predictor.Predictor`, so both answer
with the same features, the same checks and the same refusals. Training imports the
featurizer from here (``training -> inference``, never the reverse).
"""

from shopfloor.inference.codec import PREDICTED, PROBABILITY, InferenceRequest, Tensor
from shopfloor.inference.features import Featurizer, physical_features
from shopfloor.inference.predictor import Prediction, Predictor
from shopfloor.inference.refusals import RefusalLog

__all__ = [
    "PREDICTED",
    "PROBABILITY",
    "Featurizer",
    "InferenceRequest",
    "Prediction",
    "Predictor",
    "RefusalLog",
    "Tensor",
    "physical_features",
]
