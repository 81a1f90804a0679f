"""Serving decodes requests into exactly the features training computed, and rejects bad ones."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from kserve.errors import InvalidInput
from kserve.protocol.infer_type import InferRequest
from kserve.protocol.rest.v2_datamodels import InferenceRequest
from prometheus_client import CollectorRegistry

from shopfloor.data import schema
from shopfloor.data.loader import load
from shopfloor.serving import codec
from shopfloor.serving.metrics import INPUT_BUCKETS, InputStatistics
from shopfloor.training.features import FeatureSpec


@pytest.fixture(scope="module")
def frame() -> pd.DataFrame:
    return load().frame


@pytest.fixture(scope="module")
def spec(frame: pd.DataFrame) -> FeatureSpec:
    return FeatureSpec.fit(frame)


def _v2_wire(rows: pd.DataFrame, datatype: str = "FP64") -> InferRequest:
    """What the REST server builds from a client's JSON body (serialised and parsed again)."""
    body = {
        "inputs": [
            {
                "name": n,
                "shape": [len(rows)],
                "data": rows[n].tolist(),
                "datatype": "BYTES" if n == schema.PRODUCT_TYPE else datatype,
            }
            for n in schema.INPUT_COLUMNS
        ]
    }
    parsed = InferenceRequest.model_validate(json.loads(json.dumps(body)))
    return InferRequest.from_inference_request(parsed, "m")


def test_v2_request_features_equal_training_features_bit_exact(
    frame: pd.DataFrame, spec: FeatureSpec
) -> None:
    served = spec.transform(codec.decode_v2(_v2_wire(frame), max_batch=len(frame)))
    trained = spec.transform(frame)
    assert served.dtype == trained.dtype == np.float32
    np.testing.assert_array_equal(served.view(np.uint32), trained.view(np.uint32))


def test_v1_request_features_equal_training_features_bit_exact(
    frame: pd.DataFrame, spec: FeatureSpec
) -> None:
    rows = frame.sample(500, random_state=1)
    body = json.loads(json.dumps({"instances": rows[list(schema.INPUT_COLUMNS)].to_dict(orient="records")}))
    served = spec.transform(codec.decode_v1(body))
    np.testing.assert_array_equal(served.view(np.uint32), spec.transform(rows).view(np.uint32))


def test_shape_n_by_1_and_integer_datatypes_accepted(frame: pd.DataFrame, spec: FeatureSpec) -> None:
    rows = frame.head(5)
    request = _v2_wire(rows)
    for inp in request.inputs:
        inp._shape = [5, 1]
        inp._data = [[v] for v in inp.data]
        if inp.name == schema.TOOL_WEAR:
            inp._datatype = "INT64"
    np.testing.assert_array_equal(spec.transform(codec.decode_v2(request)), spec.transform(rows))


@pytest.mark.parametrize(
    ("edit", "needle"),
    [
        (lambda b: b["inputs"].pop(0), "missing input(s) ['product_type']"),
        (lambda b: b["inputs"].append(dict(b["inputs"][1])), "duplicate input(s) ['air_temperature_k']"),
        (lambda b: b["inputs"][1].update(datatype="INT32"), "non-integer"),
        (lambda b: b["inputs"][1].update(data=[True, False]), "booleans"),
        (lambda b: b["inputs"][0].update(data=[1, 2]), "must hold strings"),
        (lambda b: [i.update(shape=[0], data=[]) for i in b["inputs"]], "empty batch"),
    ],
)
def test_v2_rejections_name_the_problem(frame: pd.DataFrame, edit, needle: str) -> None:
    body = {
        "inputs": [
            {
                "name": n,
                "shape": [2],
                "data": frame.head(2)[n].tolist(),
                "datatype": "BYTES" if n == schema.PRODUCT_TYPE else "FP64",
            }
            for n in schema.INPUT_COLUMNS
        ]
    }
    edit(body)
    request = InferRequest.from_inference_request(InferenceRequest.model_validate(body), "m")
    with pytest.raises(InvalidInput, match=None) as info:
        codec.decode_v2(request)
    assert needle in str(info.value)


def test_input_histograms_count_like_prometheus_le_buckets() -> None:
    stats = InputStatistics()
    CollectorRegistry().register(stats)
    bounds = INPUT_BUCKETS[schema.TORQUE]
    torque = np.array([bounds[0], bounds[0] + 0.1, bounds[-1] + 1, 40.0])
    columns = {n: np.full(4, 300.0) for n in schema.SENSOR_COLUMNS}
    columns[schema.TORQUE] = torque
    columns[schema.PRODUCT_TYPE] = np.array(["L", "L", "M", "H"])
    stats.observe("m", columns)
    families = {f.name: f for f in stats.collect()}
    samples = {
        (s.name, s.labels.get("le"), s.labels.get("product_type")): s.value
        for s in families[f"shopfloor_input_{schema.TORQUE}"].samples
        + families["shopfloor_input_product_type"].samples
    }
    expected_le = {str(b): float(np.sum(torque <= b)) for b in bounds}
    for le, count in expected_le.items():
        assert samples[(f"shopfloor_input_{schema.TORQUE}_bucket", le, None)] == count
    assert samples[(f"shopfloor_input_{schema.TORQUE}_bucket", "+Inf", None)] == 4
    assert samples[(f"shopfloor_input_{schema.TORQUE}_sum", None, None)] == pytest.approx(torque.sum())
    assert samples[("shopfloor_input_product_type_total", None, "L")] == 2


def test_serve_command_resolves_a_local_dir(tmp_path: Path) -> None:
    from shopfloor.commands.serve import resolved_model

    with resolved_model(None, None, tmp_path) as (directory, name, version):
        assert directory == tmp_path and name == "ai4i-failure" and version == tmp_path.name
    with pytest.raises(ValueError, match="not both"), resolved_model("v0001", None, tmp_path):
        pass


def test_model_uri_split() -> None:
    from shopfloor.serving.source import split_model_uri

    assert split_model_uri("s3://bucket/pre/fix/ai4i-failure/v0003") == (
        "s3://bucket/pre/fix",
        "ai4i-failure",
        "v0003",
    )
    with pytest.raises(ValueError):
        split_model_uri("s3://bucket")


def test_serve_command_fetches_newest_cloud_version_through_the_registry(tmp_path: Path, monkeypatch) -> None:
    import shopfloor.registry
    from shopfloor.commands.serve import resolved_model

    calls: list[tuple[str, object]] = []

    class FakeRegistry:
        model = "ai4i-failure"

        def newest(self, env: str = "cloud") -> str:
            calls.append(("newest", env))
            return "v0007"

        def fetch(self, version: str, dest: Path) -> Path:
            calls.append(("fetch", version))
            dest.mkdir(parents=True)
            return dest

    monkeypatch.setattr(shopfloor.registry, "open_registry", lambda location=None: FakeRegistry())
    with resolved_model(None, "s3://bucket/prefix", None) as (directory, name, version):
        assert (
            name == "ai4i-failure" and version == "v0007" and directory.name == "v0007" and directory.is_dir()
        )
    assert calls == [("newest", "cloud"), ("fetch", "v0007")]
    assert not directory.exists()  # the fetched copy lives only while served
