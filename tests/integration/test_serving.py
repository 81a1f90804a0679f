"""The predictor through real clients on loopback: kserve REST (V1, V2), tritonclient HTTP and
gRPC, raw httpx. The server runs as ``python -m shopfloor.serving`` in a subprocess (the real
entry point, with its own event loop and metrics registry) on free ports."""

from __future__ import annotations

import asyncio
import json
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import httpx
import jsonschema
import numpy as np
import pytest
import yaml
from kserve import InferenceRESTClient, InferInput, InferRequest, RESTConfig
from kserve.inference_client import InferenceGRPCClient
from kserve.protocol.grpc import grpc_predict_v2_pb2 as pb
from kserve.protocol.grpc.grpc_predict_v2_pb2_grpc import GRPCInferenceServiceStub

from shopfloor import contract
from shopfloor.data import schema
from shopfloor.data.loader import load
from shopfloor.inference.features import Featurizer
from shopfloor.inference.runtime import LiteRTModel
from tests.integration.predictor import MODEL, running_predictor

tritonhttp = pytest.importorskip("tritonclient.http")
# gRPC goes through kserve's client: tritonclient.grpc registers the same "inference.*" protobuf
# symbols as kserve and the two cannot be imported into one process.

REPO = Path(__file__).resolve().parents[2]
MAX_BATCH = 64
SPEC = yaml.safe_load((REPO / "shopfloor" / "serving" / "spec" / "rest_predict_v2.yaml").read_text())


def _schema(name: str) -> dict[str, Any]:
    return {"components": SPEC["components"], "allOf": [{"$ref": f"#/components/schemas/{name}"}]}


@pytest.fixture(scope="module")
def server(version_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    log_dir = tmp_path_factory.mktemp("predictor")
    # no --format: the version's own edge format (int8 for an MLP, float32 for a tree ensemble)
    with running_predictor(version_dir, log_dir, "--max-batch", str(MAX_BATCH)) as p:
        yield {"url": p.url, "grpc": p.grpc, "http_port": p.http_port, "proc": p.proc,
               "format": _edge_format(version_dir)}


def _edge_format(version_dir: Path) -> str:
    edge = contract.load_manifest(version_dir).edge_format
    assert edge is not None, "the sample version has no LiteRT file"
    return edge


@pytest.fixture(scope="module")
def rows(version_dir: Path) -> dict[str, Any]:
    """Real AI4I rows (failures included) and what the model itself says about them."""
    frame = load().frame
    picked = frame[frame[schema.TARGET] == 1].head(8).index.tolist() + frame.head(24).index.tolist()
    sample = frame.loc[picked, list(schema.INPUT_COLUMNS)].reset_index(drop=True)
    features = Featurizer.from_version(version_dir).transform(sample)
    proba = LiteRTModel(version_dir / contract.litert_file(_edge_format(version_dir))).predict_proba(features)
    threshold = contract.load_decision(version_dir).threshold
    predicted = proba >= threshold
    assert predicted.any() and not predicted.all(), "test rows should cover both classes"
    return {"frame": sample, "proba": proba.astype(np.float32), "predicted": predicted}


def v2_json(frame: Any, **override: Any) -> dict[str, Any]:
    inputs = []
    for name in schema.INPUT_COLUMNS:
        values = frame[name].tolist()
        inputs.append(
            {
                "name": name,
                "shape": [len(values)],
                "data": values,
                "datatype": "BYTES" if name == schema.PRODUCT_TYPE else "FP64",
            }
        )
    body = {"inputs": inputs}
    body.update(override)
    return body


def kserve_request(frame: Any) -> InferRequest:
    inputs = []
    for name in schema.INPUT_COLUMNS:
        if name == schema.PRODUCT_TYPE:
            inp = InferInput(name, [len(frame)], "BYTES")
            inp.set_data_from_numpy(frame[name].to_numpy(dtype=object), binary_data=False)
        else:
            inp = InferInput(name, [len(frame)], "FP64")
            inp.set_data_from_numpy(frame[name].to_numpy(dtype=np.float64), binary_data=False)
        inputs.append(inp)
    return InferRequest(model_name=MODEL, infer_inputs=inputs)


def triton_inputs(module: Any, frame: Any, binary: bool) -> list[Any]:
    inputs = []
    for name in schema.INPUT_COLUMNS:
        if name == schema.PRODUCT_TYPE:
            arr = frame[name].to_numpy(dtype=object).astype(bytes)
            inp = module.InferInput(name, [len(frame)], "BYTES")
        else:
            arr = frame[name].to_numpy(dtype=np.float64)
            inp = module.InferInput(name, [len(frame)], "FP64")
        inp.set_data_from_numpy(arr, binary_data=binary)
        inputs.append(inp)
    return inputs


# --- predictions equal the model's own LiteRT output --------------------------------------------


def test_v2_rest_kserve_client(server: dict[str, Any], rows: dict[str, Any]) -> None:
    async def call() -> Any:
        async with InferenceRESTClient(RESTConfig(protocol="v2")) as client:
            return await client.infer(server["url"], kserve_request(rows["frame"]), model_name=MODEL)

    response = asyncio.run(call())
    np.testing.assert_array_equal(
        response.get_output_by_name("failure_probability").as_numpy(), rows["proba"]
    )
    np.testing.assert_array_equal(
        response.get_output_by_name("failure_predicted").as_numpy(), rows["predicted"]
    )


def test_v1_kserve_client(server: dict[str, Any], rows: dict[str, Any]) -> None:
    instances = rows["frame"].to_dict(orient="records")

    async def call() -> Any:
        async with InferenceRESTClient(RESTConfig(protocol="v1")) as client:
            return await client.infer(server["url"], {"instances": instances}, model_name=MODEL)

    predictions = asyncio.run(call())["predictions"]
    got = np.array([p["failure_probability"] for p in predictions], dtype=np.float32)
    np.testing.assert_array_equal(got, rows["proba"])
    assert [p["failure_predicted"] for p in predictions] == rows["predicted"].tolist()


@pytest.mark.parametrize("binary", [False, True], ids=["json", "binary"])
def test_v2_rest_tritonclient(server: dict[str, Any], rows: dict[str, Any], binary: bool) -> None:
    client = tritonhttp.InferenceServerClient(url=server["url"].removeprefix("http://"))
    outputs = [
        tritonhttp.InferRequestedOutput(n, binary_data=binary)
        for n in ("failure_probability", "failure_predicted")
    ]
    result = client.infer(MODEL, triton_inputs(tritonhttp, rows["frame"], binary), outputs=outputs)
    np.testing.assert_array_equal(result.as_numpy("failure_probability"), rows["proba"])
    np.testing.assert_array_equal(result.as_numpy("failure_predicted"), rows["predicted"])


def _grpc(server: dict[str, Any], method: str, request: Any) -> Any:
    async def call() -> Any:
        async with grpc.aio.insecure_channel(server["grpc"]) as channel:
            return await getattr(GRPCInferenceServiceStub(channel), method)(request, timeout=10)

    return asyncio.run(call())


def _grpc_infer(server: dict[str, Any], request: InferRequest) -> Any:
    async def call() -> Any:
        async with InferenceGRPCClient(server["grpc"], retries=0) as client:
            return await client.infer(request)

    return asyncio.run(call())


def test_v2_grpc_kserve_client(server: dict[str, Any], rows: dict[str, Any]) -> None:
    response = _grpc_infer(server, kserve_request(rows["frame"]))
    np.testing.assert_array_equal(
        response.get_output_by_name("failure_probability").as_numpy(), rows["proba"]
    )
    np.testing.assert_array_equal(
        response.get_output_by_name("failure_predicted").as_numpy(), rows["predicted"]
    )
    assert _grpc(server, "ServerReady", pb.ServerReadyRequest()).ready
    assert _grpc(server, "ModelReady", pb.ModelReadyRequest(name=MODEL)).ready
    metadata = _grpc(server, "ModelMetadata", pb.ModelMetadataRequest(name=MODEL))
    assert list(metadata.versions) == ["v0001"] and metadata.platform == "tflite"
    assert [t.name for t in metadata.inputs] == list(schema.INPUT_COLUMNS)


# --- metadata, health ------------------------------------------------------------------------


def test_metadata_follows_the_open_inference_protocol(server: dict[str, Any]) -> None:
    body = httpx.get(f"{server['url']}/v2/models/{MODEL}").json()
    jsonschema.validate(body, _schema("metadata_model_response"))
    assert body["platform"] == "tflite" and body["versions"] == ["v0001"]
    assert [i["name"] for i in body["inputs"]] == list(schema.INPUT_COLUMNS)
    assert body["inputs"][0]["datatype"] == "BYTES" and all(i["shape"] == [-1] for i in body["inputs"])
    assert {o["name"]: o["datatype"] for o in body["outputs"]} == {
        "failure_probability": "FP32",
        "failure_predicted": "BOOL",
    }
    jsonschema.validate(httpx.get(f"{server['url']}/v2").json(), _schema("metadata_server_response"))


def test_health(server: dict[str, Any]) -> None:
    url = server["url"]
    assert httpx.get(f"{url}/v2/health/live").json() == {"live": True}
    assert httpx.get(f"{url}/v2/health/ready").json() == {"ready": True}
    assert httpx.get(f"{url}/v2/models/{MODEL}/ready").json() == {"name": MODEL, "ready": True}
    assert httpx.get(f"{url}/v1/models/{MODEL}").json() == {"name": MODEL, "ready": True}
    assert httpx.get(f"{url}/v2/models/nope/ready").status_code == 404


def test_inference_response_follows_the_spec(server: dict[str, Any], rows: dict[str, Any]) -> None:
    response = httpx.post(f"{server['url']}/v2/models/{MODEL}/infer", json=v2_json(rows["frame"], id="r-1"))
    assert response.status_code == 200
    body = response.json()
    # kserve 0.21 serialises absent optional "parameters" as null where the spec wants an object
    # or nothing (a known kserve deviation, not ours); everything else must match the schema.
    body.pop("parameters", None)
    for output in body["outputs"]:
        output.pop("parameters", None)
    jsonschema.validate(body, _schema("inference_response"))
    assert response.json()["id"] == "r-1" and response.json()["model_version"] == "v0001"


def test_binds_loopback_only(server: dict[str, Any]) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        try:
            s.connect(("10.255.255.255", 1))
            address = s.getsockname()[0]
        except OSError:
            pytest.skip("no non-loopback interface")
    if address.startswith("127."):
        pytest.skip("no non-loopback interface")
    for port in (server["http_port"], int(server["grpc"].rsplit(":", 1)[1])):
        with socket.socket() as s, pytest.raises(OSError):
            s.settimeout(2)
            s.connect((address, port))


# --- bad requests: 400/404 naming the problem, never 500 ---------------------------------------


def _v2_bad(frame: Any) -> dict[str, tuple[Any, int, str]]:
    good = v2_json(frame.head(2))
    cases: dict[str, tuple[Any, int, str]] = {}

    def variant(name: str, edit: Any, status: int, needle: str) -> None:
        body = json.loads(json.dumps(good))
        edit(body)
        cases[name] = (body, status, needle)

    def by_name(body: dict[str, Any], name: str) -> dict[str, Any]:
        return next(i for i in body["inputs"] if i["name"] == name)

    variant("wrong_shape", lambda b: by_name(b, "torque_nm").update(shape=[1, 2]), 400, "torque_nm")
    variant("2d_shape_wrong_cols", lambda b: by_name(b, "torque_nm").update(shape=[2, 2]), 400, "shape")
    variant("shape_data_mismatch", lambda b: by_name(b, "torque_nm").update(data=[1.0]), 400, "torque_nm")
    variant(
        "batch_disagrees",
        lambda b: by_name(b, "torque_nm").update(shape=[3], data=[1.0, 2.0, 3.0]),
        400,
        "batch size",
    )
    variant("wrong_datatype", lambda b: by_name(b, "torque_nm").update(datatype="BYTES"), 400, "torque_nm")
    variant("text_as_number", lambda b: by_name(b, "torque_nm").update(data=["a", "b"]), 400, "numbers")
    variant(
        "product_type_numeric",
        lambda b: by_name(b, "product_type").update(datatype="FP32"),
        400,
        "product_type",
    )
    variant("unknown_product_type", lambda b: by_name(b, "product_type").update(data=["X", "L"]), 400, "'X'")
    variant("missing_input", lambda b: b["inputs"].pop(), 400, "missing input(s) ['tool_wear_min']")
    variant(
        "unknown_input",
        lambda b: b["inputs"].append({**b["inputs"][1], "name": "humidity"}),
        400,
        "unknown input(s) ['humidity']",
    )
    variant("unknown_output", lambda b: b.update(outputs=[{"name": "rul"}]), 400, "rul")
    cases["oversized_batch"] = (
        v2_json(frame.sample(MAX_BATCH + 1, replace=True, random_state=0)),
        400,
        f"maximum of {MAX_BATCH}",
    )
    cases["not_an_inference_request"] = ({"instances": []}, 400, "inputs")
    return cases


def test_v2_bad_requests(server: dict[str, Any], rows: dict[str, Any]) -> None:
    url = f"{server['url']}/v2/models/{MODEL}/infer"
    failures = []
    for name, (body, status, needle) in _v2_bad(rows["frame"]).items():
        response = httpx.post(url, json=body)
        message = response.json().get("error", "")
        if response.status_code != status or needle not in message:
            failures.append(f"{name}: {response.status_code} {message!r}")
    assert not failures, failures


@pytest.mark.parametrize("value", [float("nan"), float("inf"), float("-inf")], ids=["nan", "inf", "-inf"])
def test_v2_non_finite(server: dict[str, Any], rows: dict[str, Any], value: float) -> None:
    body = v2_json(rows["frame"].head(2))
    next(i for i in body["inputs"] if i["name"] == "torque_nm")["data"][1] = value
    # json.dumps writes the NaN / Infinity literals that Python-based servers accept.
    response = httpx.post(
        f"{server['url']}/v2/models/{MODEL}/infer",
        content=json.dumps(body),
        headers={"content-type": "application/json"},
    )
    assert response.status_code == 400
    assert "torque_nm" in response.json()["error"] and "NaN or infinity (row 1)" in response.json()["error"]


@pytest.mark.parametrize("path", [f"/v2/models/{MODEL}/infer", f"/v1/models/{MODEL}:predict"])
@pytest.mark.parametrize("body", ['{"inputs": [', "not json", '{"instances": [{"a": 1},]}'])
def test_malformed_json(server: dict[str, Any], path: str, body: str) -> None:
    response = httpx.post(
        f"{server['url']}{path}", content=body, headers={"content-type": "application/json"}
    )
    assert response.status_code == 400, response.text
    message = response.json()["error"]
    assert "JSON" in message or "request format" in message  # kserve's V1 wording
    jsonschema.validate(response.json(), _schema("inference_error_response"))


def test_v1_bad_requests(server: dict[str, Any], rows: dict[str, Any]) -> None:
    url = f"{server['url']}/v1/models/{MODEL}:predict"
    good = rows["frame"].head(2).to_dict(orient="records")
    cases = {
        "missing_field": (
            [{k: v for k, v in good[0].items() if k != "torque_nm"}],
            "missing field(s) ['torque_nm']",
        ),
        "unknown_field": ([{**good[0], "humidity": 3}], "unknown field(s) ['humidity']"),
        "text_number": ([{**good[0], "torque_nm": "40"}], "instances[0].torque_nm must be a number"),
        "bool_number": ([{**good[0], "torque_nm": True}], "torque_nm must be a number"),
        "not_object": ([1], "instances[0] must be an object"),
        "empty": ([], "empty batch"),
        "oversized": (good * (MAX_BATCH // 2 + 1), f"maximum of {MAX_BATCH}"),
        "unknown_type": ([{**good[0], "product_type": "Z"}], "'Z'"),
    }
    failures = []
    for name, (instances, needle) in cases.items():
        response = httpx.post(url, json={"instances": instances})
        message = response.json().get("error", "")
        if response.status_code != 400 or needle not in message:
            failures.append(f"{name}: {response.status_code} {message!r}")
    nan = httpx.post(url, content=json.dumps({"instances": [{**good[0], "air_temperature_k": float("nan")}]}))
    # NaN is not JSON: kserve's V1 parser (orjson) already refuses it, with the position.
    if nan.status_code != 400 or "JSON value" not in nan.json()["error"]:
        failures.append(f"nan: {nan.status_code} {nan.text}")
    assert not failures, failures


def test_unknown_model_is_404(server: dict[str, Any], rows: dict[str, Any]) -> None:
    url = server["url"]
    v2 = httpx.post(f"{url}/v2/models/nope/infer", json=v2_json(rows["frame"].head(1)))
    v1 = httpx.post(f"{url}/v1/models/nope:predict", json={"instances": []})
    meta = httpx.get(f"{url}/v2/models/nope")
    for response in (v2, v1, meta):
        assert response.status_code == 404 and "nope" in response.json()["error"]


def test_grpc_bad_requests(server: dict[str, Any], rows: dict[str, Any]) -> None:
    frame = rows["frame"].head(2)
    request = kserve_request(frame)
    request.model_name = "nope"
    with pytest.raises(grpc.aio.AioRpcError) as unknown_model:
        _grpc_infer(server, request)
    assert unknown_model.value.code() == grpc.StatusCode.NOT_FOUND and "nope" in unknown_model.value.details()

    bad = frame.copy()
    bad.loc[bad.index[0], "torque_nm"] = np.nan
    with pytest.raises(grpc.aio.AioRpcError) as nan:
        _grpc_infer(server, kserve_request(bad))
    assert nan.value.code() == grpc.StatusCode.INVALID_ARGUMENT and "torque_nm" in nan.value.details()

    request = kserve_request(frame)
    text = InferInput("tool_wear_min", [2], "BYTES")
    text.set_data_from_numpy(np.array([b"a", b"b"], dtype=object), binary_data=False)
    request.inputs = [*(i for i in request.inputs if i.name != "tool_wear_min"), text]
    with pytest.raises(grpc.aio.AioRpcError) as datatype:
        _grpc_infer(server, request)
    assert datatype.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "tool_wear_min" in datatype.value.details() and "BYTES" in datatype.value.details()

    request.inputs = request.inputs[:-1]
    with pytest.raises(grpc.aio.AioRpcError) as missing:
        _grpc_infer(server, request)
    assert missing.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "missing input(s) ['tool_wear_min']" in missing.value.details()

    with pytest.raises(grpc.aio.AioRpcError) as metadata:
        _grpc(server, "ModelMetadata", pb.ModelMetadataRequest(name="nope"))
    assert metadata.value.code() == grpc.StatusCode.NOT_FOUND


# --- metrics -----------------------------------------------------------------------------------


def _metric(text: str, name: str, **labels: str) -> float:
    total = 0.0
    for line in text.splitlines():
        named = line.startswith(name + "{") or line.startswith(name + " ")
        if named and all(f'{k}="{v}"' in line for k, v in labels.items()):
            total += float(line.rsplit(" ", 1)[1])
    return total


def test_metrics(server: dict[str, Any], rows: dict[str, Any]) -> None:
    url = server["url"]
    before = httpx.get(f"{url}/metrics").text
    frame = rows["frame"]
    assert httpx.post(f"{url}/v2/models/{MODEL}/infer", json=v2_json(frame)).status_code == 200
    assert httpx.post(f"{url}/v2/models/{MODEL}/infer", json={"inputs": []}).status_code == 400
    after = httpx.get(f"{url}/metrics").text

    assert _metric(after, "shopfloor_model_info", model_name=MODEL, model_version="v0001",
                   format=server["format"]) == 1
    n_fail = int(rows["predicted"].sum())
    for cls, n in (("failure", n_fail), ("no_failure", len(frame) - n_fail)):
        delta = _metric(after, "shopfloor_predictions_total", predicted_class=cls) - _metric(
            before, "shopfloor_predictions_total", predicted_class=cls
        )
        assert delta == n, cls
    for field in schema.SENSOR_COLUMNS:
        count = f"shopfloor_input_{field}_count"
        assert _metric(after, count, model_name=MODEL) - _metric(before, count, model_name=MODEL) == len(
            frame
        )
    assert (
        _metric(after, "shopfloor_rejected_requests_total", protocol="v2-rest")
        - _metric(before, "shopfloor_rejected_requests_total", protocol="v2-rest")
    ) == 1
    assert _metric(after, "shopfloor_inference_duration_seconds_count", protocol="v2-rest") >= 1
    assert "request_predict_seconds" in after  # kserve's own metrics share the endpoint
