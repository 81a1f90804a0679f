"""The train step as a plain function: features, Keras model, baseline, all on one split."""

from __future__ import annotations

import pickle
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from shopfloor import lineage
from shopfloor.data import schema
from shopfloor.data.ingest import read_split
from shopfloor.training import baseline, model
from shopfloor.training.features import FeatureSpec

SAVED_MODEL = "saved_model"
FEATURE_SPEC = "feature_spec.json"
BASELINE = "baseline.pkl"


def train_step(data_dir: Path, out_dir: Path, params: model.TrainParams, data_version: str) -> dict[str, Any]:
    """Fit features on train, the MLP (validated on validation) and the baseline; write the
    SavedModel, the feature spec and the baseline with a manifest into ``out_dir``."""
    train = read_split(data_dir, "train")
    validation = read_split(data_dir, "validation")
    spec = FeatureSpec.fit(train)
    x_train, x_val = spec.transform(train), spec.transform(validation)
    y_train = train[schema.TARGET].to_numpy()
    y_val = validation[schema.TARGET].to_numpy()

    keras_model, history = model.train(x_train, y_train, x_val, y_val, params)
    gbm = baseline.train_baseline(x_train, y_train, seed=params.seed)

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    model.export_saved_model(keras_model, out / SAVED_MODEL)
    spec.save(out / FEATURE_SPEC)
    with open(out / BASELINE, "wb") as fh:
        pickle.dump(gbm, fh)
    return lineage.write_manifest(
        out,
        "model",
        data_version=data_version,
        parameters=params.to_dict(),
        figures={
            "final_loss": history["loss"][-1],
            "final_val_loss": history["val_loss"][-1],
            "epochs": len(history["loss"]),
        },
        features=list(spec.names),
        input_shape=[None, len(spec.names)],
    )


def load_baseline(model_dir: Path) -> Any:
    """The pickled baseline written by :func:`train_step` (trusted: our own artifact)."""
    with open(Path(model_dir) / BASELINE, "rb") as fh:
        return pickle.load(fh)


def params_from_dict(values: dict[str, Any] | None) -> model.TrainParams:
    """Pipeline parameters -> TrainParams; unknown names are an error, not ignored.

    KFP passes dict parameters as protobuf Structs, where every number is a float, so
    values are coerced to the field's type (and an integer field refuses 2.5).
    """
    params = model.TrainParams()
    if not values:
        return params
    defaults = params.to_dict()
    unknown = sorted(set(values) - set(defaults))
    if unknown:
        raise ValueError(f"unknown training parameters {unknown}; known: {sorted(defaults)}")
    coerced: dict[str, Any] = {}
    for name, value in values.items():
        default = defaults[name]
        if name == "hidden_units":
            coerced[name] = tuple(_as_int(name, u) for u in value)
        elif isinstance(default, bool | str):
            coerced[name] = type(default)(value)
        elif isinstance(default, int):
            coerced[name] = _as_int(name, value)
        elif value is None:
            coerced[name] = None
        else:
            coerced[name] = float(value)
    return replace(params, **coerced)


def _as_int(name: str, value: Any) -> int:
    if float(value) != int(float(value)):
        raise ValueError(f"training parameter {name} must be an integer, got {value!r}")
    return int(float(value))


def saved_model_scorer(model_dir: Path) -> Callable[[np.ndarray], np.ndarray]:
    """Load the exported serving signature once; the returned function gives probabilities.
    What is shipped is what is judged."""
    signature = model.load_signature(Path(model_dir) / SAVED_MODEL)

    def score(features: np.ndarray) -> np.ndarray:
        out = signature(features=features.astype(np.float32))
        return np.asarray(next(iter(out.values()))).reshape(-1)

    return score


def score_saved_model(model_dir: Path, features: np.ndarray) -> np.ndarray:
    """Probabilities for one feature matrix (loads the SavedModel; use saved_model_scorer to
    score several)."""
    return saved_model_scorer(model_dir)(features)
