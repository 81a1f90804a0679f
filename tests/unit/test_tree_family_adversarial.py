"""Adversarial tests of the tree family: odd ensembles through the compiler, extreme inputs and
scores, batch against single rows, decisions at the threshold, bad artifacts and policies.

The reference is always :func:`shopfloor.training.trees.predict_trees` (scikit-learn on
float32-rounded features), the thing the compiled LiteRT file must reproduce.
"""

from __future__ import annotations

import copy
import json
import os
import pickle
import shutil
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from shopfloor import contract
from shopfloor.contract import ReleasePolicy
from shopfloor.conversion import trees as compiler
from shopfloor.conversion.convert import ConversionError
from shopfloor.conversion.step import convert_step
from shopfloor.data import schema
from shopfloor.data.ingest import ingest
from shopfloor.errors import IntegrityError, InvalidInputError, NotFoundError, ShopfloorError
from shopfloor.evaluation import metrics
from shopfloor.evaluation.evaluate import evaluate_step, select_winner
from shopfloor.evaluation.policy import load_policy
from shopfloor.inference.predictor import TREE_CHUNK_ROWS, Predictor, in_chunks
from shopfloor.inference.runtime import LiteRTModel
from shopfloor.training.params import TrainParams
from shopfloor.training.train import TREES, candidate_scorer, load_trees, train_step
from shopfloor.training.trees import as_float32, predict_trees
from tests.fixtures.versions import PUBLISHED_MLP, as_tree_version

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # TF is imported lazily, by the compiler
#: Largest |probability difference| accepted against scikit-learn (float32 leaf sums).
MAX_DIFF = 1e-5
#: Operating points the decisions are compared at, out to the float32-resolvable extremes.
THRESHOLDS = (1e-12, 1e-9, 1e-6, 0.01, 0.1, 0.5, 0.9, 0.9999, 0.999999)


def _hgb(**params: Any) -> Any:
    from sklearn.ensemble import HistGradientBoostingClassifier

    return HistGradientBoostingClassifier(**{"early_stopping": False, "random_state": 0, **params})


def _compiled(model: Any, n_features: int, where: Path, representative: np.ndarray) -> LiteRTModel:
    _, files = compiler.compile_and_convert(model, n_features, where / "saved_model", where / "edge",
                                            representative)
    return LiteRTModel(files["float32"])


def _same_as_sklearn(model: Any, lite: LiteRTModel, x: np.ndarray) -> None:
    """Batch and single-row answers of the file agree with scikit-learn, decisions exactly."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # float32 overflow of huge inputs: intended
        reference = predict_trees(model, x)
        rows = as_float32(x)
    batch = lite.predict_proba(rows)
    single = np.array([lite.predict_one(row) for row in rows])
    assert np.isfinite(batch).all() and ((batch >= 0) & (batch <= 1)).all()
    np.testing.assert_array_equal(single, batch)  # same graph, same answer, row by row
    assert np.abs(batch - reference).max() < MAX_DIFF
    for threshold in THRESHOLDS:
        np.testing.assert_array_equal(batch >= threshold, reference >= threshold, err_msg=f"at {threshold}")


# --- odd ensembles through the compiler ------------------------------------------------------


def _noisy(rows: int = 600, features: int = 4, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(rows, features))
    y = (x[:, 0] + 0.5 * x[:, 1] + rng.normal(size=rows) > 1.0).astype(int)
    return x, y


def _with_nan(x: np.ndarray, seed: int = 1) -> np.ndarray:
    out = x.copy()
    out[np.random.default_rng(seed).random(out.shape) < 0.2] = np.nan
    out[:, 3] = x[:, 3]  # one column never missing
    return out


ODD = {
    "one iteration": (lambda: _hgb(max_iter=1), _noisy),
    "single-leaf trees (constant features)": (
        lambda: _hgb(max_iter=4), lambda: (np.ones((200, 4)), np.arange(200) % 2)),
    "single-leaf trees (min_samples_leaf above the rows)": (
        lambda: _hgb(max_iter=4, min_samples_leaf=10_000), _noisy),
    "deep unbounded trees": (
        lambda: _hgb(max_iter=3, max_leaf_nodes=None, max_depth=None, min_samples_leaf=1), _noisy),
    "NaN in training data": (lambda: _hgb(max_iter=30), lambda: (_with_nan(_noisy()[0]), _noisy()[1])),
    "class_weight balanced": (lambda: _hgb(max_iter=30, class_weight="balanced"), _noisy),
    "one split in all, other features unused": (lambda: _hgb(max_iter=1, max_leaf_nodes=2), _noisy),
}


@pytest.mark.parametrize("case", list(ODD))
def test_odd_ensembles_compile_to_the_same_answers(case: str, tmp_path: Path) -> None:
    make, data = ODD[case]
    x, y = data()
    model = make().fit(as_float32(x), y)
    lite = _compiled(model, x.shape[1], tmp_path, np.nan_to_num(x))
    probe = np.vstack([x, _with_nan(x[:50], seed=7)])  # NaN also where training had none
    _same_as_sklearn(model, lite, probe)


def test_unused_features_do_not_matter_even_as_nan_or_inf(tmp_path: Path) -> None:
    x, y = _noisy()
    model = _hgb(max_iter=1, max_leaf_nodes=2).fit(as_float32(x), y)
    internal = [n for n in model._predictors[0][0].nodes if not n["is_leaf"]]
    used = {int(n["feature_idx"]) for n in internal}
    assert len(used) == 1, "the case needs features the ensemble never reads"
    lite = _compiled(model, 4, tmp_path, x)
    clean = lite.predict_proba(as_float32(x))
    for junk in (np.nan, np.inf, -np.inf, 3e38):
        dirty = as_float32(x).copy()
        dirty[:, [f for f in range(4) if f not in used]] = junk
        np.testing.assert_array_equal(lite.predict_proba(dirty), clean, err_msg=f"unused columns = {junk}")


# --- extreme inputs and scores ---------------------------------------------------------------


def test_infinite_huge_tiny_and_signed_zero_inputs(tmp_path: Path) -> None:
    x, y = _noisy()
    model = _hgb(max_iter=40).fit(as_float32(_with_nan(x)), y)
    lite = _compiled(model, 4, tmp_path, x)
    specials = np.array([np.inf, -np.inf, np.nan, 1e38, -1e38, 3e38, -3e38, 1e300, 1e-45, -1e-45, 0.0, -0.0])
    grid = np.array(np.meshgrid(*[specials] * 2)).reshape(2, -1).T  # every pair in columns 0 and 1
    rows = np.tile(x[:1], (len(grid), 1))
    rows[:, :2] = grid
    _same_as_sklearn(model, lite, rows)


def test_extreme_raw_scores_saturate_like_scikit_learn(tmp_path: Path) -> None:
    """Leaf values scaled up so raw scores reach about +-60: the float32 sigmoid must still
    decide like scikit-learn's float64 one at every threshold float32 can resolve."""
    x, y = _noisy(rows=2000)
    model = _hgb(max_iter=60, learning_rate=0.5).fit(as_float32(x), y)
    for iteration in model._predictors:
        iteration[0].nodes["value"] *= 8.0
    raw = model.decision_function(as_float32(x))
    assert raw.min() < -30 and raw.max() > 30, "the case needs saturated scores"
    lite = _compiled(model, 4, tmp_path, x)
    _same_as_sklearn(model, lite, x)


def test_batch_of_one_and_of_the_cap_give_the_same_bits_row_by_row(tmp_path: Path) -> None:
    x, y = _noisy(rows=1024 + 37)
    model = _hgb(max_iter=50).fit(as_float32(x), y)
    lite = _compiled(model, 4, tmp_path, x)
    rows = as_float32(x)
    whole = np.concatenate([lite.predict_proba(rows[:1024]), lite.predict_proba(rows[1024:])])
    chunked = in_chunks(lite.predict_proba, TREE_CHUNK_ROWS)(rows)
    ones = np.array([lite.predict_proba(rows[i : i + 1])[0] for i in range(len(rows))])
    np.testing.assert_array_equal(chunked, whole)
    np.testing.assert_array_equal(ones, whole)


def test_rows_tied_with_the_threshold_decide_alike_on_the_edge(tmp_path: Path) -> None:
    """Discrete readings (integer rpm, wear minutes) make tree scores repeat exactly: the
    threshold evaluate chooses on validation must decide test rows alike on the edge."""
    rng = np.random.default_rng(1)
    x = rng.integers(0, 4, size=(3000, 3)).astype(float)
    y = (rng.random(3000) < 1 / (1 + np.exp(-(x[:, 0] + x[:, 1] - 4)))).astype(int)
    model = _hgb(max_iter=5).fit(as_float32(x[:1000]), y[:1000])
    validation = predict_trees(model, x[1000:2000])
    threshold = metrics.choose_threshold(y[1000:2000], validation, 0.8)
    lite = _compiled(model, 3, tmp_path, x)
    reference, edge = predict_trees(model, x[2000:]), lite.predict_proba(as_float32(x[2000:]))
    chosen = validation[validation >= threshold].min()  # the validation score the cut was made at
    assert (reference == chosen).sum() > 0, "the case needs test rows tied with the chosen score"
    np.testing.assert_array_equal(edge >= threshold, reference >= threshold)


# --- the predictor bounds a tree file's memory -----------------------------------------------


def test_a_tree_version_never_runs_more_than_a_chunk_per_interpreter_call(
    tmp_path: Path, real_frame: pd.DataFrame, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The compiled ensemble's tensors grow with the batch; the predictor feeds a tree version's
    file at most TREE_CHUNK_ROWS rows per call (same answers), an MLP version its whole batch."""
    tree = as_tree_version(Path(shutil.copytree(PUBLISHED_MLP, tmp_path / "v0001")))
    seen: list[int] = []
    original = LiteRTModel.predict_proba

    def spy(self: LiteRTModel, x: np.ndarray) -> np.ndarray:
        seen.append(len(x))
        return original(self, x)

    monkeypatch.setattr(LiteRTModel, "predict_proba", spy)
    rows = real_frame.sample(1000, random_state=5)
    columns = {name: rows[name].to_numpy() for name in schema.INPUT_COLUMNS}
    answers = Predictor.load(tree).predict(columns).probability
    assert max(seen) == TREE_CHUNK_ROWS and sum(seen) == 1000
    seen.clear()
    mlp = Predictor.load(PUBLISHED_MLP, "float32").predict(columns).probability
    assert seen == [1000]
    np.testing.assert_array_equal(answers, mlp)  # same file, chunked or not: same answers


def test_in_chunks_wants_a_positive_size() -> None:
    with pytest.raises(InvalidInputError, match="rows must be >= 1, got 0"):
        in_chunks(lambda x: x, 0)


# --- selection by the policy's rule ----------------------------------------------------------


def test_reversed_prefer_ships_the_trees_when_non_inferior_to_a_slightly_better_mlp() -> None:
    rng = np.random.default_rng(0)
    y = np.zeros(2000, dtype=int)
    y[rng.choice(2000, 68, replace=False)] = 1
    strong = np.clip(0.45 * y + 0.6 * rng.random(2000), 0, 1)
    worse = strong.copy()
    failures = np.flatnonzero(y == 1)
    worse[failures[np.argsort(strong[failures])][:5]] -= 0.05
    base = load_policy()
    reversed_ = ReleasePolicy.from_dict({**base.to_dict(),
                                         "selection": {"prefer": ["hist-gbt", "keras-mlp"]}})
    scores = {"keras": strong, "trees": worse}
    assert select_winner(y, scores, ["keras-mlp", "hist-gbt"], base, seed=0).winner == "keras-mlp"
    chosen = select_winner(y, scores, ["keras-mlp", "hist-gbt"], reversed_, seed=0)
    assert chosen.winner == "hist-gbt" and "preferred over keras-mlp and non-inferior" in chosen.reason
    # Preferred but not eligible: the other family ships on its own merit.
    assert select_winner(y, scores, ["keras-mlp"], reversed_, seed=0).winner == "keras-mlp"


# --- bad artifacts, policies and evaluations: one line, nothing written ----------------------


@pytest.fixture(scope="module")
def trees_only(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The embedded data and a model artifact trained for the tree family only (fast)."""
    root = tmp_path_factory.mktemp("trees-only")
    data_version = ingest("embedded:ai4i2020", root / "data").outputs["data_version"]
    train_step(root / "data", root / "model", TrainParams(), data_version, families=(contract.HIST_GBT,))
    return {"data": root / "data", "model": root / "model", "root": root}


def _one_line(error: BaseException) -> str:
    text = str(error)
    assert isinstance(error, ShopfloorError) and "\n" not in text and len(text) < 400, text
    return text


def _artifact_with(trees_only: dict[str, Path], tmp_path: Path, content: bytes | None) -> Path:
    model = Path(shutil.copytree(trees_only["model"], tmp_path / "model"))
    if content is None:
        (model / TREES).unlink()
    else:
        (model / TREES).write_bytes(content)
    return model


def _logistic_pickle() -> bytes:
    from sklearn.linear_model import LogisticRegression

    return pickle.dumps(LogisticRegression().fit(np.eye(4), [0, 1, 0, 1]))


@pytest.mark.parametrize(("content", "error", "message"), [
    (b"not a pickle", IntegrityError, "trees.pkl in {model} does not load: UnpicklingError"),
    (pickle.dumps({"trees": 300}), IntegrityError,
     "trees.pkl in {model} holds a dict, not a HistGradientBoostingClassifier"),
    (_logistic_pickle(), IntegrityError,
     "trees.pkl in {model} holds a LogisticRegression, not a HistGradientBoostingClassifier"),
    (None, NotFoundError, "the model artifact {model} has no tree ensemble (trees.pkl): "
                          "it was trained without the hist-gbt family"),
])
def test_a_bad_trees_pkl_is_one_line_in_evaluate_and_convert(
    content: bytes | None, error: type[Exception], message: str, trees_only: dict[str, Path], tmp_path: Path
) -> None:
    """Not judged as the tree family (a LogisticRegression used to be), never a traceback."""
    model = _artifact_with(trees_only, tmp_path, content)
    expected = message.format(model=model)
    with pytest.raises(error) as caught:
        load_trees(model)
    assert _one_line(caught.value).startswith(expected)
    policy = ReleasePolicy.from_dict({**load_policy().to_dict(), "candidates": ["hist-gbt"]})
    with pytest.raises(ShopfloorError) as in_evaluate:
        evaluate_step(trees_only["data"], model, tmp_path / "evaluation", data_version="x", policy=policy)
    assert _one_line(in_evaluate.value).startswith(expected)
    assert not (tmp_path / "evaluation").exists()


def test_evaluating_a_family_the_artifact_was_not_trained_for_is_one_line(
    trees_only: dict[str, Path], tmp_path: Path
) -> None:
    with pytest.raises(NotFoundError) as caught:
        candidate_scorer(trees_only["model"], contract.KERAS_MLP)
    assert _one_line(caught.value) == (f"the model artifact {trees_only['model']} has no SavedModel "
                                       "(saved_model/saved_model.pb): it was trained without the "
                                       "keras-mlp family")
    with pytest.raises(NotFoundError):  # the default policy has both candidates
        evaluate_step(trees_only["data"], trees_only["model"], tmp_path / "evaluation", data_version="x")
    assert not (tmp_path / "evaluation").exists()
    with pytest.raises(InvalidInputError, match=r"unknown model family 'xgboost'"):
        candidate_scorer(trees_only["model"], "xgboost")


@pytest.mark.parametrize("selected", [None, "xgboost", ["hist-gbt"], "x" * 5000])
def test_convert_refuses_an_evaluation_that_selected_no_family(
    selected: Any, trees_only: dict[str, Path], tmp_path: Path
) -> None:
    evaluation = tmp_path / "evaluation"
    evaluation.mkdir()
    (evaluation / contract.EVALUATION_REPORT).write_text(json.dumps({"selected": selected, "threshold": 0.5}))
    with pytest.raises(ConversionError) as caught:
        convert_step(trees_only["data"], trees_only["model"], evaluation, tmp_path / "edge",
                     tmp_path / "equivalence.json", data_version="x")
    assert _one_line(caught.value).startswith("the evaluation selected no family to convert (selected: ")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["evaluation"]


def test_convert_refuses_an_mlp_winner_the_artifact_does_not_hold(trees_only: dict[str, Path],
                                                                  tmp_path: Path) -> None:
    evaluation = tmp_path / "evaluation"
    evaluation.mkdir()
    report = {"selected": "keras-mlp", "threshold": 0.5}
    (evaluation / contract.EVALUATION_REPORT).write_text(json.dumps(report))
    with pytest.raises(ConversionError) as caught:
        convert_step(trees_only["data"], trees_only["model"], evaluation, tmp_path / "edge",
                     tmp_path / "equivalence.json", data_version="x")
    assert _one_line(caught.value) == ("the model artifact has no SavedModel (saved_model/saved_model.pb) "
                                       "to convert")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["evaluation"]


@pytest.mark.parametrize("candidates", [["xgboost"], [], ["hist-gbt", "hist-gbt"], "hist-gbt"])
def test_policy_with_unknown_or_malformed_candidates_is_one_line(candidates: Any) -> None:
    with pytest.raises(InvalidInputError) as caught:
        ReleasePolicy.from_dict({**load_policy().to_dict(), "candidates": candidates})
    assert _one_line(caught.value).startswith("policy policy: candidates must list distinct families")


def test_train_refuses_an_unknown_family_before_writing(trees_only: dict[str, Path], tmp_path: Path) -> None:
    with pytest.raises(InvalidInputError) as caught:
        train_step(trees_only["data"], tmp_path / "model", TrainParams(), "x", families=("xgboost",))
    assert _one_line(caught.value) == "families must be some of ['keras-mlp', 'hist-gbt'], got ['xgboost']"
    assert not (tmp_path / "model").exists()


def test_the_trees_only_artifact_holds_no_savedmodel_and_scores_like_scikit_learn(
    trees_only: dict[str, Path]
) -> None:
    """A tree-only policy trains no MLP: nothing later may expect ``saved_model/`` in it."""
    model = trees_only["model"]
    assert not (model / contract.SAVED_MODEL_DIR).exists()
    manifest = json.loads((model / contract.MANIFEST).read_text())
    assert manifest["families"] == ["hist-gbt"]
    ensemble = load_trees(model)
    x = np.random.default_rng(0).normal(size=(20, ensemble.n_features_in_))
    np.testing.assert_array_equal(candidate_scorer(model, contract.HIST_GBT)(x), predict_trees(ensemble, x))
    assert copy.deepcopy(ensemble).n_iter_ == ensemble.n_iter_ == 300
