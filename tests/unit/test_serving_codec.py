"""Serving decodes requests into exactly the features training computed, and rejects bad ones;
the predictor's flags are one definition for ``python -m shopfloor.serving`` and ``shopfloor serve``."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from prometheus_client import CollectorRegistry

from shopfloor.data import schema
from shopfloor.data.loader import load
from shopfloor.errors import InvalidInputError, NotFoundError
from shopfloor.inference import codec
from shopfloor.inference.features import Featurizer
from shopfloor.serving.metrics import INPUT_BUCKETS, InputStatistics


@pytest.fixture(scope="module")
def frame() -> pd.DataFrame:
    return load().frame


@pytest.fixture(scope="module")
def spec(frame: pd.DataFrame) -> Featurizer:
    return Featurizer.fit(frame)


def _v2_wire(rows: pd.DataFrame, datatype: str = "FP64") -> list[codec.Tensor]:
    """What the REST server decodes from a client's JSON body."""
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
    return list(codec.parse_request(json.dumps(body).encode()).inputs)


def test_v2_request_features_equal_training_features_bit_exact(
    frame: pd.DataFrame, spec: Featurizer
) -> None:
    served = spec.transform(codec.decode_columns(_v2_wire(frame), max_batch=len(frame)))
    trained = spec.transform(frame)
    assert served.dtype == trained.dtype == np.float32
    np.testing.assert_array_equal(served.view(np.uint32), trained.view(np.uint32))


def test_v1_request_features_equal_training_features_bit_exact(
    frame: pd.DataFrame, spec: Featurizer
) -> None:
    rows = frame.sample(500, random_state=1)
    body = json.loads(json.dumps({"instances": rows[list(schema.INPUT_COLUMNS)].to_dict(orient="records")}))
    served = spec.transform(codec.decode_v1(body))
    np.testing.assert_array_equal(served.view(np.uint32), spec.transform(rows).view(np.uint32))


def test_shape_n_by_1_and_integer_datatypes_accepted(frame: pd.DataFrame, spec: Featurizer) -> None:
    rows = frame.head(5)
    body = {"inputs": [
        {"name": n, "shape": [5, 1], "data": [[v] for v in rows[n].tolist()],
         "datatype": "BYTES" if n == schema.PRODUCT_TYPE else ("INT64" if n == schema.TOOL_WEAR else "FP64")}
        for n in schema.INPUT_COLUMNS
    ]}
    inputs = codec.parse_request(json.dumps(body).encode()).inputs
    np.testing.assert_array_equal(spec.transform(codec.decode_columns(inputs)), spec.transform(rows))


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
    with pytest.raises(InvalidInputError) as info:
        codec.decode_columns(codec.parse_request(json.dumps(body).encode()).inputs)
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
    with pytest.raises(InvalidInputError, match="not both"), resolved_model("v0001", None, tmp_path):
        pass


def test_model_uri_split() -> None:
    from shopfloor.serving.source import split_model_uri

    assert split_model_uri("s3://bucket/pre/fix/ai4i-failure/v0003") == (
        "s3://bucket/pre/fix",
        "ai4i-failure",
        "v0003",
    )
    with pytest.raises(InvalidInputError):
        split_model_uri("s3://bucket")


def test_serve_command_fetches_newest_cloud_version_through_the_registry(tmp_path: Path, monkeypatch) -> None:
    import shopfloor.registry
    from shopfloor.commands.serve import resolved_model

    calls: list[tuple[str, object]] = []

    class FakeRegistry:
        model = "ai4i-failure"

        def champion_or_newest(self, env: str = "cloud") -> str:
            calls.append(("champion_or_newest", env))
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
    assert calls == [("champion_or_newest", "cloud"), ("fetch", "v0007")]
    assert not directory.exists()  # the fetched copy lives only while served


def test_serve_command_refuses_an_empty_registry(monkeypatch) -> None:
    import shopfloor.registry
    from shopfloor.commands.serve import resolved_model

    class Empty:
        model = "ai4i-failure"

        def champion_or_newest(self, env: str = "cloud") -> None:
            return None

    monkeypatch.setattr(shopfloor.registry, "open_registry", lambda location=None: Empty())
    with pytest.raises(NotFoundError, match="holds no version"), resolved_model(None, "somewhere", None):
        pass


# --- one definition of the predictor's flags ---------------------------------------------------


def test_cli_and_entry_point_share_every_predictor_option() -> None:
    """``shopfloor serve`` (typer) and ``python -m shopfloor.serving`` (argparse) offer the same
    flags with the same defaults: both are built from serving.options.FLAGS."""
    import typer.main

    from shopfloor.commands.serve import serve
    from shopfloor.serving.__main__ import parser
    from shopfloor.serving.options import FLAGS

    app = typer.Typer()
    app.command()(serve)
    params = {p.name: p for p in typer.main.get_command(app).params}
    actions = {a.dest: a for a in parser()._actions}
    for dest, flag in FLAGS.items():
        assert flag.flag in actions[dest].option_strings, dest
        assert actions[dest].default == flag.default, dest
        assert flag.flag in params[dest].opts, dest
        if dest != "model_name":  # the CLI's default is the registry's model name
            assert params[dest].default == flag.default, dest
    assert set(FLAGS) <= set(actions) and set(FLAGS) <= set(params)


@pytest.mark.parametrize(
    ("flag", "value", "needle"),
    [
        ("--http-port", "99999", "--http-port must be between 1 and 65535"),
        ("--http-port", "-1", "--http-port must be between 1 and 65535"),
        ("--grpc-port", "70000", "--grpc-port must be between 0 and 65535"),
        ("--max-batch", "0", "--max-batch must be at least 1"),
        ("--max-body-bytes", "10", "--max-body-bytes must be at least 1024"),
        ("--read-timeout", "nan", "--read-timeout must be at least 0.1"),
        ("--format", "onnx", "--format must be one of auto, int8, float32, saved_model"),
        ("--http-port", "eighty", "expected int"),
    ],
)
def test_entry_point_refuses_bad_values_in_one_line(flag: str, value: str, needle: str, capsys) -> None:
    from shopfloor.serving.__main__ import parser

    with pytest.raises(SystemExit) as exited:
        parser().parse_args(["--model-dir", "x", flag, value])
    assert exited.value.code == 2
    err = capsys.readouterr().err
    assert needle in err and "Traceback" not in err


def test_cli_refuses_bad_values_with_the_same_checks(tmp_path: Path) -> None:
    from tests.conftest import run_cli

    result = run_cli("serve", "--model-dir", str(tmp_path), "--http-port", "99999", cwd=tmp_path, timeout=120)
    assert result.returncode == 2, result.stderr
    assert "--http-port must be between 1 and 65535" in result.stderr and "Traceback" not in result.stderr


def test_entry_point_accepts_the_rendered_container_args() -> None:
    """What the deploy renderer writes into the InferenceService must parse (same flags, values)."""
    from shopfloor.serving.__main__ import parser
    from shopfloor.settings import GRPC_PORT, HTTP_PORT

    args = parser().parse_args([
        "--model-uri", "s3://models/ai4i-failure/v0001", "--model-name", "ai4i-failure", "--format", "int8",
        "--http-port", str(HTTP_PORT), "--grpc-port", str(GRPC_PORT), "--host", "0.0.0.0",
    ])
    assert args.http_port == HTTP_PORT and args.format == "int8" and args.max_batch >= 1
