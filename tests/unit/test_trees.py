"""The tree ensemble compiled to TensorFlow ops and LiteRT: parity, float32 thresholds, NaN, refusals.

The reference is always :func:`shopfloor.training.trees.predict_trees` (scikit-learn on
float32-rounded features: what a float32 edge file sees). One AI4I ensemble (the project's
hyper-parameters, real features) and one synthetic ensemble with learnt missing-value
directions are compiled and converted once per module.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from shopfloor import contract
from shopfloor.conversion import trees as compiler
from shopfloor.conversion.convert import ConversionError
from shopfloor.data import schema
from shopfloor.data.split import stratified_split
from shopfloor.errors import InvalidInputError
from shopfloor.inference.features import Featurizer
from shopfloor.inference.runtime import LiteRTModel
from shopfloor.training.trees import TREE_PARAMS, as_float32, predict_trees, train_trees

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # TF is imported lazily, in the fixtures
REPO = Path(__file__).resolve().parents[2]
FLOAT32_FILE = contract.litert_file("float32")
#: Operating points the decisions are compared at.
THRESHOLDS = (0.02, 0.05, 0.1, 0.25, 0.5, 0.75, 0.9, 0.99)
#: Largest |probability difference| accepted against the reference (float32 leaf sums).
MAX_DIFF = 1e-5


def _litert(model: LiteRTModel, x: np.ndarray, chunk: int = 2000) -> np.ndarray:
    """Batch probabilities in chunks: the GEMM form holds [trees, batch, leaves] floats."""
    return np.concatenate([model.predict_proba(x[i : i + chunk]) for i in range(0, len(x), chunk)])


def _saved_model(directory: Path, signature: str, x: np.ndarray) -> np.ndarray:
    import tensorflow as tf

    fn = tf.saved_model.load(str(directory)).signatures[signature]
    (out,) = fn(features=tf.constant(as_float32(x))).values()
    assert out.shape == (len(x), 1) and out.dtype == tf.float32
    return np.asarray(out, dtype=np.float64).reshape(-1)


def _assert_same_decisions(reference: np.ndarray, other: np.ndarray) -> None:
    assert np.isfinite(other).all()
    assert np.abs(other - reference).max() < MAX_DIFF
    for threshold in THRESHOLDS:
        np.testing.assert_array_equal(other >= threshold, reference >= threshold, err_msg=f"at {threshold}")


def _per_tree_sklearn(model: Any, x: np.ndarray) -> np.ndarray:
    """Each tree's leaf value per row ``[rows, trees]`` from scikit-learn's own predictors."""
    known, f_idx_map = model._bin_mapper.make_known_categories_bitsets()
    x64 = np.ascontiguousarray(as_float32(x), dtype=np.float64)
    return np.stack([it[0].predict(x64, known, f_idx_map, 1) for it in model._predictors], axis=1)


def _per_tree_compiled(compiled: compiler.CompiledTrees, x: np.ndarray) -> np.ndarray:
    """The compiled arrays evaluated in numpy exactly like the graph: leaf value per row and tree."""
    x = as_float32(x)
    present = ~np.isnan(x)
    columns = np.concatenate([x, -x, present.astype(np.float32)], axis=1)
    passed = (columns[:, compiled.gather_index] >= compiled.bound).astype(np.float32)  # NaN -> False
    counts = np.einsum("bti,til->btl", passed, compiled.paths)
    reached = counts == compiled.target
    assert (reached.sum(axis=2) == 1).all(), "every row must reach exactly one leaf per tree"
    return np.asarray((reached * compiled.values).sum(axis=2))


def _compile(model: Any, n_features: int, where: Path, representative: np.ndarray
             ) -> tuple[Path, LiteRTModel]:
    saved, files = compiler.compile_and_convert(model, n_features, where / "saved_model", where / "edge",
                                                representative)
    assert set(files) == {"float32"} and files["float32"] == where / "edge" / FLOAT32_FILE
    assert sorted(p.name for p in (where / "edge").iterdir()) == [FLOAT32_FILE]
    return saved, LiteRTModel(files["float32"])


@pytest.fixture(scope="module")
def ai4i(real_frame: pd.DataFrame, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The project's ensemble on real AI4I features (the train step's split and featurizer)."""
    parts = stratified_split(real_frame.copy())
    spec = Featurizer.fit(parts["train"])
    x_train, x_test = spec.transform(parts["train"]), spec.transform(parts["test"])
    model = train_trees(x_train, parts["train"][schema.TARGET].to_numpy())
    saved, lite = _compile(model, x_train.shape[1], tmp_path_factory.mktemp("ai4i"), x_train)
    return {"model": model, "x_train": x_train, "x_test": x_test, "saved": saved, "lite": lite}


def _missing_data(rows: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Four features with NaN in every column; whether a value is missing carries signal with
    both signs (col 0 and 2: missing -> failure; col 1: missing -> healthy), so the ensemble
    learns NaN going left at some nodes, right at others, and splits on NaN itself."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(rows, 4))
    logit = 1.5 * x[:, 0] - 1.0 * x[:, 1] + 0.8 * x[:, 3] - 2.0
    missing = rng.random((rows, 4)) < np.array([0.12, 0.12, 0.15, 0.08])
    logit += 2.0 * missing[:, 0] - 2.0 * missing[:, 1] + 2.5 * missing[:, 2]
    x[:, 2] = rng.normal(size=rows)  # column 2 is noise except for being missing
    x[missing] = np.nan
    y = (rng.random(rows) < 1 / (1 + np.exp(-logit))).astype(int)
    return x, y


@pytest.fixture(scope="module")
def with_missing(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    x, y = _missing_data(3000, seed=3)
    model = train_trees(x, y)
    saved, lite = _compile(model, 4, tmp_path_factory.mktemp("missing"), np.nan_to_num(x))
    return {"model": model, "saved": saved, "lite": lite}


# --- parity on real features -----------------------------------------------------------------


def test_savedmodel_and_litert_match_scikit_learn_on_ai4i(ai4i: dict[str, Any]) -> None:
    x = ai4i["x_test"]
    reference = predict_trees(ai4i["model"], x)
    assert (reference >= 0.5).sum() > 20  # the test split has failures the ensemble finds
    _assert_same_decisions(reference, _saved_model(ai4i["saved"], "serving_default", x))
    _assert_same_decisions(reference, _litert(ai4i["lite"], x))
    single = np.array([ai4i["lite"].predict_one(row) for row in x[:50]])
    _assert_same_decisions(reference[:50], single)


def test_logits_signature_is_the_raw_score(ai4i: dict[str, Any]) -> None:
    x = ai4i["x_test"][:500]
    raw = ai4i["model"].decision_function(as_float32(x))
    logits = _saved_model(ai4i["saved"], "logits", x)
    assert np.abs(logits - raw).max() < 1e-4
    np.testing.assert_allclose(1 / (1 + np.exp(-logits)), _saved_model(ai4i["saved"], "serving_default", x),
                               atol=1e-6)


def test_private_layout_is_pinned_and_parsed_exactly(ai4i: dict[str, Any]) -> None:
    """Fails loudly when a scikit-learn upgrade changes what the compiler reads."""
    import sklearn
    from sklearn.ensemble._hist_gradient_boosting.common import PREDICTOR_RECORD_DTYPE

    pinned = re.search(r"^scikit-learn==(\d+)\.(\d+)\.", (REPO / "requirements/lock.txt").read_text(), re.M)
    assert pinned is not None
    assert (int(pinned[1]), int(pinned[2])) == compiler.SUPPORTED_SKLEARN
    assert sklearn.__version__.startswith(f"{pinned[1]}.{pinned[2]}.")
    assert set(compiler.NODE_FIELDS) <= set(PREDICTOR_RECORD_DTYPE.names or ())
    model = ai4i["model"]
    assert model._baseline_prediction.shape == (1, 1)
    assert len(model._predictors) == TREE_PARAMS["max_iter"]
    # The compiled arrays pick, tree by tree, exactly the leaf scikit-learn's own predictors pick.
    compiled = compiler.compile_trees(model, ai4i["x_test"].shape[1])
    x = ai4i["x_test"][:400]
    np.testing.assert_array_equal(_per_tree_compiled(compiled, x),
                                  _per_tree_sklearn(model, x).astype(np.float32))
    raw = compiled.baseline + _per_tree_sklearn(model, x).sum(axis=1)
    np.testing.assert_allclose(raw, model.decision_function(as_float32(x)), rtol=0, atol=1e-9)


# --- float32 thresholds ----------------------------------------------------------------------


@pytest.mark.filterwarnings("ignore:overflow encountered:RuntimeWarning")
def test_float32_floor_keeps_every_float32_comparison() -> None:
    rng = np.random.default_rng(0)
    t64 = np.concatenate([rng.normal(scale=10, size=5000), [0.0, -0.0, 1e-45, 1e300, -1e300, np.inf, -np.inf,
                                                           7.6, 7.6000000000000227, 3.4028235e38]])
    t32 = compiler.float32_floor(t64)
    assert t32.dtype == np.float32
    assert (t32.astype(np.float64) <= t64).all()
    above = np.nextafter(t32, np.float32(np.inf)).astype(np.float64)
    assert ((above > t64) | (t32 == np.finfo(np.float32).max) | np.isinf(t32)).all()
    # Candidates around each threshold: x <= t64 iff x <= t32 for every float32 x.
    for x in (t32, above.astype(np.float32), np.nextafter(t32, np.float32(-np.inf)), t64.astype(np.float32)):
        np.testing.assert_array_equal(x.astype(np.float64) <= t64, x <= t32)


def test_values_exactly_at_thresholds_pick_the_same_leaves(ai4i: dict[str, Any]) -> None:
    """Every split threshold: feature values at its float32 floor and one float32 step either
    side, in a predicted-failure row and a healthy row. The leaf of every tree and the
    decision must match scikit-learn on the same float32 input."""
    model, x_test = ai4i["model"], ai4i["x_test"]
    nodes = np.concatenate([it[0].nodes for it in model._predictors])
    splits = np.unique(nodes[nodes["is_leaf"] == 0][["feature_idx", "num_threshold"]])
    assert len(splits) > 500
    reference_test = predict_trees(model, x_test)
    bases = x_test[[int(np.argmax(reference_test)), int(np.argmin(reference_test))]]
    rows = []
    for feature, t64 in zip(splits["feature_idx"], splits["num_threshold"], strict=True):
        t32 = compiler.float32_floor(np.array([t64]))[0]
        for value in (t32, np.nextafter(t32, np.float32(np.inf)), np.nextafter(t32, np.float32(-np.inf))):
            block = bases.copy()
            block[:, feature] = value
            rows.append(block)
    x = np.concatenate(rows)
    reference = predict_trees(model, x)
    assert 0.1 < np.mean(reference >= 0.5) < 0.9  # both sides of the decision are exercised
    compiled = compiler.compile_trees(model, x.shape[1])
    np.testing.assert_array_equal(_per_tree_compiled(compiled, x),
                                  _per_tree_sklearn(model, x).astype(np.float32))
    _assert_same_decisions(reference, _litert(ai4i["lite"], x))


def test_float64_training_flips_edge_decisions_float32_training_does_not(tmp_path: Path) -> None:
    """Two doubles that round to one float32 (7.6 and 7.6000000000000227, a temperature
    difference of the issue) carry the label. Fitted on float64, the ensemble splits between
    them, so its float64 predictions cannot be reproduced by any float32 edge file: the
    compiled file matches scikit-learn on float32 input, and flips against float64 input.
    train_trees rounds first: nothing can split there, and train_trees + predict_trees + the
    LiteRT file agree on every decision."""
    from sklearn.ensemble import HistGradientBoostingClassifier

    rng = np.random.default_rng(1)
    rows = 2000
    hot = rng.random(rows) < 0.3
    x = np.column_stack([np.where(hot, 7.6000000000000227, 7.6), rng.normal(size=(rows, 2))])
    y = (hot & (rng.random(rows) < 0.9)) | (rng.random(rows) < 0.02)
    assert np.float32(7.6) == np.float32(7.6000000000000227)

    float64_model = HistGradientBoostingClassifier(max_iter=20, random_state=0).fit(x, y)
    assert 7.6 < float64_model._predictors[0][0].nodes[0]["num_threshold"] < 7.6000000000000227
    edge_view = predict_trees(float64_model, x)  # what any float32 input gives
    flips = (float64_model.predict_proba(x)[:, 1] >= 0.5) != (edge_view >= 0.5)
    assert flips.sum() > 100  # every "hot" row the float64 model alarms on is lost at the edge
    compiled = compiler.compile_trees(float64_model, 3)
    np.testing.assert_array_equal(_per_tree_compiled(compiled, x),
                                  _per_tree_sklearn(float64_model, x).astype(np.float32))

    model = train_trees(x, y)
    nodes = np.concatenate([it[0].nodes for it in model._predictors])
    assert not (nodes[nodes["is_leaf"] == 0]["feature_idx"] == 0).any()  # one float32 value: no split
    reference = predict_trees(model, x)
    _, lite = _compile(model, 3, tmp_path, as_float32(x))
    _assert_same_decisions(reference, _litert(lite, x))


# --- missing values --------------------------------------------------------------------------


def test_learnt_missing_directions_are_exercised(with_missing: dict[str, Any]) -> None:
    nodes = np.concatenate([it[0].nodes for it in with_missing["model"]._predictors])
    internal = nodes[nodes["is_leaf"] == 0]
    finite = internal[np.isfinite(internal["num_threshold"])]
    for feature in range(4):
        directions = set(finite[finite["feature_idx"] == feature]["missing_go_to_left"].tolist())
        assert directions == {0, 1}, f"feature {feature} sends NaN only {directions}"
    assert np.isinf(internal["num_threshold"]).any()  # scikit-learn's "split on NaN" nodes


def test_missing_values_parity(with_missing: dict[str, Any]) -> None:
    x, _ = _missing_data(1000, seed=11)
    clean = np.nan_to_num(x)
    probes = [x, clean]
    for feature in range(4):  # NaN in one column at a time, then every column
        one = clean.copy()
        one[:, feature] = np.nan
        probes.append(one)
    probes.append(np.full((3, 4), np.nan))
    probes.append(np.array([[np.inf, -np.inf, np.inf, -np.inf], [-np.inf, np.inf, -np.inf, np.inf]]))
    probe = np.concatenate(probes)
    reference = predict_trees(with_missing["model"], probe)
    assert np.ptp(reference) > 0.5
    _assert_same_decisions(reference, _saved_model(with_missing["saved"], "serving_default", probe))
    _assert_same_decisions(reference, _litert(with_missing["lite"], probe))


# --- the file ---------------------------------------------------------------------------------


def test_litert_file_is_builtin_float32_only(ai4i: dict[str, Any]) -> None:
    lite: LiteRTModel = ai4i["lite"]
    ops, types = compiler.litert_ops(lite.path.read_bytes())
    assert ops and not [op for op in ops if op.startswith("custom:")]
    assert set(types) <= {"FLOAT32", "INT32", "BOOL"}, types
    from ai_edge_litert.interpreter import Interpreter, OpResolverType

    plain = Interpreter(model_path=str(lite.path),  # no XNNPACK: every node keeps its op name
                        experimental_op_resolver_type=OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES)
    interpreter_ops = {d["op_name"] for d in plain._get_ops_details()}
    assert interpreter_ops == set(ops) and not any("Flex" in op for op in interpreter_ops)
    assert lite._interpreter.get_signature_list().keys() == {"serving_default"}
    assert not lite.outputs_logits and lite.input_dtype == np.float32 and lite.n_features == 13
    assert lite.size_bytes < 2_000_000


# --- refusals ----------------------------------------------------------------------------------


def _multiclass() -> Any:
    from sklearn.ensemble import HistGradientBoostingClassifier

    rng = np.random.default_rng(0)
    return HistGradientBoostingClassifier(max_iter=3).fit(rng.normal(size=(90, 13)), np.arange(90) % 3)


def _categorical() -> Any:
    from sklearn.ensemble import HistGradientBoostingClassifier

    rng = np.random.default_rng(0)
    x = np.column_stack([rng.integers(0, 4, 200), rng.normal(size=(200, 12))])
    return HistGradientBoostingClassifier(max_iter=3, categorical_features=[0]).fit(x, x[:, 0] == 2)


def _unfitted() -> Any:
    from sklearn.ensemble import HistGradientBoostingClassifier

    return HistGradientBoostingClassifier()


def _logistic() -> Any:
    from sklearn.linear_model import LogisticRegression

    rng = np.random.default_rng(0)
    return LogisticRegression().fit(rng.normal(size=(50, 13)), np.arange(50) % 2)


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (_multiclass, "only binary classifiers compile, this one has 3 classes"),
        (_categorical, "native categorical features are not supported"),
        (_unfitted, "is not fitted"),
        (_logistic, "only a HistGradientBoostingClassifier compiles to LiteRT, got LogisticRegression"),
    ],
)
def test_unsupported_models_are_refused_with_nothing_written(make: Any, message: str, tmp_path: Path,
                                                            ai4i: dict[str, Any]) -> None:
    with pytest.raises(ConversionError) as caught:
        compiler.compile_and_convert(make(), 13, tmp_path / "saved_model", tmp_path / "edge", ai4i["x_train"])
    assert message in str(caught.value) and "\n" not in str(caught.value)
    assert list(tmp_path.iterdir()) == []


def test_wrong_width_version_and_size_are_refused(ai4i: dict[str, Any], tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    import sklearn

    model, rep = ai4i["model"], ai4i["x_train"]

    def refused(n_features: int) -> str:
        with pytest.raises(ConversionError) as caught:
            compiler.compile_and_convert(model, n_features, tmp_path / "saved_model", tmp_path / "edge", rep)
        assert "\n" not in str(caught.value) and list(tmp_path.iterdir()) == []
        return str(caught.value)

    assert refused(12) == "the model was fitted on 13 features, the feature spec has 12"
    with monkeypatch.context() as patch:
        patch.setattr(compiler, "MAX_PATH_CELLS", 10_000)
        assert refused(13).startswith("ensemble too large to compile: 300 trees")
    with monkeypatch.context() as patch:
        patch.setattr(compiler, "MAX_TOTAL_NODES", 1000)
        assert "nodes (limit 1,000)" in refused(13)
    for version in ("1.10.0", "2.9.1", "1.8.2"):
        with monkeypatch.context() as patch:
            patch.setattr(sklearn, "__version__", version)
            assert refused(13).startswith(f"scikit-learn {version} is not the tested 1.9.x")


def test_a_changed_private_layout_is_refused(ai4i: dict[str, Any], tmp_path: Path) -> None:
    import copy

    def refused(model: Any) -> str:
        with pytest.raises(ConversionError) as caught:
            compiler.compile_and_convert(model, 13, tmp_path / "saved_model", tmp_path / "edge",
                                         ai4i["x_train"])
        assert "\n" not in str(caught.value) and list(tmp_path.iterdir()) == []
        return str(caught.value)

    no_baseline = copy.deepcopy(ai4i["model"])
    del no_baseline._baseline_prediction
    assert refused(no_baseline).startswith("unexpected _baseline_prediction None")
    renamed = copy.deepcopy(ai4i["model"])
    nodes = renamed._predictors[7][0].nodes
    fields = [(n if n != "missing_go_to_left" else "nan_left", nodes.dtype[n]) for n in nodes.dtype.names]
    renamed._predictors[7][0].nodes = nodes.astype(fields)
    assert refused(renamed) == ("tree 7 has no nodes array with fields ['missing_go_to_left']: "
                                "scikit-learn's private layout changed")
    loop = copy.deepcopy(ai4i["model"])
    loop._predictors[3][0].nodes["left"][0] = 0
    assert refused(loop) == "tree 3 is malformed: node 0 is out of range or reached twice"


def test_convert_refusals_leave_out_dir_as_it_was(ai4i: dict[str, Any], tmp_path: Path) -> None:
    out = tmp_path / "edge"
    out.mkdir()
    (out / FLOAT32_FILE).write_bytes(b"previous")
    with pytest.raises(ConversionError, match="takes 13 features, representative data has 12"):
        compiler.convert_trees(ai4i["saved"], out, ai4i["x_train"][:, :12])
    with pytest.raises(ConversionError, match="SavedModel directory not found"):
        compiler.convert_trees(tmp_path / "nope", out, ai4i["x_train"])
    assert [p.name for p in tmp_path.iterdir()] == ["edge"]
    assert (out / FLOAT32_FILE).read_bytes() == b"previous"
    files = compiler.convert_trees(ai4i["saved"], out, ai4i["x_train"])
    assert LiteRTModel(files["float32"]).n_features == 13 and [p.name for p in tmp_path.iterdir()] == ["edge"]


def test_as_float32_wants_a_matrix() -> None:
    assert as_float32([[1.0, 2.0]]).flags.c_contiguous and as_float32([[1.0]]).dtype == np.float32
    with pytest.raises(InvalidInputError, match=r"2-D \[rows, features\] array, got shape \[3\]"):
        as_float32([1.0, 2.0, 3.0])
