"""Open Inference Protocol (V2) REST requests, good and malformed, as data.

Every V2 surface of shopfloor (the cloud predictor today; the edge runtime, the collector and
the OPC UA bridge next) runs the same list: ``V2_CASES`` holds (description, method, path,
headers, body, expected status class). ``{model}`` and ``{version}`` in a path are the
served model's name and version. A server passes when every case answers in its class,
no case answers 5xx, and every refusal is a JSON ``{"error": ...}`` of bounded length.

The readings are two real AI4I rows (README's example); nothing here needs the data set.
"""

from __future__ import annotations

import json
import struct
from typing import Any, NamedTuple

INFER = "/v2/models/{model}/infer"
HEADER_LENGTH = "inference-header-content-length"
JSON = {"content-type": "application/json"}

#: Two valid rows, one per canonical field (product_type first, as the metadata lists them).
ROWS: dict[str, list[Any]] = {
    "product_type": ["L", "H"],
    "air_temperature_k": [298.1, 302.5],
    "process_temperature_k": [308.6, 310.9],
    "rotational_speed_rpm": [1551.0, 1320.0],
    "torque_nm": [42.8, 68.2],
    "tool_wear_min": [0.0, 215.0],
}


class V2Case(NamedTuple):
    description: str
    method: str
    path: str
    headers: dict[str, str]
    body: bytes
    expected: str  # "2xx" or "4xx"


def tensors(rows: dict[str, list[Any]] = ROWS) -> list[dict[str, Any]]:
    return [
        {"name": name, "datatype": "BYTES" if name == "product_type" else "FP64", "shape": [len(values)],
         "data": list(values)}
        for name, values in rows.items()
    ]


def request(**override: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"inputs": tensors()}
    body.update(override)
    return body


def edited(input_name: str, /, **changes: Any) -> dict[str, Any]:
    """The valid request with one input's fields changed (``None`` removes a field)."""
    body = request()
    for tensor in body["inputs"]:
        if tensor["name"] == input_name:
            for key, value in changes.items():
                if value is None:
                    tensor.pop(key, None)
                else:
                    tensor[key] = value
    return body


def dumps(document: Any) -> bytes:
    return json.dumps(document).encode()


def binary_body(rows: dict[str, list[Any]] = ROWS, *, tamper: str = "") -> tuple[bytes, dict[str, str]]:
    """The binary-data extension: JSON header, then FP64 little-endian / length-prefixed BYTES."""
    head_inputs, parts = [], []
    for name, values in rows.items():
        if name == "product_type":
            raw = b"".join(struct.pack("<I", len(v.encode())) + v.encode() for v in values)
            datatype = "BYTES"
        else:
            raw = struct.pack(f"<{len(values)}d", *values)
            datatype = "FP64"
        size = len(raw)
        if tamper == "short_tensor" and name == "torque_nm":
            raw = raw[:-3]
            size = len(raw)
        if tamper == "bad_bytes_length" and name == "product_type":
            raw = struct.pack("<I", 999) + raw[4:]
        head_inputs.append({"name": name, "datatype": datatype, "shape": [len(values)],
                            "parameters": {"binary_data_size": size}})
        parts.append(raw)
    head = dumps({"inputs": head_inputs, "parameters": {"binary_data_output": True}})
    body = head + b"".join(parts)
    if tamper == "trailing":
        body += b"\x00" * 8
    return body, {HEADER_LENGTH: str(len(head)), "content-type": "application/octet-stream"}


def _cases() -> list[V2Case]:
    cases: list[V2Case] = []

    def add(description: str, body: Any, expected: str = "4xx", *, method: str = "POST", path: str = INFER,
            headers: dict[str, str] | None = None) -> None:
        raw = body if isinstance(body, bytes) else dumps(body)
        cases.append(V2Case(description, method, path, headers if headers is not None else dict(JSON), raw,
                            expected))

    # -- answered ---------------------------------------------------------------------------
    add("valid JSON request", request(), "2xx")
    add("valid request without a content type", request(), "2xx", headers={})
    add("valid request with an id and requested outputs",
        request(id="r-1", outputs=[{"name": "failure_predicted"}]), "2xx")
    add("valid request with shape [N, 1] and nested data",
        {"inputs": [{**t, "shape": [2, 1], "data": [[v] for v in t["data"]]} for t in tensors()]}, "2xx")
    add("valid request with integer datatypes",
        edited("tool_wear_min", datatype="INT64", data=[0, 215]), "2xx")
    add("valid request for the served version", request(), "2xx",
        path="/v2/models/{model}/versions/{version}/infer")
    body, headers = binary_body()
    add("valid binary-data request", body, "2xx", headers=headers)

    # -- wrong address ----------------------------------------------------------------------
    add("unknown model", request(), path="/v2/models/no-such-model/infer")
    add("another model version", request(), path="/v2/models/{model}/versions/v9999/infer")
    add("GET on the infer route", b"", method="GET")
    add("model repository unload", b"", path="/v2/repository/models/{model}/unload")
    add("model repository load", b"", path="/v2/repository/models/{model}/load")
    add("model repository index", b"", path="/v2/repository/index")
    add("a very long model name", request(), path="/v2/models/" + "m" * 4000 + "/infer")
    add("a model name with control characters", request(), path="/v2/models/%00%0a%1b/infer")

    # -- not an inference request -------------------------------------------------------------
    add("empty body", b"")
    add("truncated JSON", b'{"inputs": [')
    add("not JSON", b"not json")
    add("JSON array", b"[]")
    add("JSON string", b'"inputs"')
    add("JSON null", b"null")
    add("V1 body on the V2 route", {"instances": []})
    add("inputs is not a list", {"inputs": {"name": "x"}})
    add("inputs hold numbers", {"inputs": [1, 2]})
    add("deeply nested JSON", b'{"inputs": ' + b"[" * 100_000 + b"]" * 100_000 + b"}")
    add("invalid UTF-8", b'{"inputs": [], "id": "\xff\xfe"}')
    add("id is a number", request(id=7))
    add("id of 10 kB", request(id="x" * 10_000))
    add("parameters not an object", request(parameters=[1]))
    add("binary_data_output not a boolean", request(parameters={"binary_data_output": "yes"}))
    add("outputs not a list", request(outputs={"name": "failure_probability"}))
    add("unknown requested output", request(outputs=[{"name": "remaining_useful_life"}]))
    add("too many inputs", {"inputs": tensors() * 20})

    # -- names --------------------------------------------------------------------------------
    body = request()
    body["inputs"].pop()
    add("missing input", body)
    body = request()
    body["inputs"].append({**body["inputs"][1], "name": "humidity"})
    add("unknown input", body)
    body = request()
    body["inputs"].append(dict(body["inputs"][1]))
    add("duplicate input", body)
    add("input without a name", edited("torque_nm", name=None))
    add("input name of 10 kB", edited("torque_nm", name="t" * 10_000))

    # -- shapes -------------------------------------------------------------------------------
    add("negative dimension on every input", {"inputs": [{**t, "shape": [-2]} for t in tensors()]})
    add("shape [-1] on every input", {"inputs": [{**t, "shape": [-1]} for t in tensors()]})
    add("negative dimension on one input", edited("torque_nm", shape=[-2]))
    add("scalar shape", edited("torque_nm", shape=[]))
    add("rank 9 shape", edited("torque_nm", shape=[2, 1, 1, 1, 1, 1, 1, 1, 1]))
    add("shape [2, 2]", edited("torque_nm", shape=[2, 2], data=[1.0, 2.0, 3.0, 4.0]))
    add("shape holds a string", edited("torque_nm", shape=["2"]))
    add("shape holds a float", edited("torque_nm", shape=[2.0]))
    add("shape holds a boolean", edited("torque_nm", shape=[True]))
    add("shape of 2**63 rows", edited("torque_nm", shape=[2**63]))
    add("no shape", edited("torque_nm", shape=None))
    add("fewer values than the shape", edited("torque_nm", data=[1.0]))
    add("inputs disagree on the batch", edited("torque_nm", shape=[3], data=[1.0, 2.0, 3.0]))
    add("empty batch", {"inputs": [{**t, "shape": [0], "data": []} for t in tensors()]})
    many = {name: values * 2500 for name, values in ROWS.items()}
    add("batch of 5000 rows", {"inputs": tensors(many)})
    add("ragged nested data", edited("torque_nm", shape=[2, 1], data=[[1.0], 2.0]))
    add("data nested deeper than the shape", edited("torque_nm", data=[[1.0], [2.0]]))

    # -- datatypes and values -------------------------------------------------------------------
    add("unknown datatype", edited("torque_nm", datatype="FP128"))
    add("lower-case datatype", edited("torque_nm", datatype="fp64"))
    add("datatype of 10 kB", edited("torque_nm", datatype="F" * 10_000))
    add("BYTES datatype for a reading", edited("torque_nm", datatype="BYTES"))
    add("numeric datatype for product_type", edited("product_type", datatype="FP32"))
    add("text in a reading", edited("torque_nm", data=["a", "b"]))
    add("numbers as strings", edited("torque_nm", data=["42.8", "68.2"]))
    add("booleans in a reading", edited("torque_nm", data=[True, False]))
    add("null in a reading", edited("torque_nm", data=[None, 1.0]))
    add("objects in a reading", edited("torque_nm", data=[{}, {}]))
    add("fractions in an INT32 input", edited("tool_wear_min", datatype="INT32", data=[0.5, 1.0]))
    add("NaN literal", dumps(request()).replace(b"42.8", b"NaN"))
    add("Infinity literal", dumps(request()).replace(b"42.8", b"Infinity"))
    add("-Infinity literal", dumps(request()).replace(b"42.8", b"-Infinity"))
    add("number beyond float64 (1e400)", dumps(request()).replace(b"42.8", b"1e400"))
    add("integer of 400 digits", dumps(request()).replace(b"42.8", b"1" * 400))
    add("no data", edited("torque_nm", data=None))
    add("data is not a list", edited("torque_nm", data=42.8))
    add("unknown product type", edited("product_type", data=["X", "L"]))
    add("numbers as product types", edited("product_type", data=[1, 2]))
    add("product type of 3 MB", edited("product_type", data=["L" * 3_000_000, "L"]))
    add("empty product type", edited("product_type", data=["", "L"]))

    # -- binary-data extension ----------------------------------------------------------------
    body, headers = binary_body()
    add("header length not an integer", body, headers={**headers, HEADER_LENGTH: "abc"})
    add("header length negative", body, headers={**headers, HEADER_LENGTH: "-5"})
    add("header length beyond the body", body, headers={**headers, HEADER_LENGTH: str(len(body) + 10)})
    add("header length of 40 digits", body, headers={**headers, HEADER_LENGTH: "9" * 40})
    add("header length zero", body, headers={**headers, HEADER_LENGTH: "0"})
    add("header length cuts the JSON", body, headers={**headers, HEADER_LENGTH: "10"})
    short, headers = binary_body(tamper="short_tensor")
    add("binary tensor shorter than its shape", short, headers=headers)
    bad, headers = binary_body(tamper="bad_bytes_length")
    add("BYTES element length beyond the data", bad, headers=headers)
    trailing, headers = binary_body(tamper="trailing")
    add("binary bytes that belong to no input", trailing, headers=headers)
    add("binary_data_size without the header",
        edited("torque_nm", data=None, parameters={"binary_data_size": 16}))
    for size in (-1, "16", True, 2**40):
        body = request()
        body["inputs"][4] = {k: v for k, v in body["inputs"][4].items() if k != "data"}
        body["inputs"][4]["parameters"] = {"binary_data_size": size}
        head = dumps(body)
        add(f"binary_data_size {size!r}", head + b"\x00" * 16, headers={HEADER_LENGTH: str(len(head))})
    body = request()
    body["inputs"][4]["parameters"] = {"binary_data_size": 16}
    head = dumps(body)
    add("both JSON data and binary data", head + struct.pack("<2d", 1.0, 2.0),
        headers={HEADER_LENGTH: str(len(head))})
    return cases


V2_CASES: list[V2Case] = _cases()
