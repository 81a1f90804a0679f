"""check_arguments: every pipeline parameter checked before the pipeline starts, one line each."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from shopfloor.errors import InvalidInputError, NotFoundError
from shopfloor.evaluation.policy import default_policy_path
from shopfloor.pipelines.params import check_arguments, pipeline_parameters


def test_good_arguments_come_back_normalised(tmp_path: Path) -> None:
    (tmp_path / "policy.yaml").write_text(default_policy_path().read_text())
    checked = check_arguments(
        {"source": "plant.csv", "seed": 7, "validation_fraction": 0.1, "test_fraction": 1 / 4,
         "train_params": {"epochs": 5.0, "hidden_units": [16, 8]}, "policy": "policy.yaml",
         "env": "edge", "deploy": False, "deploy_namespace": "line-3"},
        base=tmp_path,
    )
    assert checked["policy_yaml"] == default_policy_path().read_text() and "policy" not in checked
    assert checked["train_params"] == {"epochs": 5.0, "hidden_units": [16, 8]}
    assert checked["seed"] == 7 and checked["test_fraction"] == 0.25
    assert check_arguments({}) == {}
    assert check_arguments({"test_fraction": 0.3}) == {"test_fraction": 0.3}


def test_the_known_names_are_the_pipelines_signature() -> None:
    from shopfloor.pipelines import training_pipeline

    assert set(pipeline_parameters()) == set(training_pipeline.component_spec.inputs)
    assert pipeline_parameters()["seed"] == 42


BAD: list[tuple[str, Any, str]] = [
    ("unknown name", {"epochs": 3}, r"unknown pipeline parameters \['epochs'\]"),
    ("seed text", {"seed": "abc"}, "seed must be an integer, got 'abc'"),
    ("seed bool", {"seed": True}, "seed must be an integer"),
    ("seed negative", {"seed": -1}, r"seed must be an integer in \[0, 4294967295\]"),
    ("seed huge", {"seed": 2**40}, "seed must be an integer in"),
    ("fraction zero", {"validation_fraction": 0}, r"validation_fraction must be a number in \(0, 1\)"),
    ("fraction one", {"test_fraction": 1.0}, r"test_fraction must be a number in \(0, 1\)"),
    ("fraction nan", {"test_fraction": float("nan")}, "test_fraction must be a number"),
    ("fraction text", {"test_fraction": "0.2"}, "test_fraction must be a float"),
    ("fractions sum", {"validation_fraction": 0.5, "test_fraction": 0.5}, "must be below 1"),
    ("one fraction with default", {"test_fraction": 0.85}, "must be below 1"),
    ("train_params list", {"train_params": [1]}, "train_params must be a mapping"),
    ("train_params unknown", {"train_params": {"epoch": 3}}, r"unknown training parameters \['epoch'\]"),
    ("train type", {"train_params": {"epochs": "ten"}}, "train_params.epochs must be an integer, got 'ten'"),
    ("train range", {"train_params": {"epochs": 0}}, r"train_params.epochs must be an integer in \[1, "),
    ("train units", {"train_params": {"hidden_units": 64}}, "train_params.hidden_units must be a list"),
    ("train activation", {"train_params": {"activation": "wiggly"}}, "train_params.activation must be"),
    ("policy text", {"policy_yaml": "gates: []\n"}, "policy policy_yaml: missing"),
    ("policy not yaml", {"policy_yaml": "gates: [\n"}, "not valid YAML"),
    ("env newline", {"env": "edge\n"}, "env must be one line"),
    ("env upper", {"env": "Edge"}, "invalid env 'Edge'"),
    ("namespace long", {"deploy_namespace": "n" * 300}, "deploy_namespace 'nnn.*DNS-1123 label"),
    ("deploy text", {"deploy": "yes"}, "deploy must be a boolean, got 'yes'"),
    ("source empty", {"source": ""}, "source must not be empty"),
    ("source huge", {"source": "x" * 5000}, "source is longer than 4096"),
    ("not a mapping", ["seed"], "must be a mapping"),
]


@pytest.mark.parametrize(("arguments", "message"), [case[1:] for case in BAD], ids=[case[0] for case in BAD])
def test_bad_parameters_give_one_line_naming_the_parameter(arguments: Any, message: str) -> None:
    with pytest.raises(InvalidInputError, match=message) as raised:
        check_arguments(arguments)
    text = str(raised.value)
    assert "\n" not in text and len(text) <= 500


def test_policy_file_problems(tmp_path: Path) -> None:
    with pytest.raises(NotFoundError, match="policy file not found"):
        check_arguments({"policy": "missing.yaml"}, base=tmp_path)
    with pytest.raises(InvalidInputError, match="is not a file"):
        check_arguments({"policy": "."}, base=tmp_path)
    policy = yaml.safe_load(default_policy_path().read_text())
    policy["gates"][0]["min_ci_low"] = 2
    (tmp_path / "p.yaml").write_text(yaml.safe_dump(policy))
    with pytest.raises(InvalidInputError, match=r"p.yaml: min_ci_low must be a number in \[0.0, 1.0\]"):
        check_arguments({"policy": "p.yaml"}, base=tmp_path)
    with pytest.raises(InvalidInputError, match="not both"):
        check_arguments({"policy": "p.yaml", "policy_yaml": ""}, base=tmp_path)
    with pytest.raises(InvalidInputError, match="policy must be the path"):
        check_arguments({"policy": ["a"]})


def test_the_data_is_not_read(tmp_path: Path) -> None:
    """The source is checked for form only: a file that does not exist is ingest's (and the
    CLI's pre-flight's) to report, so the data is parsed once."""
    assert check_arguments({"source": str(tmp_path / "not-there.csv")})["source"].endswith("not-there.csv")
