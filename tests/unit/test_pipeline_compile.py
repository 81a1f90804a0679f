"""Compiled pipeline: deterministic IR YAML that KFP can load, gated conversion, no secrets."""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

import yaml
from kfp import components as kfp_components

from shopfloor.pipelines.run import compile_pipeline, submit
from tests.conftest import run_cli


def test_compile_is_deterministic_and_loadable(tmp_path: Path) -> None:
    first = compile_pipeline(tmp_path / "a.yaml").read_bytes()
    second = compile_pipeline(tmp_path / "b.yaml").read_bytes()
    assert first == second
    loaded = kfp_components.load_component_from_file(str(tmp_path / "a.yaml"))
    assert loaded.name == "shopfloor-training"
    spec, platform = yaml.safe_load_all(first)  # pipeline spec + Kubernetes platform spec
    secret = platform["platforms"]["kubernetes"]["deploymentSpec"]["executors"]["exec-ingest"]
    assert secret["secretAsEnv"][0]["secretName"] == "shopfloor-s3"
    tasks = spec["root"]["dag"]["tasks"]
    assert {"ingest", "validate", "train", "evaluate", "condition-1"} <= set(tasks)
    assert tasks["condition-1"]["taskInfo"]["name"] == "gates-passed"
    condition = tasks["condition-1"]["triggerPolicy"]["condition"]
    assert "evaluate-Output" in condition
    inner = spec["components"]["comp-condition-1"]["dag"]["tasks"]
    assert {"convert", "register"} <= set(inner)
    deploy_branch = [t for t in inner.values() if t["taskInfo"]["name"] == "deploy-requested"]
    assert len(deploy_branch) == 1 and "deploy" in deploy_branch[0]["triggerPolicy"]["condition"]
    assert tasks["train"]["dependentTasks"] == ["ingest", "validate"]


def test_compiled_yaml_holds_no_credentials(tmp_path: Path) -> None:
    text = compile_pipeline(tmp_path / "p.yaml").read_text()
    assert "shopfloor-s3" in text  # secret referenced by name only
    for word in ("AKIA", "secret_key=", "password"):
        assert word not in text


def test_compile_command(tmp_path: Path) -> None:
    result = run_cli("compile", "-o", str(tmp_path / "out.yaml"), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    spec = next(yaml.safe_load_all((tmp_path / "out.yaml").read_text()))
    assert spec["pipelineInfo"]["name"] == "shopfloor-training"


class _RecordingClient:
    """Seam test double for kfp.Client: records what would be sent to the KFP API."""

    calls: ClassVar[list[dict[str, Any]]] = []

    def __init__(self, host: str) -> None:
        self.host = host

    def create_run_from_pipeline_func(self, func: Any, **kwargs: Any) -> Any:
        self.calls.append({"host": self.host, "func": func, **kwargs})
        return type("Run", (), {"run_id": "run-123"})()


def test_submit_sends_the_same_pipeline_to_kfp() -> None:
    from shopfloor.pipelines import training_pipeline

    result = submit(
        "http://127.0.0.1:8888/",
        {"source": "s3://plant/data.csv"},
        experiment="exp",
        run_name="nightly",
        client_factory=_RecordingClient,
    )
    call = _RecordingClient.calls[-1]
    assert call["func"] is training_pipeline
    assert call["arguments"] == {"source": "s3://plant/data.csv"}
    assert (call["experiment_name"], call["run_name"]) == ("exp", "nightly")
    assert result == {"run_id": "run-123", "url": "http://127.0.0.1:8888/#/runs/details/run-123"}


def test_docstrings_reach_the_compiled_pipeline(tmp_path: Path) -> None:
    """KFP copies ``Args:``/``Returns:`` descriptions into the IR (what the KFP UI shows)."""
    spec = next(yaml.safe_load_all(compile_pipeline(tmp_path / "p.yaml").read_text()))
    root = spec["root"]["inputDefinitions"]["parameters"]
    assert set(root) >= {"source", "seed", "train_params", "policy_yaml", "deploy_namespace"}
    missing = [name for name, p in root.items() if not p.get("description")]
    assert not missing, missing
    assert "s3://bucket/key" in root["source"]["description"]
    checked = 0
    for name, component in spec["components"].items():
        if "executorLabel" not in component:
            continue
        for kind in ("inputDefinitions", "outputDefinitions"):
            for section in ("parameters", "artifacts"):
                for key, entry in component.get(kind, {}).get(section, {}).items():
                    assert entry.get("description"), (name, kind, key)
                    checked += 1
    assert checked >= 30
    ingest = spec["components"]["comp-ingest"]
    assert "(0, 1)" in ingest["inputDefinitions"]["parameters"]["test_fraction"]["description"]
    assert "sha256" in ingest["outputDefinitions"]["parameters"]["data_version"]["description"]
    validate_outputs = spec["components"]["comp-validate"]["outputDefinitions"]["artifacts"]
    assert "HTML" in validate_outputs["report"]["description"]
