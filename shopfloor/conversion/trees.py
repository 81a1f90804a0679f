"""Compile a scikit-learn HistGradientBoostingClassifier into plain TensorFlow ops, then LiteRT.

The edge runs one runtime (:class:`~shopfloor.inference.runtime.LiteRTModel`) for every model
family, so the tree ensemble becomes a tensor program instead of shipping scikit-learn: the
"GEMM" formulation of tree inference (as popularised by Microsoft's Hummingbird). Per tree,
with its I internal nodes and L leaves padded to the ensemble's largest tree:

1. ``gather`` the feature each internal node tests -> ``[batch, T, I]``;
2. one test per node, ``>=`` against a constant -> 1.0 or 0.0;
3. one batched matmul with the path matrix ``[T, I, L]`` (+1 where the leaf needs the test
   true, -1 where it needs it false, 0 off its path): it equals the leaf's count of +1 entries
   exactly for the one leaf the row reaches (small integers, exact in float32) -> a one-hot
   that selects the leaf values;
4. sum over trees + the baseline prediction = the raw score; sigmoid = the probability.

Exactness, the reason for every detail:

* Thresholds are rounded DOWN to the nearest float32 ``t``: for every float32 ``x``,
  ``x <= t64`` iff ``x <= t``, so no threshold can round across a feature value. The
  reference is the ensemble on float32-rounded features
  (:func:`shopfloor.training.trees.predict_trees`), which is what the edge sees.
* Missing values: a comparison with NaN is false, so each node's test is chosen to be false
  on the side its learnt ``missing_go_to_left`` sends NaN: ``x >= nextup(t)`` (the same as
  ``x > t`` for float32 ``x``: "goes right") where NaN goes left, ``-x >= -t`` ("goes left")
  where NaN goes right. scikit-learn's "split on NaN" (threshold +inf: every number left,
  NaN right) tests ``present >= 0.5``, with ``present = [x <= 0] + [x > 0]`` (0 only for
  NaN). ``[x, -x, present]`` is built once per row. Not ``not(x > t)``: Grappler and the
  LiteRT converter rewrite it to ``x <= t``, which is wrong for NaN; and no infinite
  constants: the LiteRT converter clamps them to the largest float32, which moves ``+inf``
  inputs across them (thresholds outside float32's range are refused). Features are selected
  with ``gather``, never a one-hot matmul, which would turn one NaN into NaN everywhere.
* Padding nodes have all-zero path rows and padding leaves an unreachable count (-1), so a
  small tree inside a padded block behaves exactly like itself.

The layout of scikit-learn's private tree arrays (``_predictors``, ``_baseline_prediction``,
the ``nodes`` record fields) is not public API: :func:`check_supported` pins the scikit-learn
version the parity tests ran against and refuses anything it cannot compile faithfully.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from shopfloor.contract import litert_file
from shopfloor.conversion.convert import ConversionError, _check_inputs, _convert_bytes
from shopfloor.errors import bounded
from shopfloor.training.export import LOGITS_SIGNATURE, SERVING_SIGNATURE

#: scikit-learn major.minor whose private tree layout the parity tests pin (requirements/lock.txt).
SUPPORTED_SKLEARN: tuple[int, int] = (1, 9)
#: Fields of a predictor's ``nodes`` record array that the compiler reads.
NODE_FIELDS: tuple[str, ...] = (
    "value", "feature_idx", "num_threshold", "missing_go_to_left", "left", "right", "is_leaf",
    "is_categorical",
)
#: Size limits: the padded path matrix (trees x internal nodes x leaves) dominates the file at
#: 4 bytes a cell; this keeps a LiteRT file near 16 MB at most, far above any sane edge model.
MAX_PATH_CELLS = 4_000_000
MAX_TOTAL_NODES = 200_000
_FLOAT32_MAX = float(np.finfo(np.float32).max)
#: Tensor types a float32 tree file may hold (anything else is a quantised or foreign graph).
_ALLOWED_TENSOR_TYPES = ("FLOAT32", "INT32", "INT64", "BOOL")
#: The file's single output key in each signature.
PROBABILITY_OUTPUT = "probability"
LOGITS_OUTPUT = "logits"


@dataclass(frozen=True)
class CompiledTrees:
    """The ensemble as dense arrays (T trees, I internal nodes, L leaves, padded) in the
    compiled form: node tests on ``[x, -x]`` and signed path matrices."""

    gather_index: np.ndarray  # [T, I] int32: column of [x, -x, present] each node tests
    bound: np.ndarray  # [T, I] float32: the node's test is column >= bound
    paths: np.ndarray  # [T, I, L] float32: +1 leaf needs the test true, -1 false, 0 off path
    target: np.ndarray  # [T, L] float32: +1 entries on each leaf's path (-1: padding leaf)
    values: np.ndarray  # [T, L] float32: leaf values (0 for padding)
    baseline: float  # raw score before any tree

    @property
    def n_trees(self) -> int:
        return int(self.gather_index.shape[0])


def _sklearn_version() -> str:
    import sklearn

    return str(sklearn.__version__)


def _version_tuple(version: str) -> tuple[int, ...]:
    parts = []
    for piece in version.split(".")[:2]:
        digits = "".join(ch for ch in piece if ch.isdigit()) or "0"
        parts.append(int(digits))
    return tuple(parts)


def check_supported(model: Any, n_features: int) -> None:
    """Refuse (:class:`ConversionError`, one line) anything :func:`export_tree_saved_model`
    would not compile faithfully; return None when it can."""
    from sklearn.ensemble import HistGradientBoostingClassifier

    version = _sklearn_version()
    if _version_tuple(version) != SUPPORTED_SKLEARN:
        pinned = ".".join(map(str, SUPPORTED_SKLEARN))
        raise ConversionError(f"scikit-learn {version} is not the tested {pinned}.x: its private tree layout "
                              f"may differ; re-run the tree parity tests and update SUPPORTED_SKLEARN")
    if not isinstance(model, HistGradientBoostingClassifier):
        raise ConversionError(f"only a HistGradientBoostingClassifier compiles to LiteRT, "
                              f"got {type(model).__name__}")
    if not hasattr(model, "_predictors") or not hasattr(model, "n_trees_per_iteration_"):
        raise ConversionError("the HistGradientBoostingClassifier is not fitted")
    classes = getattr(model, "classes_", ())
    if model.n_trees_per_iteration_ != 1 or len(classes) != 2:
        raise ConversionError(f"only binary classifiers compile, this one has {len(classes)} classes")
    if getattr(model, "is_categorical_", None) is not None and np.any(model.is_categorical_):
        raise ConversionError("native categorical features are not supported: one-hot encode them instead")
    if getattr(model, "n_features_in_", None) != n_features:
        raise ConversionError(f"the model was fitted on {getattr(model, 'n_features_in_', '?')} features, "
                              f"the feature spec has {n_features}")
    baseline = getattr(model, "_baseline_prediction", None)
    if (not isinstance(baseline, np.ndarray) or baseline.shape != (1, 1) or baseline.dtype.kind != "f"
            or not np.isfinite(baseline).all()):
        raise ConversionError(f"unexpected _baseline_prediction {bounded(repr(baseline), 80)}: "
                              f"scikit-learn's private layout changed")
    predictors = model._predictors
    if not isinstance(predictors, list) or not predictors:
        raise ConversionError("model has no trees (_predictors is empty or not a list)")
    total_nodes = 0
    max_internal, max_leaves = 1, 1
    for i, iteration in enumerate(predictors):
        if not isinstance(iteration, list) or len(iteration) != 1:
            raise ConversionError(f"_predictors[{i}] is not a one-tree list: "
                                  f"scikit-learn's private layout changed")
        nodes = getattr(iteration[0], "nodes", None)
        names = (nodes.dtype.names or ()) if isinstance(nodes, np.ndarray) else ()
        missing = [f for f in NODE_FIELDS if f not in names]
        if not isinstance(nodes, np.ndarray) or missing:
            raise ConversionError(f"tree {i} has no nodes array with fields {missing or list(NODE_FIELDS)}: "
                                  f"scikit-learn's private layout changed")
        if nodes.ndim != 1 or len(nodes) == 0:
            raise ConversionError(f"tree {i} has a nodes array of shape {list(nodes.shape)}")
        if np.any(nodes["is_categorical"]):
            raise ConversionError(f"tree {i} has a categorical split: not supported")
        leaves = int(np.count_nonzero(nodes["is_leaf"]))
        total_nodes += len(nodes)
        max_internal, max_leaves = max(max_internal, len(nodes) - leaves), max(max_leaves, leaves)
    cells = len(predictors) * max_internal * max_leaves
    if total_nodes > MAX_TOTAL_NODES or cells > MAX_PATH_CELLS:
        raise ConversionError(
            f"ensemble too large to compile: {len(predictors)} trees, {total_nodes:,} nodes "
            f"(limit {MAX_TOTAL_NODES:,}), path matrix {cells:,} cells (limit {MAX_PATH_CELLS:,}); "
            f"use fewer iterations or max_leaf_nodes")


def float32_floor(values: np.ndarray) -> np.ndarray:
    """The largest float32 <= each float64 value (so ``x <= t64`` iff ``x <= t32`` for every
    float32 ``x``): +inf stays, values above float32's range give its largest, below it -inf."""
    t64 = np.asarray(values, dtype=np.float64)
    with np.errstate(over="ignore"):
        t32 = t64.astype(np.float32)
    above = t32.astype(np.float64) > t64
    t32[above] = np.nextafter(t32[above], np.float32(-np.inf))
    return t32


_Path = list[tuple[int, bool]]


def _tree_arrays(nodes: np.ndarray, n_features: int, index: int) -> tuple[list[int], list[tuple[int, _Path]]]:
    """Internal node ids in path-matrix order, and each leaf with its path of (internal
    position, went left). Walks from the root so malformed child links cannot loop."""
    internal: list[int] = []
    leaves: list[tuple[int, _Path]] = []
    seen = np.zeros(len(nodes), dtype=bool)
    stack: list[tuple[int, _Path]] = [(0, [])]
    while stack:
        node_id, path = stack.pop()
        if not 0 <= node_id < len(nodes) or seen[node_id]:
            raise ConversionError(f"tree {index} is malformed: node {node_id} is out of range "
                                  f"or reached twice")
        seen[node_id] = True
        node = nodes[node_id]
        if node["is_leaf"]:
            leaves.append((node_id, path))
            continue
        feature = int(node["feature_idx"])
        threshold = float(node["num_threshold"])
        # +inf is scikit-learn's "split on NaN" (NaN right); any other threshold must leave a
        # finite float32 bound (the converter clamps infinite constants).
        split_on_nan = threshold == np.inf and not node["missing_go_to_left"]
        if not 0 <= feature < n_features or not (split_on_nan or -_FLOAT32_MAX <= threshold < _FLOAT32_MAX):
            raise ConversionError(f"tree {index} node {node_id} splits on feature {feature} at {threshold} "
                                  f"(NaN {'left' if node['missing_go_to_left'] else 'right'}): not a numeric "
                                  f"split within float32's range")
        position = len(internal)
        internal.append(node_id)
        stack.append((int(node["right"]), [*path, (position, False)]))
        stack.append((int(node["left"]), [*path, (position, True)]))
    if not seen.all():
        raise ConversionError(f"tree {index} is malformed: {int((~seen).sum())} nodes "
                              f"unreachable from the root")
    return internal, leaves


def compile_trees(model: Any, n_features: int) -> CompiledTrees:
    """The ensemble as padded dense arrays (after :func:`check_supported`)."""
    check_supported(model, n_features)
    trees = [iteration[0].nodes for iteration in model._predictors]
    walked = [_tree_arrays(nodes, n_features, i) for i, nodes in enumerate(trees)]
    n_trees = len(trees)
    n_internal = max(1, *(len(internal) for internal, _ in walked))
    n_leaves = max(len(leaves) for _, leaves in walked)
    gather_index = np.full((n_trees, n_internal), n_features, dtype=np.int32)
    bound = np.zeros((n_trees, n_internal), dtype=np.float32)
    paths = np.zeros((n_trees, n_internal, n_leaves), dtype=np.float32)
    target = np.full((n_trees, n_leaves), -1.0, dtype=np.float32)
    values = np.zeros((n_trees, n_leaves), dtype=np.float32)
    for t, (nodes, (internal, leaves)) in enumerate(zip(trees, walked, strict=True)):
        ids = np.asarray(internal, dtype=np.intp)
        nan_left = nodes["missing_go_to_left"][ids].astype(bool)
        split_on_nan = nodes["num_threshold"][ids] == np.inf
        threshold = np.where(split_on_nan, np.float32(0), float32_floor(nodes["num_threshold"][ids]))
        feature = nodes["feature_idx"][ids].astype(np.int32)
        # NaN left: test "goes right" (x >= nextup(t)); NaN right: test "goes left" (-x >= -t);
        # split on NaN: test "goes left" (present >= 0.5).
        gather_index[t, : len(ids)] = np.where(
            split_on_nan, feature + 2 * n_features, np.where(nan_left, feature, feature + n_features))
        above = np.nextafter(threshold, np.float32(np.inf))
        bound[t, : len(ids)] = np.where(split_on_nan, np.float32(0.5), np.where(nan_left, above, -threshold))
        for leaf, (node_id, path) in enumerate(leaves):
            for position, went_left in path:
                paths[t, position, leaf] = 1.0 if went_left != nan_left[position] else -1.0
            target[t, leaf] = float(np.count_nonzero(paths[t, :, leaf] > 0))
            values[t, leaf] = nodes["value"][node_id]
    if not np.isfinite(values).all():
        raise ConversionError("a leaf value is not finite in float32")
    return CompiledTrees(gather_index, bound, paths, target, values, float(model._baseline_prediction[0, 0]))


def _raw_score(tf: Any, compiled: CompiledTrees, features: Any) -> Any:
    """The GEMM-form ensemble on a ``[batch, F]`` float32 tensor -> raw score ``[batch, 1]``."""
    # 1 for every number (+-inf included), 0 for NaN; arithmetic, so no optimiser folds it.
    present = tf.cast(tf.less_equal(features, 0.0), tf.float32) + tf.cast(tf.greater(features, 0.0),
                                                                          tf.float32)
    columns = tf.concat([features, -features, present], axis=1)  # [B, 3F]: -x exact, NaN stays NaN
    tested = tf.gather(columns, tf.constant(compiled.gather_index), axis=1)  # [B, T, I]
    passed = tf.cast(tf.greater_equal(tested, tf.constant(compiled.bound)), tf.float32)  # NaN -> 0
    # Tree-major for the batched matmul: [T, B, I] @ [T, I, L] -> [T, B, L].
    counts = tf.matmul(tf.transpose(passed, [1, 0, 2]), tf.constant(compiled.paths))
    reached = tf.cast(tf.equal(counts, tf.constant(compiled.target[:, None, :])), tf.float32)
    per_tree = tf.reduce_sum(reached * tf.constant(compiled.values[:, None, :]), axis=2)  # exact: one leaf
    raw = tf.reduce_sum(per_tree, axis=0) + tf.constant(compiled.baseline, tf.float32)
    return tf.reshape(raw, [-1, 1])


def _module(compiled: CompiledTrees, n_features: int) -> Any:
    import tensorflow as tf

    spec = tf.TensorSpec([None, n_features], tf.float32, name="features")

    class TreeEnsemble(tf.Module):
        @tf.function(input_signature=[spec])
        def probability(self, features: Any) -> Any:
            return {PROBABILITY_OUTPUT: tf.sigmoid(_raw_score(tf, compiled, features))}

        @tf.function(input_signature=[spec])
        def logits(self, features: Any) -> Any:
            return {LOGITS_OUTPUT: _raw_score(tf, compiled, features)}

    return TreeEnsemble()


def export_tree_saved_model(model: Any, n_features: int, directory: Path) -> Path:
    """Write the compiled ensemble as a SavedModel: ``serving_default`` (failure probability
    ``[batch, 1]``) and ``logits`` (raw score ``[batch, 1]``), input ``features`` float32
    ``[None, n_features]``. Built in a temporary sibling and moved into place whole."""
    import tensorflow as tf

    compiled = compile_trees(model, n_features)
    directory = Path(directory)
    directory.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{directory.name}.exporting-", dir=directory.parent))
    os.chmod(tmp, 0o755)
    try:
        module = _module(compiled, n_features)
        signatures = {SERVING_SIGNATURE: module.probability.get_concrete_function(),
                      LOGITS_SIGNATURE: module.logits.get_concrete_function()}
        try:
            tf.saved_model.save(module, str(tmp), signatures=signatures)
        except Exception as exc:  # TF raises a zoo of types
            raise ConversionError(f"cannot save the compiled ensemble as a SavedModel: "
                                  f"{type(exc).__name__}: {bounded(str(exc), 300)}") from exc
        if directory.exists():
            shutil.rmtree(directory)
        os.replace(tmp, directory)
        return directory
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def litert_ops(model_bytes: bytes) -> tuple[list[str], list[str]]:
    """Operator names and tensor type names of a LiteRT flatbuffer (custom ops as ``custom:NAME``)."""
    from ai_edge_litert import schema_py_generated as schema

    op_names = {v: k for k, v in vars(schema.BuiltinOperator).items() if not k.startswith("_")}
    type_names = {v: k for k, v in vars(schema.TensorType).items() if not k.startswith("_")}
    parsed = schema.ModelT.InitFromPackedBuf(model_bytes, 0)
    ops = []
    for code in parsed.operatorCodes or []:
        builtin = max(int(code.builtinCode), int(code.deprecatedBuiltinCode))
        if builtin == schema.BuiltinOperator.CUSTOM:
            ops.append(f"custom:{(code.customCode or b'').decode(errors='replace')}")
        else:
            ops.append(op_names.get(builtin, str(builtin)))
    types = sorted({type_names.get(tensor.type, str(tensor.type))
                    for graph in parsed.subgraphs or [] for tensor in graph.tensors or []})
    return ops, types


def _assert_builtin_float32(model_bytes: bytes) -> None:
    ops, types = litert_ops(model_bytes)
    custom = [op for op in ops if op.startswith("custom:")]
    if custom:
        raise ConversionError(f"tree file needs non-builtin ops {custom}: the edge runtime cannot run it")
    foreign = [t for t in types if t not in _ALLOWED_TENSOR_TYPES]
    if foreign:
        raise ConversionError(f"tree file has {foreign} tensors: trees must stay float32")


def convert_trees(saved_model_dir: Path, out_dir: Path, representative: np.ndarray) -> dict[str, Path]:
    """Write ``contract.litert_file("float32")`` for a tree SavedModel into ``out_dir``.

    Float32 only, no optimisation: a tree decides by exact comparisons (``x <= t``, path count
    == leaf count), and int8, dynamic-range or float16 quantisation moves thresholds and
    inputs across each other, flipping leaves and hence decisions. Builtin ops only, so the
    same LiteRT runtime as the MLP runs it. ``representative`` (training features) checks the
    file's input width. The file is staged in a temporary sibling, loaded and checked, then
    moved into place; a failure leaves ``out_dir`` as it was. Returns ``{"float32": path}``.
    """
    from shopfloor.conversion.convert import saved_model_signatures
    from shopfloor.inference.runtime import LiteRTModel

    saved_model_dir, out_dir = Path(saved_model_dir), Path(out_dir)
    rep = _check_inputs(saved_model_dir, representative)
    signatures = saved_model_signatures(saved_model_dir)
    if SERVING_SIGNATURE not in signatures:
        raise ConversionError(f"SavedModel {saved_model_dir} has no {SERVING_SIGNATURE!r} signature "
                              f"(has {signatures})")
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.converting-", dir=out_dir.parent))
    os.chmod(tmp, 0o755)  # it may become out_dir itself
    try:
        try:
            model_bytes = _convert_bytes(saved_model_dir, SERVING_SIGNATURE, None)
        except Exception as exc:  # TF raises a zoo of types for unconvertible graphs
            raise ConversionError(f"cannot convert tree SavedModel {saved_model_dir}: "
                                  f"{type(exc).__name__}: {bounded(str(exc), 300)}") from exc
        _assert_builtin_float32(model_bytes)
        path = tmp / litert_file("float32")
        path.write_bytes(model_bytes)
        loaded = LiteRTModel(path)
        if loaded.n_features != rep.shape[1]:
            raise ConversionError(f"{path.name} takes {loaded.n_features} features, "
                                  f"representative data has {rep.shape[1]}")
        if not out_dir.exists():
            os.replace(tmp, out_dir)  # the whole directory appears at once
        else:
            os.replace(path, out_dir / path.name)  # the file appears whole
        return {"float32": out_dir / path.name}
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def compile_and_convert(
    model: Any, n_features: int, saved_model_dir: Path, out_dir: Path, representative: np.ndarray
) -> tuple[Path, dict[str, Path]]:
    """:func:`export_tree_saved_model` then :func:`convert_trees`: (SavedModel dir, files)."""
    saved = export_tree_saved_model(model, n_features, saved_model_dir)
    return saved, convert_trees(saved, out_dir, representative)
