"""Run a converted ``.tflite`` failure model with LiteRT, without importing TensorFlow.

The same class serves the pipeline's equivalence check, cloud serving and the edge box, so
what was checked is what runs. Dependencies: numpy and ``ai_edge_litert`` only.

Not thread-safe: a LiteRT interpreter owns its input and output tensors, so two threads
calling one instance can each read the other's result without any error. Use one instance
per thread, or a lock (as :class:`shopfloor.inference.predictor.Predictor` does).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np

from shopfloor.errors import IntegrityError, InvalidInputError, NotFoundError

_FLOAT32 = np.dtype(np.float32)
#: A file whose only signature has this name outputs a logit (see convert.LOGITS_SIGNATURE).
LOGITS_SIGNATURE = "logits"


def _sigmoid(z: float) -> float:
    # Branches keep math.exp from overflowing for large |z|.
    if z >= 0:
        return 1.0 / (1.0 + math.exp(-z))
    e = math.exp(z)
    return e / (1.0 + e)


class LiteRTModel:
    """A single-input, single-output probability model: ``[batch, F] -> [batch, 1]``.

    Float I/O models (our float32 and int8 files, whose int8 graph quantises in-graph) take
    the fast path; int8/uint8 I/O models from elsewhere are quantised here with the model's
    own scale and zero point, so any such file gives probabilities. A file converted from a
    ``logits`` signature outputs a logit; the sigmoid is then applied here, in float.
    """

    def __init__(self, path: Path | str, num_threads: int = 1) -> None:
        from ai_edge_litert.interpreter import Interpreter

        self.path = Path(path)
        if not self.path.is_file():
            raise NotFoundError(f"LiteRT model not found: {self.path}")
        # One thread: a single row is ~1 µs of work; thread hand-offs would cost more than that.
        try:
            self._interpreter: Any = Interpreter(model_path=str(self.path), num_threads=num_threads)
        except (ValueError, RuntimeError) as exc:
            raise IntegrityError(f"{self.path.name} is not a LiteRT model LiteRT can open: {exc}",
                                 self.path.name) from None
        inputs = self._interpreter.get_input_details()
        outputs = self._interpreter.get_output_details()
        if len(inputs) != 1 or len(outputs) != 1:
            raise IntegrityError(
                f"{self.path}: expected 1 input and 1 output, got {len(inputs)}/{len(outputs)}",
                self.path.name)
        inp, out = inputs[0], outputs[0]
        if len(inp["shape"]) != 2:
            raise IntegrityError(
                f"{self.path}: expected input [batch, features], got shape {list(inp['shape'])}",
                self.path.name)
        self.n_features = int(inp["shape"][1])
        self.input_dtype = np.dtype(inp["dtype"])
        self.output_dtype = np.dtype(out["dtype"])
        self._in_index = int(inp["index"])
        self._out_index = int(out["index"])
        in_scale, in_zero = inp["quantization"]
        out_scale, out_zero = out["quantization"]
        self._in_quantised = self.input_dtype != _FLOAT32
        self._out_quantised = self.output_dtype != _FLOAT32
        if self._in_quantised and in_scale == 0:
            raise IntegrityError(f"{self.path}: integer input without quantisation parameters",
                                 self.path.name)
        self._in_inv_scale = 1.0 / in_scale if self._in_quantised else 1.0
        self._in_zero = float(in_zero)
        info = np.iinfo(self.input_dtype) if self._in_quantised else None
        self._in_lo, self._in_hi = (float(info.min), float(info.max)) if info else (0.0, 0.0)
        self._out_scale = float(out_scale)
        self._out_zero = int(out_zero)
        self.outputs_logits = list(self._interpreter.get_signature_list()) == [LOGITS_SIGNATURE]
        self._batch = 0
        self._resize(1)
        # Bound methods looked up once: attribute lookups are a visible share of a ~1 µs call.
        self._set = self._interpreter.set_tensor
        self._get = self._interpreter.get_tensor
        self._invoke = self._interpreter.invoke

    @property
    def size_bytes(self) -> int:
        return self.path.stat().st_size

    def _resize(self, batch: int) -> None:
        if batch != self._batch:
            self._interpreter.resize_tensor_input(self._in_index, [batch, self.n_features], strict=False)
            self._interpreter.allocate_tensors()
            self._batch = batch

    def _quantise(self, x: np.ndarray) -> np.ndarray:
        q = np.rint(x * self._in_inv_scale + self._in_zero)
        return np.clip(q, self._in_lo, self._in_hi).astype(self.input_dtype)

    def _dequantise(self, y: np.ndarray) -> np.ndarray:
        return (y.astype(np.float64) - self._out_zero) * self._out_scale

    def predict_proba(self, x: np.ndarray) -> np.ndarray:
        """Failure probabilities for a batch ``[n, F]`` (float64, shape ``[n]``)."""
        x = np.asarray(x, dtype=np.float32)
        if x.ndim != 2 or x.shape[1] != self.n_features:
            raise InvalidInputError(f"expected input [n, {self.n_features}], got shape {list(x.shape)}")
        if len(x) == 0:
            return np.zeros(0)
        self._resize(len(x))
        self._set(self._in_index, self._quantise(x) if self._in_quantised else np.ascontiguousarray(x))
        self._invoke()
        y = self._get(self._out_index).reshape(-1)
        y = self._dequantise(y) if self._out_quantised else y.astype(np.float64)
        if self.outputs_logits:
            y = np.exp(-np.logaddexp(0.0, -y))  # stable sigmoid
        return y

    def predict_one(self, row: np.ndarray) -> float:
        """Failure probability of one feature row ``[F]`` or ``[1, F]``: the latency path.

        Pass a float32 array to skip the only conversion left on this path.
        """
        if self._batch != 1:
            self._resize(1)
        if row.dtype is not _FLOAT32 or row.ndim != 2:
            row = np.asarray(row, dtype=np.float32).reshape(1, -1)
        if self._in_quantised:
            row = self._quantise(row)
        self._set(self._in_index, row)
        self._invoke()
        y = self._get(self._out_index)[0, 0]
        p = (int(y) - self._out_zero) * self._out_scale if self._out_quantised else float(y)
        return _sigmoid(p) if self.outputs_logits else p
