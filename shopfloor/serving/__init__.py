"""Cloud predictor: the failure model behind KServe's V1 / Open Inference Protocol (V2) APIs.

``python -m shopfloor.serving --model-dir DIR`` (or ``shopfloor serve``) serves a registry
model version over REST and gRPC on loopback by default. This package is the kserve adapter
over the serving core :mod:`shopfloor.inference` (codec, features, LiteRT, predictor): see
:mod:`shopfloor.serving.server` for the routes and limits, :mod:`shopfloor.serving.options`
for the flags. Exports are imported lazily, so ``shopfloor.serving.options`` (what
``shopfloor --help`` needs) does not pull in kserve.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "FailureModel": "shopfloor.serving.model",
    "FORMATS": "shopfloor.serving.model",
    "PredictorServer": "shopfloor.serving.server",
    "Limits": "shopfloor.serving.server",
    "DEFAULT_HOST": "shopfloor.serving.server",
    "PREDICTED": "shopfloor.inference.codec",
    "PROBABILITY": "shopfloor.inference.codec",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)
