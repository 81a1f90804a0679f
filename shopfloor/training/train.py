"""The train step as a plain function: features, Keras model, baseline, all on one split."""

from __future__ import annotations

import pickle
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from shopfloor import lineage
from shopfloor.contract import FEATURE_SPEC, SAVED_MODEL_DIR
from shopfloor.data import schema
from shopfloor.data.ingest import read_split
from shopfloor.inference.features import Featurizer
from shopfloor.steps import StepResult, Verdict
from shopfloor.training import baseline, model
from shopfloor.training.params import TrainParams, params_from_dict

__all__ = ["BASELINE", "FEATURE_SPEC", "SAVED_MODEL", "load_baseline", "params_from_dict",
           "saved_model_scorer", "score_saved_model", "train_step"]

#: The SavedModel directory inside a model artifact (the same name a registry version uses).
SAVED_MODEL = SAVED_MODEL_DIR
BASELINE = "baseline.pkl"


def train_step(data_dir: Path, out_dir: Path, params: TrainParams, data_version: str) -> StepResult:
    """Fit features on train, the MLP (validated on validation) and the baseline; write the
    SavedModel, the feature spec and the baseline with a manifest into ``out_dir``.

    Training has no gate of its own: the verdict is a pass once the model is written.
    """
    train = read_split(data_dir, "train")
    validation = read_split(data_dir, "validation")
    spec = Featurizer.fit(train)
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
    figures = {
        "final_loss": history["loss"][-1],
        "final_val_loss": history["val_loss"][-1],
        "epochs": len(history["loss"]),
    }
    lineage.write_manifest(
        out,
        "model",
        data_version=data_version,
        parameters=params.to_dict(),
        figures=figures,
        features=list(spec.names),
        input_shape=[None, len(spec.names)],
    )
    return StepResult(
        step="train",
        verdict=Verdict.PASS,
        reason=(f"trained an MLP {list(params.hidden_units)} for {figures['epochs']} epochs on {len(train)} "
                f"rows (validation loss {figures['final_val_loss']:.4f}) and the baseline"),
        metrics={**figures, "train_rows": len(train), "features": len(spec.names)},
        outputs={"model": str(out)},
    )


def load_baseline(model_dir: Path) -> Any:
    """The pickled baseline written by :func:`train_step` (trusted: our own artifact)."""
    with open(Path(model_dir) / BASELINE, "rb") as fh:
        return pickle.load(fh)


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
