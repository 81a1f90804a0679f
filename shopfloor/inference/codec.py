"""Open Inference Protocol (V2) and KServe V1 codecs: raw sensor readings in, decision out.

Clients send RAW readings in the canonical schema (``shopfloor.data.schema``), never features:
the predictor applies the training feature code itself, so a plant system cannot get feature
engineering subtly wrong. Decoding is strict because a predictor that guesses (casts text to
numbers, pads a short column, ignores an unknown field) turns a client bug into a silent
wrong prediction, and bounded because a predictor sits on a plant network: every refusal is
an :class:`~shopfloor.errors.InvalidInputError` whose message names the problem with a short
excerpt of the offending value, never the value itself.

Two layers, so every surface (the kserve predictor, the edge runtime, later MQTT or OPC UA)
shares one set of rules:

* :func:`parse_request` turns a V2 REST body (JSON, or JSON plus the binary-data extension:
  ``inference-header-content-length``, per-tensor ``binary_data_size``, raw little-endian
  tensors, BYTES as 4-byte-length-prefixed strings) into :class:`Tensor` objects, checking
  structure, shapes (no negative dimension), datatypes and sizes. A gRPC request's tensors
  become :class:`Tensor` objects through :meth:`Tensor.checked`, the same checks.
* :func:`decode_columns` (V2) and :func:`decode_v1` turn tensors or V1 instances into one
  checked 1-D column per canonical field: names exactly the canonical ones, one batch size
  within the limit, numbers finite, product types known.

:func:`encode_response` is the inverse of :func:`parse_request` for responses.

Precision: JSON numbers are parsed to float64 and kept as such (as pandas does when training
reads the CSV), so the same readings give bit-identical features in training and serving.
Binary tensors keep the precision the client chose. numpy and the standard library only
(orjson when installed, for speed).
"""

from __future__ import annotations

import json
import math
import struct
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from shopfloor import settings
from shopfloor.data import schema
from shopfloor.errors import InvalidInputError, excerpt

try:  # the cloud predictor has orjson (kserve needs it); the edge may not
    import orjson as _orjson
except ImportError:  # pragma: no cover - exercised by the edge install
    _orjson = None  # type: ignore[assignment]

#: Output names (V2 outputs and V1 prediction keys).
PROBABILITY = "failure_probability"
PREDICTED = "failure_predicted"
OUTPUT_NAMES: tuple[str, ...] = (PROBABILITY, PREDICTED)
DECISION_DATATYPES: tuple[str, ...] = ("BOOL", "INT32")

#: Header of the binary-data extension: length of the JSON part of a body.
HEADER_LENGTH = "inference-header-content-length"

TEXT_FIELD = schema.PRODUCT_TYPE
NUMERIC_FIELDS: tuple[str, ...] = schema.SENSOR_COLUMNS
INPUT_FIELDS: tuple[str, ...] = schema.INPUT_COLUMNS
NUMERIC_DATATYPES = frozenset({"FP32", "FP64", "INT32", "INT64"})
_INTEGER_DATATYPES = frozenset({"INT32", "INT64"})
_INPUT_SET = frozenset(INPUT_FIELDS)
_PRODUCT_TYPES = frozenset(schema.PRODUCT_TYPES)
_NUMBER_TYPES = (int, float)

#: V2 datatypes and their little-endian numpy types (BYTES is length-prefixed, not fixed).
DATATYPES: dict[str, np.dtype[Any] | None] = {
    "BOOL": np.dtype("|b1"),
    "UINT8": np.dtype("|u1"), "UINT16": np.dtype("<u2"), "UINT32": np.dtype("<u4"), "UINT64": np.dtype("<u8"),
    "INT8": np.dtype("|i1"), "INT16": np.dtype("<i2"), "INT32": np.dtype("<i4"), "INT64": np.dtype("<i8"),
    "FP16": np.dtype("<f2"), "FP32": np.dtype("<f4"), "FP64": np.dtype("<f8"),
    "BYTES": None,
}

#: Structural limits of one request, whatever the model: the body size (set by the server)
#: bounds the bytes; these bound what a small body could still make expensive.
MAX_TENSORS = 64
MAX_RANK = 8
MAX_NAME_CHARS = 256
MAX_ID_CHARS = 256

#: A decoded request: one 1-D array per canonical input field, all of the same length.
Columns = dict[str, np.ndarray]


def _names(values: Iterable[str], limit: int = 5) -> str:
    """``['a', 'b']`` with each name cut short and at most ``limit`` shown: names are client data."""
    items = list(values)
    shown = ", ".join(excerpt(v, 40) for v in items[:limit])
    more = f", … {len(items) - limit} more" if len(items) > limit else ""
    return f"[{shown}{more}]"


# -- tensors ------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Tensor:
    """One checked input tensor: its values are flat (row-major) and match its shape.

    ``values`` is a list (JSON or gRPC typed contents), a 1-D numpy array (raw fixed-size
    data) or a list of ``bytes`` (raw BYTES data).
    """

    name: str
    datatype: str
    shape: tuple[int, ...]
    values: Any
    parameters: Mapping[str, Any] = field(default_factory=dict)

    @property
    def size(self) -> int:
        return math.prod(self.shape)

    @classmethod
    def checked(
        cls,
        name: Any,
        datatype: Any,
        shape: Any,
        data: Any = None,
        raw: bytes | memoryview | None = None,
        parameters: Mapping[str, Any] | None = None,
    ) -> Tensor:
        """Build a tensor from untrusted parts, refusing anything malformed by name."""
        if not isinstance(name, str) or not name or len(name) > MAX_NAME_CHARS:
            raise InvalidInputError(
                f"every tensor needs a name of 1 to {MAX_NAME_CHARS} characters, got {excerpt(name)}")
        where = f"input {excerpt(name, 40)}"
        if not isinstance(datatype, str) or datatype not in DATATYPES:
            raise InvalidInputError(
                f"{where} has datatype {excerpt(datatype, 30)}; expected one of {sorted(DATATYPES)}")
        dims = _shape(shape, where)
        count = math.prod(dims)
        if raw is not None:
            if data is not None:
                raise InvalidInputError(f"{where} has both JSON data and binary data")
            values = _from_raw(raw, datatype, count, where)
        else:
            if not isinstance(data, list):
                raise InvalidInputError(f"{where} has no data (a list, or binary data)")
            values = _flatten(data, len(dims), where)
            if len(values) != count:
                raise InvalidInputError(
                    f"{where} has {len(values)} values but shape {list(dims)} needs {count}")
        return cls(name, datatype, dims, values, dict(parameters or {}))


def _shape(shape: Any, where: str) -> tuple[int, ...]:
    if not isinstance(shape, list | tuple) or len(shape) > MAX_RANK:
        raise InvalidInputError(f"{where} needs a shape: a list of at most {MAX_RANK} sizes")
    for dim in shape:
        if isinstance(dim, bool) or not isinstance(dim, int):
            raise InvalidInputError(f"{where} has shape {excerpt(shape, 60)}; sizes must be integers")
        if dim < 0:
            raise InvalidInputError(
                f"{where} has shape {list(shape)} with a negative size; a request's shape is concrete")
    return tuple(shape)


def _flatten(data: list[Any], rank: int, where: str) -> list[Any]:
    """Row-major values of a (possibly nested, as V2 JSON allows) data list."""
    if not any(type(v) is list for v in data):
        return data
    flat: list[Any] = data
    for _ in range(max(rank - 1, 0)):
        if not all(type(v) is list for v in flat):
            raise InvalidInputError(f"{where} has ragged nested data")
        flat = [v for row in flat for v in row]
        if not any(type(v) is list for v in flat):
            return flat
    raise InvalidInputError(f"{where} has data nested deeper than its shape")


def _from_raw(raw: bytes | memoryview, datatype: str, count: int, where: str) -> Any:
    dtype = DATATYPES[datatype]
    if dtype is None:
        return _split_bytes(raw, count, where)
    if len(raw) != count * dtype.itemsize:
        raise InvalidInputError(
            f"{where} has {len(raw)} bytes of binary data; {count} {datatype} values need "
            f"{count * dtype.itemsize}")
    return np.frombuffer(raw, dtype=dtype)


def _split_bytes(raw: bytes | memoryview, count: int, where: str) -> list[bytes]:
    """BYTES binary data: each element a 4-byte little-endian length, then that many bytes."""
    view = memoryview(raw)
    out: list[bytes] = []
    offset, end = 0, len(view)
    while offset < end:
        if offset + 4 > end or len(out) >= count:
            break
        (length,) = struct.unpack_from("<I", view, offset)
        offset += 4
        if offset + length > end:
            raise InvalidInputError(f"{where}: a BYTES element says {length} bytes but the data ends first")
        out.append(bytes(view[offset : offset + length]))
        offset += length
    if len(out) != count or offset != end:
        raise InvalidInputError(
            f"{where}: binary BYTES data does not hold exactly {count} length-prefixed elements")
    return out


# -- requests -----------------------------------------------------------------------------------
@dataclass(frozen=True)
class RequestedOutput:
    name: str
    binary: bool | None = None


@dataclass(frozen=True)
class InferenceRequest:
    """A parsed V2 request: checked tensors, what to answer and how."""

    inputs: tuple[Tensor, ...]
    id: str | None = None
    outputs: tuple[RequestedOutput, ...] = ()
    parameters: Mapping[str, Any] = field(default_factory=dict)
    binary_output: bool = False

    def binary_for(self, name: str) -> bool:
        """Whether output ``name`` goes in the binary part (its own choice, else the request's)."""
        for out in self.outputs:
            if out.name == name and out.binary is not None:
                return out.binary
        return self.binary_output


def _loads(data: bytes | memoryview) -> Any:
    """JSON -> Python; NaN/Infinity literals parse (and are refused later by name, with the row)."""
    text = bytes(data)
    if _orjson is not None:
        try:
            return _orjson.loads(text)
        except _orjson.JSONDecodeError:
            pass  # retried below: the stdlib also reads NaN literals and integers beyond 64 bits
    try:
        return json.loads(text.decode("utf-8"))
    except UnicodeDecodeError:
        raise InvalidInputError("malformed JSON body: not UTF-8") from None
    except RecursionError:
        raise InvalidInputError("malformed JSON body: nested too deeply") from None
    except ValueError as exc:
        raise InvalidInputError(f"malformed JSON body: {excerpt(str(exc), 120)}") from None


def _parameters(value: Any, where: str) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise InvalidInputError(f"{where}: parameters must be an object")
    return value


def _flag(parameters: Mapping[str, Any], key: str, where: str) -> bool | None:
    value = parameters.get(key)
    if value is not None and not isinstance(value, bool):
        raise InvalidInputError(f"{where}: parameter {key} must be true or false, got {excerpt(value, 30)}")
    return value


def _header_length(value: str | bytes | int | None, body_length: int) -> int | None:
    if value is None:
        return None
    if isinstance(value, bytes):
        value = value.decode("latin-1")
    text = str(value).strip()
    if not text.isdigit() or len(text) > 18:
        raise InvalidInputError(f"{HEADER_LENGTH} must be a non-negative integer, got {excerpt(value, 30)}")
    length = int(text)
    if length > body_length:
        raise InvalidInputError(f"{HEADER_LENGTH} is {length} but the body has only {body_length} bytes")
    return length


def parse_request(body: bytes, header_length: str | bytes | int | None = None) -> InferenceRequest:
    """A V2 REST body (with the binary-data extension when ``header_length`` is given) -> request."""
    json_length = _header_length(header_length, len(body))
    view = memoryview(body)
    head = view if json_length is None else view[:json_length]
    document = _loads(head)
    if not isinstance(document, dict):
        raise InvalidInputError("invalid inference request: the body must be a JSON object with 'inputs'")
    inputs = document.get("inputs")
    if not isinstance(inputs, list):
        raise InvalidInputError("invalid inference request: field 'inputs' must be a list of tensors")
    if len(inputs) > MAX_TENSORS:
        raise InvalidInputError(f"invalid inference request: {len(inputs)} inputs, at most {MAX_TENSORS}")
    request_id = document.get("id")
    if request_id is not None and (not isinstance(request_id, str) or len(request_id) > MAX_ID_CHARS):
        raise InvalidInputError(f"invalid inference request: id must be a string of at most {MAX_ID_CHARS} "
                                f"characters, got {excerpt(request_id, 40)}")
    parameters = _parameters(document.get("parameters"), "request")
    binary_output = bool(_flag(parameters, "binary_data_output", "request"))

    offset = len(head)
    tensors = []
    for i, item in enumerate(inputs):
        if not isinstance(item, dict):
            raise InvalidInputError(f"invalid inference request: inputs[{i}] must be an object")
        where = f"inputs[{i}]"
        params = _parameters(item.get("parameters"), where)
        size = params.get("binary_data_size")
        raw = None
        if size is not None:
            if json_length is None:
                raise InvalidInputError(
                    f"{where} has binary_data_size but the request has no {HEADER_LENGTH} header")
            if isinstance(size, bool) or not isinstance(size, int) or size < 0:
                raise InvalidInputError(f"{where}: binary_data_size must be a non-negative integer, "
                                        f"got {excerpt(size, 30)}")
            if offset + size > len(view):
                raise InvalidInputError(f"{where}: binary_data_size {size} runs past the end of the body")
            raw = view[offset : offset + size]
            offset += size
        tensors.append(Tensor.checked(item.get("name"), item.get("datatype"), item.get("shape"),
                                      item.get("data"), raw, params))
    if offset != len(view):
        raise InvalidInputError(
            f"invalid inference request: {len(view) - offset} bytes of binary data belong to no input")

    outputs = document.get("outputs")
    requested: list[RequestedOutput] = []
    if outputs is not None:
        if not isinstance(outputs, list) or len(outputs) > MAX_TENSORS:
            raise InvalidInputError(f"invalid inference request: outputs must be a list of at most "
                                    f"{MAX_TENSORS} objects")
        for i, out in enumerate(outputs):
            if not isinstance(out, dict) or not isinstance(out.get("name"), str):
                raise InvalidInputError(f"invalid inference request: outputs[{i}] needs a name")
            where = f"outputs[{i}]"
            binary = _flag(_parameters(out.get("parameters"), where), "binary_data", where)
            requested.append(RequestedOutput(out["name"], binary))
    return InferenceRequest(tuple(tensors), request_id, tuple(requested), parameters, binary_output)


_PLAIN_ITEM_KEYS = frozenset(("name", "datatype", "shape", "data"))
_FLOAT_DATATYPES = frozenset({"FP32", "FP64"})
_FLOAT_ONLY = {float}
_PENDING = np.empty(0)


def plain_json_columns(body: bytes, max_batch: int = settings.MAX_BATCH) -> tuple[Columns, str | None] | None:
    """The common request, decoded in one pass: (columns, id), or None for anything else.

    "Common" is a JSON body holding only ``inputs`` (and a string ``id``): the six canonical
    fields, each with exactly name, datatype, shape ``[N]`` or ``[N, 1]`` and flat data, all
    valid. Such a body gives the columns :func:`parse_request` and :func:`decode_columns`
    would give; None sends every other body (other fields, parameters, binary data, and
    anything invalid) down that strict path, which alone words the refusals. No finiteness
    check is needed here: orjson refuses NaN, Infinity and numbers that overflow a double
    (those bodies then take the strict path through the stdlib parser).
    """
    if _orjson is None:
        return None
    try:
        document = _orjson.loads(body)
        if type(document) is not dict:
            return None
        inputs = document.get("inputs")
        request_id = document.get("id")
        if type(inputs) is not list or len(inputs) != len(INPUT_FIELDS):
            return None
        if request_id is None:
            if len(document) != 1:
                return None
        elif type(request_id) is not str or len(request_id) > MAX_ID_CHARS or len(document) != 2:
            return None
        rows = -1
        columns: Columns = {}
        floats: list[tuple[str, list[Any]]] = []
        for item in inputs:
            if type(item) is not dict or len(item) != len(_PLAIN_ITEM_KEYS):
                return None
            name, shape, data = item["name"], item["shape"], item["data"]  # KeyError: other keys
            if type(name) is not str or name not in _INPUT_SET or name in columns:
                return None
            if type(shape) is not list or type(data) is not list:
                return None
            if len(shape) == 2:
                if type(shape[1]) is not int or shape[1] != 1:
                    return None
            elif len(shape) != 1:
                return None
            n = shape[0]
            if type(n) is not int or n < 1 or n > max_batch or (rows >= 0 and n != rows) or len(data) != n:
                return None
            rows = n
            datatype = item["datatype"]  # with name, shape and data: exactly _PLAIN_ITEM_KEYS
            if name == TEXT_FIELD:
                if datatype != "BYTES" or not _PRODUCT_TYPES.issuperset(data):
                    return None
                columns[name] = np.array(data)
                continue
            if type(datatype) is not str or datatype not in NUMERIC_DATATYPES:
                return None
            if datatype in _FLOAT_DATATYPES and (
                type(data[0]) is float if n == 1 else set(map(type, data)) == _FLOAT_ONLY
            ):
                columns[name] = _PENDING  # filled below, in one array for all float-only fields
                floats.append((name, data))
                continue
            values = np.asarray(data)  # what decode_columns does with the same list
            kind = values.dtype.kind
            if values.ndim != 1 or kind not in "iuf" or (kind == "f" and datatype in _INTEGER_DATATYPES):
                return None
            columns[name] = values.astype(np.float64, copy=False)
        if floats:
            matrix = np.array([data for _, data in floats], dtype=np.float64)
            for (name, _), values in zip(floats, matrix, strict=True):
                columns[name] = values
    except Exception:  # anything odd is the strict path's to word
        return None
    return columns, request_id


# -- columns ------------------------------------------------------------------------------------
def check_batch(rows: int, max_batch: int) -> None:
    if rows < 1:
        raise InvalidInputError("empty batch: a request must carry at least one row")
    if rows > max_batch:
        raise InvalidInputError(f"batch of {rows} rows exceeds this predictor's maximum of {max_batch}")


def check_names(names: Sequence[str], what: str) -> None:
    """Exactly the canonical fields: a missing or unknown field is a client bug, not noise."""
    if len(names) == len(INPUT_FIELDS) and _INPUT_SET.issuperset(names) and len(set(names)) == len(names):
        return  # the common case, checked cheaply
    counts = Counter(names)
    duplicates = sorted(n for n, c in counts.items() if c > 1)
    if duplicates:
        raise InvalidInputError(f"duplicate {what} {_names(duplicates)}")
    unknown = sorted(set(names) - _INPUT_SET)
    missing = [n for n in INPUT_FIELDS if n not in counts]
    problems = []
    if missing:
        problems.append(f"missing {what} {_names(missing, len(INPUT_FIELDS))}")
    if unknown:
        problems.append(f"unknown {what} {_names(unknown)}")
    raise InvalidInputError("; ".join(problems) + f"; expected exactly {list(INPUT_FIELDS)}")


def _finite(name: str, values: np.ndarray) -> np.ndarray:
    if values.dtype.kind == "f" and not np.isfinite(values).all():
        row = int(np.flatnonzero(~np.isfinite(values))[0])
        raise InvalidInputError(f"input '{name}' holds NaN or infinity (row {row}); readings must be finite")
    return values


def _product_types(name: str, values: Sequence[Any], rows: int) -> np.ndarray:
    if len(values) != rows:
        raise InvalidInputError(f"input '{name}' has {len(values)} values but the batch has {rows} rows")
    texts = []
    for value in values:
        if isinstance(value, bytes):
            try:
                value = value.decode("utf-8")
            except UnicodeDecodeError:
                raise InvalidInputError(f"input '{name}' holds bytes that are not UTF-8") from None
        elif not isinstance(value, str):
            raise InvalidInputError(
                f"input '{name}' must hold strings, got {type(value).__name__} {excerpt(value, 30)}")
        texts.append(value)
    unknown = set(texts) - _PRODUCT_TYPES
    if unknown:
        raise InvalidInputError(
            f"input '{name}' holds unknown product types {_names(sorted(unknown))}; "
            f"expected one of {list(schema.PRODUCT_TYPES)}"
        )
    return np.array(texts)


def _numeric(tensor: Tensor, rows: int) -> np.ndarray:
    name, datatype = tensor.name, tensor.datatype
    if datatype not in NUMERIC_DATATYPES:
        raise InvalidInputError(
            f"input '{name}' has datatype {datatype}; expected one of {sorted(NUMERIC_DATATYPES)}")
    try:
        values = np.asarray(tensor.values)
    except (ValueError, TypeError):  # e.g. ragged nesting inside a flat list
        raise InvalidInputError(f"input '{name}': malformed tensor data") from None
    kind = values.dtype.kind
    if kind not in "iuf":
        got = {"U": "text", "S": "text", "b": "booleans"}.get(kind, "mixed values")
        raise InvalidInputError(f"input '{name}' ({datatype}) must hold numbers, got {got}")
    if kind == "f" and datatype in _INTEGER_DATATYPES:
        raise InvalidInputError(f"input '{name}' is {datatype} but holds non-integer numbers")
    return _finite(name, values.reshape(rows).astype(np.float64, copy=False))


def _text(tensor: Tensor, rows: int) -> np.ndarray:
    if tensor.datatype != "BYTES":
        raise InvalidInputError(
            f"input '{tensor.name}' has datatype {tensor.datatype}; expected BYTES "
            f"(one of {list(schema.PRODUCT_TYPES)})"
        )
    return _product_types(tensor.name, tensor.values, rows)


def decode_columns(inputs: Sequence[Tensor], max_batch: int = settings.MAX_BATCH) -> Columns:
    """V2 input tensors -> columns; one named input per canonical field.

    Each input has shape ``[N]`` or ``[N, 1]`` with the same ``N`` (1 to ``max_batch``);
    ``product_type`` is BYTES, the readings FP32/FP64/INT32/INT64, all finite.
    """
    check_names([t.name for t in inputs], "input(s)")
    rows = -1
    for tensor in inputs:
        shape = list(tensor.shape)
        if not (len(shape) == 1 or (len(shape) == 2 and shape[1] == 1)):
            raise InvalidInputError(f"input '{tensor.name}' has shape {shape}; expected [N] or [N, 1]")
        if rows < 0:
            rows = shape[0]
        elif shape[0] != rows:
            raise InvalidInputError(
                f"inputs disagree on the batch size: '{inputs[0].name}' has {rows} rows, "
                f"'{tensor.name}' has {shape[0]}"
            )
    check_batch(rows, max_batch)
    columns: Columns = {}
    for tensor in inputs:
        columns[tensor.name] = _text(tensor, rows) if tensor.name == TEXT_FIELD else _numeric(tensor, rows)
    return columns


def decode_v1(body: Any, max_batch: int = settings.MAX_BATCH) -> Columns:
    """KServe V1 ``{"instances": [{field: value, ...}, ...]}`` -> columns.

    A raw body (bytes or text: kserve hands those over when the content type is not JSON) is
    parsed here rather than refused, since the V1 body is JSON by definition.
    """
    if isinstance(body, bytes | bytearray | memoryview | str):
        body = _loads(body.encode() if isinstance(body, str) else bytes(body))
    if not isinstance(body, Mapping) or "instances" not in body:
        raise InvalidInputError(
            'a V1 request must be a JSON object {"instances": [{...}, ...]} with one '
            f"object per row holding {list(INPUT_FIELDS)}"
        )
    instances = body["instances"]
    if not isinstance(instances, list):
        raise InvalidInputError(f'"instances" must be a list of objects, got {type(instances).__name__}')
    check_batch(len(instances), max_batch)
    for i, instance in enumerate(instances):
        if not isinstance(instance, dict):
            raise InvalidInputError(
                f"instances[{i}] must be an object with fields {list(INPUT_FIELDS)}, "
                f"got {type(instance).__name__}"
            )
        if len(instance) != len(INPUT_FIELDS) or not _INPUT_SET.issuperset(instance):
            try:
                check_names(list(instance), "field(s)")
            except InvalidInputError as exc:
                raise InvalidInputError(f"instances[{i}]: {exc}") from None
    columns: Columns = {}
    for name in NUMERIC_FIELDS:
        values = [instance[name] for instance in instances]
        for i, value in enumerate(values):
            if type(value) not in _NUMBER_TYPES:  # bool is an int subclass: excluded on purpose
                raise InvalidInputError(f"instances[{i}].{name} must be a number, got {excerpt(value, 30)}")
        try:
            array = np.array(values, dtype=np.float64)
        except OverflowError:
            raise InvalidInputError(f"instances[*].{name}: a number is too large for a reading") from None
        columns[name] = _finite(name, array)
    columns[TEXT_FIELD] = _product_types(TEXT_FIELD, [inst[TEXT_FIELD] for inst in instances], len(instances))
    return columns


# -- metadata and responses ---------------------------------------------------------------------
def input_metadata() -> list[dict[str, Any]]:
    """V2 metadata of the inputs: one tensor per raw field, any batch size.

    Numeric fields are advertised as FP64 (the precision training used); FP32, INT32 and
    INT64 are accepted too.
    """
    return [
        {"name": name, "datatype": "BYTES" if name == TEXT_FIELD else "FP64", "shape": [-1]}
        for name in INPUT_FIELDS
    ]


def output_metadata(decision_datatype: str = "BOOL") -> list[dict[str, Any]]:
    """V2 metadata of the outputs: probability and the decision at the model's threshold."""
    return [
        {"name": PROBABILITY, "datatype": "FP32", "shape": [-1]},
        {"name": PREDICTED, "datatype": decision_datatype, "shape": [-1]},
    ]


@dataclass(frozen=True)
class OutputTensor:
    name: str
    datatype: str
    values: np.ndarray


def output_tensors(probability: np.ndarray, predicted: np.ndarray,
                   decision_datatype: str = "BOOL") -> list[OutputTensor]:
    """The two outputs: probability as FP32, the decision as BOOL (or INT32 for old clients)."""
    decision = predicted.astype(np.bool_ if decision_datatype == "BOOL" else np.int32, copy=False)
    return [OutputTensor(PROBABILITY, "FP32", probability.astype(np.float32, copy=False)),
            OutputTensor(PREDICTED, decision_datatype, decision)]


def select_outputs(outputs: Sequence[OutputTensor], request: InferenceRequest) -> list[OutputTensor]:
    """The requested outputs in the requested order (all when none were named)."""
    if not request.outputs:
        return list(outputs)
    by_name = {o.name: o for o in outputs}
    unknown = [o.name for o in request.outputs if o.name not in by_name]
    if unknown:
        raise InvalidInputError(
            f"unknown requested output(s) {_names(unknown)}; this model outputs {sorted(by_name)}")
    return [by_name[o.name] for o in request.outputs]


def _raw_bytes(tensor: OutputTensor) -> bytes:
    dtype = DATATYPES[tensor.datatype]
    if dtype is None:
        parts = []
        for value in tensor.values.reshape(-1).tolist():
            data = value if isinstance(value, bytes) else str(value).encode("utf-8")
            parts += [struct.pack("<I", len(data)), data]
        return b"".join(parts)
    return np.ascontiguousarray(tensor.values, dtype=dtype).tobytes()


def _dumps(document: Any) -> bytes:
    if _orjson is not None:
        return bytes(_orjson.dumps(document))
    return json.dumps(document, separators=(",", ":")).encode()


def encode_response(
    request: InferenceRequest, model_name: str, model_version: str | None, outputs: Sequence[OutputTensor]
) -> tuple[bytes, int | None]:
    """A V2 response body, and the JSON length when binary outputs follow (the header's value)."""
    chosen = select_outputs(outputs, request)
    described = []
    binary_parts = []
    for tensor in chosen:
        item: dict[str, Any] = {"name": tensor.name, "datatype": tensor.datatype,
                                "shape": list(tensor.values.shape)}
        if request.binary_for(tensor.name):
            raw = _raw_bytes(tensor)
            item["parameters"] = {"binary_data_size": len(raw)}
            binary_parts.append(raw)
        else:
            values = tensor.values.reshape(-1)
            item["data"] = [v.decode() if isinstance(v, bytes) else v for v in values.tolist()] \
                if tensor.datatype == "BYTES" else values.tolist()
        described.append(item)
    document: dict[str, Any] = {"model_name": model_name, "model_version": model_version,
                                "outputs": described}
    if request.id is not None:
        document["id"] = request.id
    head = _dumps(document)
    if not binary_parts:
        return head, None
    return b"".join([head, *binary_parts]), len(head)


class PlainAnswer:
    """:func:`encode_response` for a request that names no outputs and wants no binary data,
    with the constant parts of the body encoded once per model version: same bytes."""

    def __init__(self, model_name: str, model_version: str | None, decision_datatype: str = "BOOL") -> None:
        dumps = _orjson.dumps if _orjson is not None else _dumps
        self._head = (b'{"model_name":' + dumps(model_name) + b',"model_version":' + dumps(model_version)
                      + b',"outputs":[{"name":' + dumps(PROBABILITY) + b',"datatype":"FP32","shape":[')
        self._middle = (b'},{"name":' + dumps(PREDICTED) + b',"datatype":' + dumps(decision_datatype)
                        + b',"shape":[')
        self._data = b'],"data":'
        self._decision = np.bool_ if decision_datatype == "BOOL" else np.int32
        self._dumps = dumps

    def body(self, probability: np.ndarray, predicted: np.ndarray, request_id: str | None) -> bytes:
        dumps = self._dumps
        rows = str(len(probability)).encode()
        tail = b"}]}" if request_id is None else b'}],"id":' + dumps(request_id) + b"}"
        probabilities = dumps(probability.astype(np.float32, copy=False).tolist())
        decisions = dumps(predicted.astype(self._decision, copy=False).tolist())
        return b"".join((self._head, rows, self._data, probabilities,
                         self._middle, rows, self._data, decisions, tail))


def encode_v1(probability: np.ndarray, predicted: np.ndarray) -> dict[str, Any]:
    """V1 ``{"predictions": [{"failure_probability": p, "failure_predicted": b}, ...]}``."""
    probs = probability.astype(np.float32, copy=False).tolist()
    return {
        "predictions": [
            {PROBABILITY: p, PREDICTED: d} for p, d in zip(probs, predicted.tolist(), strict=True)
        ]
    }
