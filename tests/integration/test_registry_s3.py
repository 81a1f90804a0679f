"""The registry on S3 (moto on loopback) through ``open_registry("s3://...")`` and the CLI."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import pytest
from typer.testing import CliRunner

from shopfloor.data import s3
from shopfloor.registry import open_registry
from tests.conftest import use_s3
from tests.unit.test_registry_fixtures import make_run_dir, make_version_dir

BUCKET = "models"
SECRET = "s3cr3t-never-printed-" + "x" * 8
ACCESS = "AKIA-registry-test"


@pytest.fixture
def uri(s3_endpoint: str, monkeypatch: pytest.MonkeyPatch) -> str:
    use_s3(monkeypatch, s3_endpoint, BUCKET, access=ACCESS, secret=SECRET)
    return f"s3://{BUCKET}/registry/{uuid.uuid4().hex[:8]}"


def test_layout_in_bucket_and_no_credentials(uri: str, tmp_path: Path) -> None:
    reg = open_registry(uri)
    manifest = reg.publish(make_version_dir(tmp_path), run_id="kfp-run-42")
    prefix = uri.removeprefix(f"s3://{BUCKET}/")
    keys = {o.object_name.removeprefix(f"{prefix}/") for o in
            s3.client().list_objects(BUCKET, prefix=f"{prefix}/", recursive=True)}
    for rel in ("manifest.json", "saved_model/saved_model.pb", "model_int8.tflite", "decision.json",
                "golden_float32.npz", "evidence/verdict.json", "evidence/validation.json"):
        assert f"ai4i-failure/v0001/{rel}" in keys
    text = json.dumps(manifest)
    assert SECRET not in text and ACCESS not in text and "127.0.0.1" not in text

    reg.promote("v0001", env="edge")
    stored = json.loads(s3.read_object(BUCKET, f"{prefix}/ai4i-failure/_aliases/edge/champion.json"))
    assert stored["version"] == "v0001" and stored["history"][0]["action"] == "promote"
    assert reg.fetch("v0001", tmp_path / "out").joinpath("model_int8.tflite").is_file()


def test_missing_bucket_error_names_location_not_secret(uri: str) -> None:
    reg = open_registry("s3://no-such-bucket/x")
    with pytest.raises(OSError) as info:
        reg.list_versions()
    message = str(info.value)
    assert "NoSuchBucket" in message and "s3://no-such-bucket/x" in message
    assert SECRET not in message and ACCESS not in message


def test_cli_register_and_list_on_s3(uri: str, tmp_path: Path) -> None:
    from shopfloor.commands.models import app

    runner = CliRunner()
    env = {"COLUMNS": "200", "NO_COLOR": "1"}
    result = runner.invoke(app, ["register", str(make_run_dir(tmp_path)), "--registry", uri], env=env)
    assert result.exit_code == 0, result.output
    result = runner.invoke(app, ["list", "--registry", uri], env=env)
    assert result.exit_code == 0 and "v0001" in result.output
    assert SECRET not in result.output
