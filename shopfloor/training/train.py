"""The train step as a plain function: features, then every candidate family of the release
policy (the Keras MLP, the tree ensemble) and the yardstick, all on one split.

The model artifact holds ``saved_model/`` (the MLP), ``trees.pkl`` (the tree ensemble, fitted
on float32-rounded features), ``baseline.pkl`` (the logistic-regression yardstick) and the
feature spec; :func:`candidate_scorer` is the one way later steps score a family from it.
"""

from __future__ import annotations

import pickle
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from shopfloor import lineage
from shopfloor.contract import (
    FEATURE_SPEC,
    HIST_GBT,
    KERAS_MLP,
    MODEL_FAMILIES,
    SAVED_MODEL_DIR,
    SAVED_MODEL_PB,
)
from shopfloor.data import schema
from shopfloor.data.ingest import read_split
from shopfloor.errors import IntegrityError, InvalidInputError, NotFoundError, bounded
from shopfloor.inference.features import Featurizer
from shopfloor.steps import StepResult, Verdict
from shopfloor.training import baseline, model, trees
from shopfloor.training.params import TrainParams, params_from_dict

__all__ = ["BASELINE", "FEATURE_SPEC", "SAVED_MODEL", "TREES", "candidate_scorer", "load_baseline",
           "load_trees", "params_from_dict", "saved_model_scorer", "score_saved_model", "train_step"]

#: The SavedModel directory inside a model artifact (the same name a registry version uses).
SAVED_MODEL = SAVED_MODEL_DIR
BASELINE = "baseline.pkl"
#: The fitted tree ensemble (scikit-learn, pickled; compiled to LiteRT only if it ships).
TREES = "trees.pkl"


def train_step(
    data_dir: Path, out_dir: Path, params: TrainParams, data_version: str,
    families: tuple[str, ...] = MODEL_FAMILIES,
) -> StepResult:
    """Fit features on train, then each candidate family of ``families`` (the MLP validated
    on validation; the tree ensemble) and the yardstick; write them with the feature spec and a
    manifest into ``out_dir``.

    Training has no gate of its own: the verdict is a pass once the models are written.
    """
    unknown = sorted(set(families) - set(MODEL_FAMILIES))
    if unknown or not families:
        raise InvalidInputError(f"families must be some of {list(MODEL_FAMILIES)}, got {list(families)}")
    train = read_split(data_dir, "train")
    validation = read_split(data_dir, "validation")
    spec = Featurizer.fit(train)
    x_train, x_val = spec.transform(train), spec.transform(validation)
    y_train = train[schema.TARGET].to_numpy()
    y_val = validation[schema.TARGET].to_numpy()

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    figures: dict[str, float] = {}
    trained: list[str] = []
    if KERAS_MLP in families:
        keras_model, history = model.train(x_train, y_train, x_val, y_val, params)
        model.export_saved_model(keras_model, out / SAVED_MODEL)
        figures.update(final_loss=history["loss"][-1], final_val_loss=history["val_loss"][-1],
                       epochs=len(history["loss"]))
        trained.append(f"an MLP {list(params.hidden_units)} for {figures['epochs']} epochs (validation loss "
                       f"{figures['final_val_loss']:.4f})")
    if HIST_GBT in families:
        ensemble = trees.train_trees(x_train, y_train, seed=params.seed)
        _pickle(ensemble, out / TREES)
        figures["trees"] = float(ensemble.n_iter_)
        trained.append(f"{ensemble.n_iter_} boosted trees")
    _pickle(baseline.train_baseline(x_train, y_train, seed=params.seed), out / BASELINE)
    spec.save(out / FEATURE_SPEC)
    lineage.write_manifest(
        out,
        "model",
        data_version=data_version,
        parameters=params.to_dict(),
        figures=figures,
        features=list(spec.names),
        input_shape=[None, len(spec.names)],
        families=list(families),
    )
    return StepResult(
        step="train",
        verdict=Verdict.PASS,
        reason=f"trained {' and '.join(trained)} on {len(train)} rows, and the logistic-regression yardstick",
        metrics={**figures, "train_rows": len(train), "features": len(spec.names)},
        outputs={"model": str(out)},
    )


def _pickle(obj: Any, path: Path) -> None:
    lineage.write_bytes_atomic(path, pickle.dumps(obj))  # the project's one writer and mode rule


def _unpickle(path: Path) -> Any:
    with open(path, "rb") as fh:
        return pickle.load(fh)


def load_baseline(model_dir: Path) -> Any:
    """The pickled yardstick written by :func:`train_step` (trusted: our own artifact)."""
    return _unpickle(Path(model_dir) / BASELINE)


def load_trees(model_dir: Path) -> Any:
    """The pickled tree ensemble written by :func:`train_step` (trusted: our own artifact).

    One line, not a traceback, when it is missing (the artifact was trained without the
    family), does not unpickle, or holds anything but a HistGradientBoostingClassifier: a
    different estimator would otherwise be judged as the tree family."""
    from sklearn.ensemble import HistGradientBoostingClassifier

    path = Path(model_dir) / TREES
    if not path.is_file():
        raise NotFoundError(f"the model artifact {model_dir} has no tree ensemble ({TREES}): "
                            f"it was trained without the {HIST_GBT} family")
    try:
        ensemble = _unpickle(path)
    except Exception as exc:  # a damaged pickle raises a zoo of types
        raise IntegrityError(f"{TREES} in {model_dir} does not load: {type(exc).__name__}: "
                             f"{bounded(str(exc), 120)}", TREES) from None
    if not isinstance(ensemble, HistGradientBoostingClassifier):
        raise IntegrityError(f"{TREES} in {model_dir} holds a {type(ensemble).__name__}, "
                             f"not a HistGradientBoostingClassifier", TREES)
    return ensemble


def candidate_scorer(model_dir: Path, family: str) -> Callable[[np.ndarray], np.ndarray]:
    """Failure probabilities of one candidate family of a model artifact: the MLP through its
    exported SavedModel (what is shipped is what is judged), the trees through scikit-learn on
    float32 features (the reference the compiled file is checked against)."""
    if family == KERAS_MLP:
        if not (Path(model_dir) / SAVED_MODEL_PB).is_file():
            raise NotFoundError(f"the model artifact {model_dir} has no SavedModel ({SAVED_MODEL_PB}): "
                                f"it was trained without the {KERAS_MLP} family")
        return saved_model_scorer(model_dir)
    if family == HIST_GBT:
        ensemble = load_trees(model_dir)
        return lambda features: trees.predict_trees(ensemble, features)
    raise InvalidInputError(f"unknown model family {family!r}; expected one of {list(MODEL_FAMILIES)}")


def saved_model_scorer(model_dir: Path) -> Callable[[np.ndarray], np.ndarray]:
    """Load the exported serving signature once; the returned function gives probabilities.
    What is shipped is what is judged."""
    if not (Path(model_dir) / SAVED_MODEL_PB).is_file():
        raise NotFoundError(f"{model_dir} has no SavedModel ({SAVED_MODEL_PB}) to score")
    signature = model.load_signature(Path(model_dir) / SAVED_MODEL)

    def score(features: np.ndarray) -> np.ndarray:
        out = signature(features=features.astype(np.float32))
        return np.asarray(next(iter(out.values()))).reshape(-1)

    return score


def score_saved_model(model_dir: Path, features: np.ndarray) -> np.ndarray:
    """Probabilities for one feature matrix (loads the SavedModel; use saved_model_scorer to
    score several)."""
    return saved_model_scorer(model_dir)(features)
