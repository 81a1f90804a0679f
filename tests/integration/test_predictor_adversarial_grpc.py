"""The predictor's gRPC surface, tried as a careless or hostile client would (issue 7).

Two independent clients: kserve's ``InferenceGRPCClient`` (binary tensors by default) and the
raw protobuf stub, where the test writes ``raw_input_contents`` and reads
``raw_output_contents`` itself. (tritonclient.grpc registers the same protobuf symbols as
kserve and cannot share this process.)
"""

from __future__ import annotations

import asyncio
import struct
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import numpy as np
import pandas as pd
import pytest
from kserve import InferInput, InferRequest
from kserve.inference_client import InferenceGRPCClient
from kserve.protocol.grpc import grpc_predict_v2_pb2 as pb
from kserve.protocol.grpc.grpc_predict_v2_pb2_grpc import GRPCInferenceServiceStub

from shopfloor import contract
from shopfloor.data import schema
from shopfloor.errors import MAX_MESSAGE_CHARS
from shopfloor.inference.features import Featurizer
from shopfloor.inference.runtime import LiteRTModel
from tests.integration.predictor import MODEL, Predictor, running_predictor

VERSION = "v0001"
BAD = (grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.NOT_FOUND)


@pytest.fixture(scope="module")
def predictor(version_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Predictor]:
    with running_predictor(version_dir, tmp_path_factory.mktemp("grpc")) as running:
        yield running


@pytest.fixture(scope="module")
def expected(version_dir: Path, real_frame: pd.DataFrame) -> dict[str, Any]:
    rows = real_frame.sample(64, random_state=11).reset_index(drop=True)
    edge = contract.load_manifest(version_dir).edge_format  # what the predictor serves by default
    assert edge is not None
    probability = LiteRTModel(version_dir / contract.litert_file(edge)).predict_proba(
        Featurizer.from_version(version_dir).transform(rows))
    threshold = contract.load_decision(version_dir).threshold
    return {"rows": rows, "probability": probability.astype(np.float32),
            "predicted": probability >= threshold}


def _stub_call(predictor: Predictor, method: str, request: Any) -> Any:
    async def call() -> Any:
        async with grpc.aio.insecure_channel(predictor.grpc) as channel:
            return await getattr(GRPCInferenceServiceStub(channel), method)(request, timeout=20)

    return asyncio.run(call())


def _raw_request(rows: pd.DataFrame, **fields: Any) -> pb.ModelInferRequest:
    """``raw_input_contents``: FP64 little-endian, BYTES length-prefixed, as the binary extension."""
    inputs, raw = [], []
    for name in schema.INPUT_COLUMNS:
        values = rows[name].tolist()
        if name == schema.PRODUCT_TYPE:
            raw.append(b"".join(struct.pack("<I", len(v)) + v.encode() for v in values))
            datatype = "BYTES"
        else:
            raw.append(np.asarray(values, dtype="<f8").tobytes())
            datatype = "FP64"
        inputs.append(pb.ModelInferRequest.InferInputTensor(name=name, datatype=datatype, shape=[len(rows)]))
    return pb.ModelInferRequest(model_name=MODEL, inputs=inputs, raw_input_contents=raw, **fields)


def _kserve_request(rows: pd.DataFrame, binary: bool = True, version: str | None = None) -> InferRequest:
    inputs = []
    for name in schema.INPUT_COLUMNS:
        if name == schema.PRODUCT_TYPE:
            tensor = InferInput(name, [len(rows)], "BYTES")
            tensor.set_data_from_numpy(rows[name].to_numpy(dtype=object), binary_data=binary)
        else:
            tensor = InferInput(name, [len(rows)], "FP64")
            tensor.set_data_from_numpy(rows[name].to_numpy(dtype=np.float64), binary_data=binary)
        inputs.append(tensor)
    return InferRequest(model_name=MODEL, infer_inputs=inputs, model_version=version)


def _kserve_infer(predictor: Predictor, request: InferRequest) -> Any:
    async def call() -> Any:
        async with InferenceGRPCClient(predictor.grpc, retries=0) as client:
            return await client.infer(request)

    return asyncio.run(call())


# --- item 2: binary requests and responses at batch 1, 2 and 64, two clients --------------------


@pytest.mark.parametrize("batch", [1, 2, 64])
def test_kserve_client_binary_tensors(predictor: Predictor, expected: dict[str, Any], batch: int) -> None:
    response = _kserve_infer(predictor, _kserve_request(expected["rows"].head(batch), binary=True))
    np.testing.assert_array_equal(response.get_output_by_name("failure_probability").as_numpy(),
                                  expected["probability"][:batch])
    np.testing.assert_array_equal(response.get_output_by_name("failure_predicted").as_numpy(),
                                  expected["predicted"][:batch])


@pytest.mark.parametrize("batch", [1, 2, 64])
def test_raw_stub_raw_contents_both_ways(predictor: Predictor, expected: dict[str, Any], batch: int) -> None:
    response = _stub_call(predictor, "ModelInfer", _raw_request(expected["rows"].head(batch), id="b"))
    assert response.id == "b" and response.model_version == VERSION
    assert [o.name for o in response.outputs] == ["failure_probability", "failure_predicted"]
    assert len(response.raw_output_contents) == 2 and all(list(o.shape) == [batch] for o in response.outputs)
    probability = np.frombuffer(response.raw_output_contents[0], dtype="<f4")
    predicted = np.frombuffer(response.raw_output_contents[1], dtype="|b1")
    np.testing.assert_array_equal(probability, expected["probability"][:batch])
    np.testing.assert_array_equal(predicted, expected["predicted"][:batch])


def test_typed_contents_still_work(predictor: Predictor, expected: dict[str, Any]) -> None:
    response = _kserve_infer(predictor, _kserve_request(expected["rows"].head(5), binary=False))
    np.testing.assert_array_equal(response.get_output_by_name("failure_probability").as_numpy(),
                                  expected["probability"][:5])


def test_requested_outputs_over_grpc(predictor: Predictor, expected: dict[str, Any]) -> None:
    wanted = pb.ModelInferRequest.InferRequestedOutputTensor(name="failure_predicted")
    request = _raw_request(expected["rows"].head(3), outputs=[wanted])
    response = _stub_call(predictor, "ModelInfer", request)
    assert [o.name for o in response.outputs] == ["failure_predicted"]
    assert len(response.raw_output_contents) == 1


def test_concurrent_calls_get_their_own_answers(predictor: Predictor, expected: dict[str, Any]) -> None:
    rows = expected["rows"]

    async def run() -> list[bool]:
        async with grpc.aio.insecure_channel(predictor.grpc) as channel:
            stub = GRPCInferenceServiceStub(channel)

            async def one(i: int) -> bool:
                start, size = i % 40, 1 + i % 24
                request = _raw_request(rows.iloc[start : start + size], id=str(i))
                response = await stub.ModelInfer(request, timeout=30)
                got = np.frombuffer(response.raw_output_contents[0], dtype="<f4")
                want = expected["probability"][start : start + size]
                return response.id == str(i) and np.array_equal(got, want)

            return list(await asyncio.gather(*(one(i) for i in range(100))))

    assert all(asyncio.run(run()))


# --- item 10: versions ------------------------------------------------------------------------


def test_wrong_model_version_is_not_found(predictor: Predictor, expected: dict[str, Any]) -> None:
    rows = expected["rows"].head(2)
    for other in ("v9999", "v0001 ", "x" * 1000):
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            _stub_call(predictor, "ModelInfer", _raw_request(rows, model_version=other))
        assert refused.value.code() == grpc.StatusCode.NOT_FOUND
        assert len(refused.value.details()) <= MAX_MESSAGE_CHARS
        for method, message in (("ModelReady", pb.ModelReadyRequest(name=MODEL, version=other)),
                                ("ModelMetadata", pb.ModelMetadataRequest(name=MODEL, version=other))):
            with pytest.raises(grpc.aio.AioRpcError) as refused:
                _stub_call(predictor, method, message)
            assert refused.value.code() == grpc.StatusCode.NOT_FOUND, method
    served = _stub_call(predictor, "ModelInfer", _raw_request(rows, model_version=VERSION))
    assert served.model_version == VERSION
    assert _kserve_infer(predictor, _kserve_request(rows, version=VERSION)).model_version == VERSION
    assert _stub_call(predictor, "ModelReady", pb.ModelReadyRequest(name=MODEL, version=VERSION)).ready


# --- item 5: a long bad value is INVALID_ARGUMENT with a short message ----------------------------


@pytest.mark.parametrize("size", [10_000, 1_000_000, 4_000_000])
def test_a_long_bad_value_is_invalid_argument_not_resource_exhausted(
    predictor: Predictor, expected: dict[str, Any], size: int
) -> None:
    rows = expected["rows"].head(2).copy()
    rows[schema.PRODUCT_TYPE] = ["Z" * size, "L"]
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        _stub_call(predictor, "ModelInfer", _raw_request(rows))
    assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "unknown product types" in refused.value.details()
    assert len(refused.value.details()) <= MAX_MESSAGE_CHARS


# --- malformed requests: INVALID_ARGUMENT / NOT_FOUND, never INTERNAL ---------------------------


def _malformed(rows: pd.DataFrame) -> dict[str, pb.ModelInferRequest]:
    cases: dict[str, pb.ModelInferRequest] = {}

    def variant(name: str, edit: Any) -> None:
        request = _raw_request(rows)
        edit(request)
        cases[name] = request

    raw = lambda r, i, data: r.raw_input_contents.__setitem__(i, data)  # noqa: E731
    variant("raw tensor too short", lambda r: raw(r, 4, r.raw_input_contents[4][:-1]))
    variant("BYTES length beyond the data",
            lambda r: raw(r, 0, struct.pack("<I", 2**31) + r.raw_input_contents[0][4:]))
    variant("fewer raw contents than inputs", lambda r: r.raw_input_contents.pop())
    variant("negative shape", lambda r: [t.shape.__setitem__(0, -2) for t in r.inputs])
    variant("huge shape", lambda r: [t.shape.__setitem__(0, 2**62) for t in r.inputs])
    variant("scalar shape", lambda r: r.inputs[3].ClearField("shape"))
    variant("unknown datatype", lambda r: setattr(r.inputs[3], "datatype", "FP128"))
    variant("BYTES datatype for a reading", lambda r: setattr(r.inputs[3], "datatype", "BYTES"))
    variant("missing input", lambda r: (r.inputs.pop(), r.raw_input_contents.pop()))
    variant("unknown model", lambda r: setattr(r, "model_name", "nope"))
    variant("long model name", lambda r: setattr(r, "model_name", "m" * 100_000))
    variant("unknown requested output",
            lambda r: r.outputs.append(pb.ModelInferRequest.InferRequestedOutputTensor(name="rul" * 10_000)))
    nan = rows.copy()
    nan.loc[nan.index[1], schema.TORQUE] = np.nan
    cases["NaN reading"] = _raw_request(nan)
    typed = pb.ModelInferRequest(model_name=MODEL, inputs=[
        pb.ModelInferRequest.InferInputTensor(name=n, datatype="FP64", shape=[2],
                                              contents=pb.InferTensorContents(fp64_contents=[1.0]))
        for n in schema.INPUT_COLUMNS])
    cases["typed contents shorter than the shape"] = typed
    return cases


def test_malformed_requests_are_refused_by_name(predictor: Predictor, expected: dict[str, Any]) -> None:
    failures = []
    for name, request in _malformed(expected["rows"].head(2)).items():
        try:
            _stub_call(predictor, "ModelInfer", request)
            failures.append(f"{name}: answered")
        except grpc.aio.AioRpcError as refused:
            if refused.code() not in BAD or len(refused.details() or "") > MAX_MESSAGE_CHARS:
                failures.append(f"{name}: {refused.code()} {refused.details()[:200]!r}")
    assert not failures, failures
    log = predictor.log()
    assert "Traceback" not in log and "Internal" not in log


def test_model_repository_calls_are_disabled(predictor: Predictor) -> None:
    for method, request in (("RepositoryModelUnload", pb.RepositoryModelUnloadRequest(model_name=MODEL)),
                            ("RepositoryModelLoad", pb.RepositoryModelLoadRequest(model_name=MODEL))):
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            _stub_call(predictor, method, request)
        assert refused.value.code() == grpc.StatusCode.UNIMPLEMENTED
    assert _stub_call(predictor, "ModelReady", pb.ModelReadyRequest(name=MODEL)).ready
    assert _stub_call(predictor, "ServerReady", pb.ServerReadyRequest()).ready


def test_messages_over_the_body_limit_are_refused(predictor: Predictor, expected: dict[str, Any]) -> None:
    request = _raw_request(expected["rows"].head(1))
    request.raw_input_contents[0] = b"\x00" * (5 * 1024 * 1024)
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        _stub_call(predictor, "ModelInfer", request)
    assert refused.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED  # gRPC's own size check
