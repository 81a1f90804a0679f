"""The serving core's V2 codec: interoperable with real clients, strict, and bounded.

Interop is checked against Triton's own HTTP client (it writes the binary-data extension
requests and reads responses), strictness against the shared malformed-request list
(tests/v2_cases.py) run straight through the core, as any surface would.
"""

from __future__ import annotations

import struct

import numpy as np
import pandas as pd
import pytest

from shopfloor.data import schema
from shopfloor.errors import MAX_MESSAGE_CHARS, InvalidInputError
from shopfloor.inference import codec
from shopfloor.inference.features import Featurizer
from tests.v2_cases import HEADER_LENGTH, INFER, V2_CASES, binary_body

tritonhttp = pytest.importorskip("tritonclient.http")


def _triton_inputs(rows: pd.DataFrame, binary: bool, datatype: str = "FP64") -> list:
    inputs = []
    for name in schema.INPUT_COLUMNS:
        if name == schema.PRODUCT_TYPE:
            tensor = tritonhttp.InferInput(name, [len(rows)], "BYTES")
            tensor.set_data_from_numpy(rows[name].to_numpy(dtype=object).astype(bytes), binary_data=binary)
        else:
            tensor = tritonhttp.InferInput(name, [len(rows)], datatype)
            dtype = np.float32 if datatype == "FP32" else np.float64
            tensor.set_data_from_numpy(rows[name].to_numpy(dtype=dtype), binary_data=binary)
        inputs.append(tensor)
    return inputs


@pytest.mark.parametrize("binary", [False, True], ids=["json", "binary"])
def test_triton_client_requests_decode_to_the_training_features(
    real_frame: pd.DataFrame, binary: bool
) -> None:
    rows = real_frame.sample(300, random_state=3)
    body, json_size = tritonhttp.InferenceServerClient.generate_request_body(
        _triton_inputs(rows, binary), request_id="r-7")
    request = codec.parse_request(body, None if json_size is None else str(json_size))
    assert request.id == "r-7"
    columns = codec.decode_columns(request.inputs, max_batch=len(rows))
    featurizer = Featurizer.fit(real_frame)
    np.testing.assert_array_equal(featurizer.transform(columns).view(np.uint32),
                                  featurizer.transform(rows).view(np.uint32))


def test_fp32_binary_tensors_keep_the_client_s_precision(real_frame: pd.DataFrame) -> None:
    rows = real_frame.head(5)
    client = tritonhttp.InferenceServerClient
    body, json_size = client.generate_request_body(_triton_inputs(rows, True, "FP32"))
    columns = codec.decode_columns(codec.parse_request(body, json_size).inputs)
    expected = rows[schema.TORQUE].to_numpy(dtype=np.float32).astype(np.float64)
    np.testing.assert_array_equal(columns[schema.TORQUE], expected)


@pytest.mark.parametrize("binary", [False, True], ids=["json", "binary"])
def test_responses_read_back_with_the_triton_client(binary: bool) -> None:
    probability = np.array([1e-5, 0.25, 0.99999], dtype=np.float64)
    predicted = probability >= 0.5
    request = codec.InferenceRequest(inputs=(), id="abc", binary_output=binary)
    body, json_length = codec.encode_response(request, "m", "v0003",
                                              codec.output_tensors(probability, predicted))
    assert (json_length is not None) == binary
    result = tritonhttp.InferResult.from_response_body(body, header_length=json_length)
    np.testing.assert_array_equal(result.as_numpy(codec.PROBABILITY), probability.astype(np.float32))
    np.testing.assert_array_equal(result.as_numpy(codec.PREDICTED), predicted)
    assert result.get_response()["model_version"] == "v0003" and result.get_response()["id"] == "abc"


def test_requested_outputs_choose_their_own_encoding() -> None:
    request = codec.InferenceRequest(inputs=(), outputs=(codec.RequestedOutput(codec.PREDICTED, True),))
    outputs = codec.output_tensors(np.array([0.2, 0.7]), np.array([False, True]), "INT32")
    body, json_length = codec.encode_response(request, "m", None, outputs)
    result = tritonhttp.InferResult.from_response_body(body, header_length=json_length)
    assert [o["name"] for o in result.get_response()["outputs"]] == [codec.PREDICTED]
    np.testing.assert_array_equal(result.as_numpy(codec.PREDICTED), np.array([0, 1], dtype=np.int32))
    with pytest.raises(InvalidInputError, match="unknown requested output"):
        unknown = codec.InferenceRequest(inputs=(), outputs=(codec.RequestedOutput("x" * 10**6),))
        codec.encode_response(unknown, "m", None, outputs)


# --- the shared malformed-request list, straight through the core -------------------------------

_CORE_CASES = [c for c in V2_CASES if c.method == "POST" and c.path == INFER]


@pytest.mark.parametrize("case", _CORE_CASES, ids=[c.description for c in _CORE_CASES])
def test_shared_v2_cases_through_the_core(case) -> None:
    def answer() -> None:
        request = codec.parse_request(case.body, case.headers.get(HEADER_LENGTH))
        columns = codec.decode_columns(request.inputs)
        rows = len(columns[schema.PRODUCT_TYPE])
        codec.encode_response(request, "m", "v1", codec.output_tensors(np.zeros(rows), np.zeros(rows, bool)))

    if case.expected == "2xx":
        answer()
        return
    with pytest.raises(InvalidInputError) as refused:
        answer()
    message = str(refused.value)
    # Bounded at the source: the message names the problem, never the value in full.
    assert 0 < len(message) <= MAX_MESSAGE_CHARS, (len(message), message[:200])


def test_negative_dimensions_are_refused_by_name() -> None:
    body = b'{"inputs": [{"name": "torque_nm", "datatype": "FP64", "shape": [-2], "data": [1.0, 2.0]}]}'
    with pytest.raises(InvalidInputError, match=r"shape \[-2\] with a negative size"):
        codec.parse_request(body)
    with pytest.raises(InvalidInputError, match="negative size"):  # gRPC tensors: the same check
        codec.Tensor.checked("torque_nm", "FP64", [-2], raw=b"\x00" * 16)


def test_binary_bytes_elements_are_parsed_exactly() -> None:
    parts = [b"L", b"", "é".encode(), b"H" * 300]
    raw = b"".join(struct.pack("<I", len(p)) + p for p in parts)
    tensor = codec.Tensor.checked("t", "BYTES", [4], raw=raw)
    assert tensor.values == parts
    for bad in (raw[:-1], raw + b"\x00", raw[:3], struct.pack("<I", 2**32 - 1) + raw):
        with pytest.raises(InvalidInputError):
            codec.Tensor.checked("t", "BYTES", [4], raw=bad)


@pytest.mark.parametrize(
    ("datatype", "shape", "raw", "needle"),
    [
        ("FP64", [2], b"\x00" * 15, "15 bytes of binary data"),
        ("FP64", [2**40], b"\x00" * 16, "bytes of binary data"),
        ("INT32", [3], b"\x00" * 16, "3 INT32 values need 12"),
        ("BOOL", [4], b"\x01\x00\x01", "4 BOOL values need 4"),
    ],
)
def test_fixed_size_binary_tensors_must_match_their_shape(datatype: str, shape: list[int], raw: bytes,
                                                          needle: str) -> None:
    with pytest.raises(InvalidInputError, match=needle):
        codec.Tensor.checked("t", datatype, shape, raw=raw)


def test_binary_requests_are_split_by_their_sizes() -> None:
    body, headers = binary_body()
    request = codec.parse_request(body, headers[HEADER_LENGTH])
    assert request.binary_output
    columns = codec.decode_columns(request.inputs)
    assert columns[schema.PRODUCT_TYPE].tolist() == ["L", "H"]
    assert columns[schema.TORQUE].tolist() == [42.8, 68.2]


def test_v1_refusals_are_bounded() -> None:
    instance = {"product_type": "L", "air_temperature_k": 298.1, "process_temperature_k": 308.6,
                "rotational_speed_rpm": 1551, "torque_nm": "4" * 1_000_000, "tool_wear_min": 0}
    with pytest.raises(InvalidInputError) as refused:
        codec.decode_v1({"instances": [instance]})
    assert "instances[0].torque_nm must be a number" in str(refused.value)
    assert len(str(refused.value)) <= MAX_MESSAGE_CHARS
    with pytest.raises(InvalidInputError, match="too large"):
        codec.decode_v1(b'{"instances": [{"product_type": "L", "air_temperature_k": 1' + b"0" * 400
                        + b', "process_temperature_k": 1, "rotational_speed_rpm": 1, "torque_nm": 1, '
                        b'"tool_wear_min": 1}]}')


def test_duplicate_checks_stay_linear_in_the_number_of_inputs() -> None:
    """Many inputs with one name: refused fast (no quadratic duplicate search)."""
    import time

    names = ["torque_nm"] * 200_000
    start = time.perf_counter()
    with pytest.raises(InvalidInputError, match="duplicate input"):
        codec.check_names(names, "input(s)")
    assert time.perf_counter() - start < 1.0
