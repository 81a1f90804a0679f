"""kserve's request and response types <-> the serving core's: the only kserve-typed codec.

The rules (what a valid request is, how a refusal reads) live in
:mod:`shopfloor.inference.codec`; this module converts at the kserve edge:

* REST: the server parses the body with the core (:func:`to_kserve_request` wraps the checked
  tensors in kserve's ``InferRequest`` for kserve's data plane and models).
* gRPC: kserve builds the ``InferRequest`` from the protobuf; :func:`tensors` checks its inputs
  with the core's :meth:`~shopfloor.inference.codec.Tensor.checked`.
* Responses: :func:`encode_v2` builds kserve's ``InferResponse`` (REST JSON, REST binary and
  gRPC raw contents all encode from it).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from kserve.protocol.infer_type import InferInput, InferOutput, InferRequest, InferResponse, RequestedOutput

from shopfloor.errors import InvalidInputError
from shopfloor.inference.codec import (
    OUTPUT_NAMES,
    PREDICTED,
    PROBABILITY,
    InferenceRequest,
    Tensor,
    _names,
    decode_v1,
    encode_v1,
    input_metadata,
    output_metadata,
)

__all__ = [
    "PREDICTED",
    "PROBABILITY",
    "CheckedInput",
    "decode_v1",
    "encode_v1",
    "encode_v2",
    "input_metadata",
    "output_metadata",
    "tensors",
    "to_kserve_request",
]


class CheckedInput(InferInput):
    """kserve's input tensor, carrying the core tensor the REST server already checked."""

    def __init__(self, tensor: Tensor) -> None:
        values = tensor.values
        super().__init__(tensor.name, list(tensor.shape), tensor.datatype,
                         data=values if isinstance(values, list) else np.asarray(values),
                         parameters=dict(tensor.parameters))
        self.tensor = tensor


def to_kserve_request(request: InferenceRequest, model_name: str) -> InferRequest:
    """A core-parsed REST request as kserve's ``InferRequest`` (for kserve's data plane)."""
    outputs = [RequestedOutput(o.name, {} if o.binary is None else {"binary_data": o.binary})
               for o in request.outputs]
    return InferRequest(
        model_name=model_name,
        infer_inputs=[CheckedInput(t) for t in request.inputs],
        request_id=request.id,
        parameters=dict(request.parameters),
        request_outputs=outputs or None,
    )


def tensors(request: InferRequest) -> list[Tensor]:
    """The request's inputs as checked core tensors (REST: already checked; gRPC: checked here)."""
    out = []
    for inp in request.inputs:
        checked = getattr(inp, "tensor", None)
        if checked is None:
            raw = inp._raw_data
            checked = Tensor.checked(inp.name, inp.datatype, list(inp.shape),
                                     None if raw is not None else list(inp.data or ()), raw)
        out.append(checked)
    return out


class _Output(InferOutput):
    """kserve's output tensor with a fast JSON path: ``ndarray.tolist()`` instead of kserve's
    per-element ``.item()`` loop; binary and BYTES paths unchanged."""

    def set_data_from_numpy(self, output_tensor: np.ndarray, binary_data: bool = True) -> None:
        if binary_data or self.datatype == "BYTES" or list(output_tensor.shape) != list(self.shape):
            super().set_data_from_numpy(output_tensor, binary_data)
            return
        if self._parameters:
            self._parameters.pop("binary_data_size", None)
        self._raw_data = None
        self._data = output_tensor.reshape(-1).tolist()


def encode_v2(
    request: InferRequest,
    model_name: str,
    model_version: str | None,
    probability: np.ndarray,
    predicted: np.ndarray,
    decision_datatype: str = "BOOL",
) -> InferResponse:
    """Probabilities (FP32) and decisions (BOOL or INT32) as kserve's V2 response.

    Honours the request's id, requested outputs and binary-output choice. Over gRPC the
    tensors are set as raw contents here: kserve's ``InferResponse.to_grpc`` tests a numpy
    array's truth value when the request came as raw contents, which fails for 2+ rows.
    """
    rows = len(probability)
    decision = predicted if decision_datatype == "BOOL" else predicted.astype(np.int32)
    outputs = [
        _Output(PROBABILITY, [rows], "FP32", probability.astype(np.float32, copy=False)),
        _Output(PREDICTED, [rows], decision_datatype, decision),
    ]
    requested = request.request_outputs
    if requested:
        unknown = [o.name for o in requested if o.name not in OUTPUT_NAMES]
        if unknown:
            raise InvalidInputError(
                f"unknown requested output(s) {_names(unknown)}; this model outputs {sorted(OUTPUT_NAMES)}")
    if request.from_grpc:
        if requested:
            wanted = [o.name for o in requested]
            outputs = sorted((o for o in outputs if o.name in wanted), key=lambda o: wanted.index(o.name))
        for output in outputs:
            output.set_data_from_numpy(output.data, binary_data=True)
    return InferResponse(
        response_id=request.id or "",
        model_name=model_name,
        model_version=model_version,
        infer_outputs=list(outputs),
        use_binary_outputs=request.use_binary_outputs,
        requested_outputs=None if request.from_grpc else requested,
    )


def rest_body(response: InferResponse) -> tuple[bytes | dict[str, Any], int | None]:
    """kserve's REST form of a response: a JSON document (in kserve's key order, ``parameters``
    null when absent, as kserve's response model writes it) or binary bytes with the JSON length."""
    body, json_length = response.to_rest()
    if json_length is not None or not isinstance(body, dict):
        return body, json_length
    return {
        "model_name": body.get("model_name"),
        "model_version": body.get("model_version"),
        "id": body.get("id"),
        "parameters": body.get("parameters"),
        "outputs": [
            {"name": o["name"], "shape": o["shape"], "datatype": o["datatype"],
             "parameters": o.get("parameters"), "data": o.get("data")}
            for o in body.get("outputs", [])
        ],
    }, None
