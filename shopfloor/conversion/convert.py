"""SavedModel -> LiteRT float32 and full-integer int8 files for cloud and edge.

Why int8 is converted from a ``logits`` signature when the SavedModel has one: an int8
LOGISTIC op has a fixed output scale of 1/256, so its largest probability is 255/256 =
0.9961. A class-weighted model's operating threshold sits above that (0.9987 on AI4I at
precision 0.8), so the int8 sigmoid model can never alarm: measured on AI4I it missed all 30
alarms the float model raised (PR-AUC 0.717 -> 0.653). Quantising the logit instead keeps
resolution where the threshold is (PR-AUC 0.713 vs 0.717, 1-2 of 2000 decisions differ);
:class:`~shopfloor.inference.runtime.LiteRTModel` applies the sigmoid in float, which it
knows to do from the file's signature name. Training writes such a SavedModel
(:func:`shopfloor.training.export.export_saved_model_with_logits`).

Why the int8 file keeps FLOAT32 input/output (the converter's in-graph QUANTIZE/DEQUANTIZE)
instead of int8 I/O: every op in between is still int8 (TFLITE_BUILTINS_INT8 only, checked
below), but quantising one row in C++ inside ``invoke`` is nearly free, while doing it in
numpy around an int8-I/O model costs several small-array ops. Measured on the 2-core dev box,
single row, quantisation included, median: float I/O 1.3 µs vs int8 I/O + numpy 4.7 µs
(bare invoke 0.5 µs for both). Float I/O also means one calling convention for both files.
An int8-only accelerator (which would want int8 I/O) is not a target.
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from shopfloor.contract import LITERT_FORMATS, SAVED_MODEL_PB, litert_file
from shopfloor.errors import InvalidInputError, bounded
from shopfloor.training.export import LOGITS_SIGNATURE, SERVING_SIGNATURE

log = logging.getLogger(__name__)

#: The graph file inside a SavedModel directory.
SAVED_MODEL_GRAPH = Path(SAVED_MODEL_PB).name

#: Calibration rows: min/max ranges settle long before this; more only slows conversion.
MAX_CALIBRATION_ROWS = 1000


class ConversionError(InvalidInputError):
    """The SavedModel could not be converted; nothing was written."""


def calibration_rows(features: np.ndarray, max_rows: int = MAX_CALIBRATION_ROWS, seed: int = 0) -> np.ndarray:
    """A seeded subsample of training rows that always keeps each column's min and max row,
    so int8 input ranges cover the whole training range and are not clipped by the sample."""
    x = np.asarray(features, dtype=np.float32)
    if len(x) <= max_rows:
        return x
    extremes = np.unique(np.concatenate([x.argmin(axis=0), x.argmax(axis=0)]))
    rest = np.setdiff1d(np.arange(len(x)), extremes)
    n_rest = max(max_rows - len(extremes), 0)
    picked = np.random.default_rng(seed).choice(rest, size=n_rest, replace=False)
    return x[np.sort(np.concatenate([extremes, picked]))]


def _check_inputs(saved_model_dir: Path, representative: np.ndarray) -> np.ndarray:
    if not saved_model_dir.is_dir():
        raise ConversionError(f"SavedModel directory not found: {saved_model_dir}")
    if not (saved_model_dir / SAVED_MODEL_GRAPH).is_file():
        raise ConversionError(f"not a SavedModel (no {SAVED_MODEL_GRAPH}): {saved_model_dir}")
    rep = np.asarray(representative, dtype=np.float32)
    if rep.ndim != 2 or len(rep) == 0:
        raise ConversionError(f"representative data must be a non-empty [rows, features] array, "
                              f"got shape {list(rep.shape)}")
    if not np.isfinite(rep).all():
        raise ConversionError("representative data contains NaN or inf")
    return rep


def saved_model_signatures(saved_model_dir: Path) -> list[str]:
    """Signature names of a SavedModel, read from saved_model.pb without loading the graph."""
    from tensorflow.core.protobuf import saved_model_pb2

    proto = saved_model_pb2.SavedModel()
    try:
        proto.ParseFromString((Path(saved_model_dir) / SAVED_MODEL_GRAPH).read_bytes())
    except Exception as exc:  # protobuf's DecodeError and friends
        raise ConversionError(f"unreadable {SAVED_MODEL_GRAPH} in {saved_model_dir}: {exc}") from exc
    if not proto.meta_graphs:
        raise ConversionError(f"{SAVED_MODEL_GRAPH} in {saved_model_dir} holds no graph")
    return sorted(proto.meta_graphs[0].signature_def.keys())


def _assert_integer_only(model_bytes: bytes) -> None:
    """Only the float I/O tensors may be float: anything else means a float op slipped in."""
    from ai_edge_litert.interpreter import Interpreter

    interp = Interpreter(model_content=model_bytes)
    io = {d["index"] for d in (*interp.get_input_details(), *interp.get_output_details())}
    floats = [d["name"] for d in interp.get_tensor_details()
              if d["index"] not in io and np.dtype(d["dtype"]) == np.float32]
    if floats:
        raise ConversionError(f"int8 model still has float tensors: {floats[:5]}")


def _convert_bytes(saved_model_dir: Path, signature: str, rep: np.ndarray | None) -> bytes:
    import tensorflow as tf

    converter = tf.lite.TFLiteConverter.from_saved_model(str(saved_model_dir), signature_keys=[signature])
    if rep is not None:

        def samples() -> Iterator[list[np.ndarray]]:
            for i in range(len(rep)):
                yield [rep[i : i + 1]]

        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.representative_dataset = samples
        # Integer kernels only: conversion fails rather than silently keeping a float op.
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        converter.inference_input_type = tf.float32
        converter.inference_output_type = tf.float32
    return bytes(converter.convert())


def convert(saved_model_dir: Path, representative: np.ndarray, out_dir: Path) -> dict[str, Path]:
    """Write the float32 and int8 LiteRT files (``contract.litert_file``) into ``out_dir``.

    ``representative`` is the training split's (standardised) feature matrix; a subsample
    calibrates int8 ranges. float32 comes from ``serving_default``; int8 from ``logits`` when
    present (sigmoid then applied by the runtime), else from ``serving_default``. Both files
    are built in a temporary sibling directory and moved into place only once both converted
    and loaded, so a failure leaves ``out_dir`` as it was.
    Returns ``{"float32": path, "int8": path}``.
    """
    saved_model_dir, out_dir = Path(saved_model_dir), Path(out_dir)
    rep = _check_inputs(saved_model_dir, representative)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    signatures = saved_model_signatures(saved_model_dir)
    if SERVING_SIGNATURE not in signatures:
        raise ConversionError(f"SavedModel {saved_model_dir} has no {SERVING_SIGNATURE!r} signature "
                              f"(has {signatures})")
    int8_signature = LOGITS_SIGNATURE if LOGITS_SIGNATURE in signatures else SERVING_SIGNATURE
    if int8_signature != LOGITS_SIGNATURE:
        log.warning("SavedModel %s has no %r signature: int8 quantises the sigmoid output "
                    "(1/256 steps, max 0.9961); thresholds near 1 will fail equivalence",
                    saved_model_dir, LOGITS_SIGNATURE)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.converting-", dir=out_dir.parent))
    os.chmod(tmp, 0o755)  # it may become out_dir itself: readable like every other artifact
    try:
        try:
            float_bytes = _convert_bytes(saved_model_dir, SERVING_SIGNATURE, None)
            int8_bytes = _convert_bytes(saved_model_dir, int8_signature, calibration_rows(rep))
        except Exception as exc:  # TF raises a zoo of types for unreadable models
            raise ConversionError(f"cannot convert SavedModel {saved_model_dir}: "
                                  f"{type(exc).__name__}: {bounded(str(exc), 300)}") from exc
        _assert_integer_only(int8_bytes)
        files = {fmt: tmp / litert_file(fmt) for fmt in LITERT_FORMATS}
        files["float32"].write_bytes(float_bytes)
        files["int8"].write_bytes(int8_bytes)
        from shopfloor.inference.runtime import LiteRTModel

        for path in files.values():
            model = LiteRTModel(path)
            if model.n_features != rep.shape[1]:
                raise ConversionError(f"{path.name} takes {model.n_features} features, "
                                      f"representative data has {rep.shape[1]}")
        if not out_dir.exists():
            os.replace(tmp, out_dir)  # whole directory appears at once
        else:
            for path in files.values():
                os.replace(path, out_dir / path.name)  # each file appears whole
        return {fmt: out_dir / path.name for fmt, path in files.items()}
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
