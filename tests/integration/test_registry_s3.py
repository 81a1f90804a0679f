"""The registry on S3 (moto on loopback) through ``open_registry("s3://...")`` and the CLI, and
against endpoints that are dead or answer like a broken proxy (issue 7 item 6)."""

from __future__ import annotations

import json
import time
import uuid
from pathlib import Path

import pytest
from typer.testing import CliRunner

from shopfloor.data import s3
from shopfloor.errors import ExternalServiceError, NotFoundError
from shopfloor.registry import open_registry
from tests.conftest import use_s3
from tests.fixtures.endpoints import answering, dead_endpoint
from tests.fixtures.versions import make_run_dir, make_version_dir

BUCKET = "models"
SECRET = "s3cr3t-never-printed-" + "x" * 8
ACCESS = "AKIA-registry-test"
ENV = {"COLUMNS": "200", "NO_COLOR": "1"}


@pytest.fixture
def uri(s3_endpoint: str, monkeypatch: pytest.MonkeyPatch) -> str:
    use_s3(monkeypatch, s3_endpoint, BUCKET, access=ACCESS, secret=SECRET)
    return f"s3://{BUCKET}/registry/{uuid.uuid4().hex[:8]}"


def _endpoint(monkeypatch: pytest.MonkeyPatch, url: str) -> None:
    monkeypatch.setenv("SHOPFLOOR_S3_ENDPOINT", url)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", ACCESS)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", SECRET)


def test_layout_in_bucket_and_no_credentials(uri: str, tmp_path: Path) -> None:
    reg = open_registry(uri)
    manifest = reg.publish(make_version_dir(tmp_path), run_id="kfp-run-42")
    prefix = uri.removeprefix(f"s3://{BUCKET}/")
    keys = {o.object_name.removeprefix(f"{prefix}/") for o in
            s3.client().list_objects(BUCKET, prefix=f"{prefix}/", recursive=True)}
    for rel in ("manifest.json", "saved_model/saved_model.pb", "model_int8.tflite", "decision.json",
                "golden_float32.npz", "evidence/verdict.json", "evidence/validation.json"):
        assert f"ai4i-failure/v0001/{rel}" in keys
    text = json.dumps(manifest.to_dict())
    assert SECRET not in text and ACCESS not in text and "127.0.0.1" not in text

    reg.promote("v0001", env="edge")
    stored = json.loads(s3.read_object(BUCKET, f"{prefix}/ai4i-failure/_aliases/edge/champion.json"))
    assert stored["version"] == "v0001" and stored["history"][0]["action"] == "promote"
    assert reg.fetch("v0001", tmp_path / "out").joinpath("model_int8.tflite").is_file()


def test_missing_bucket_is_not_found_naming_location_not_secret(uri: str) -> None:
    reg = open_registry("s3://no-such-bucket/x")
    with pytest.raises(NotFoundError) as info:
        reg.list_versions()
    message = str(info.value)
    assert "NoSuchBucket" in message and "s3://no-such-bucket/x" in message
    assert SECRET not in message and ACCESS not in message


def test_cli_register_and_list_on_s3(uri: str, tmp_path: Path) -> None:
    from shopfloor.cli import app

    runner = CliRunner()
    run = str(make_run_dir(tmp_path))
    result = runner.invoke(app, ["models", "register", run, "--registry", uri], env=ENV)
    assert result.exit_code == 0, result.output
    result = runner.invoke(app, ["models", "list", "--registry", uri], env=ENV)
    assert result.exit_code == 0 and "v0001" in result.output
    assert SECRET not in result.output


# -- endpoints that are dead or answer like a broken proxy ------------------------------------------

def _refused(call: object, endpoint: str, *words: str) -> str:
    start = time.monotonic()
    with pytest.raises(ExternalServiceError) as info:
        call()  # type: ignore[operator]
    elapsed = time.monotonic() - start
    message = str(info.value)
    assert elapsed < 10, f"took {elapsed:.1f} s: retries/timeouts are not bounded"
    assert "\n" not in message and len(message) <= 500
    assert endpoint in message and all(w in message for w in words), message
    assert SECRET not in message and ACCESS not in message
    assert info.value.exit_code == 7
    return message


def test_dead_endpoint_fails_in_seconds_naming_it(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    endpoint = dead_endpoint()
    _endpoint(monkeypatch, endpoint)
    reg = open_registry("s3://models/r")
    _refused(reg.list_versions, endpoint, "unreachable", "s3://models/r")
    _refused(lambda: reg.show("v0001"), endpoint, "unreachable", "v0001/manifest.json")
    _refused(lambda: reg.publish(make_version_dir(tmp_path), run_id="r"), endpoint, "unreachable")


@pytest.mark.parametrize("status, body, words", [
    (502, b"<html><body>Bad Gateway</body></html>", ("502",)),
    (503, b"", ("503",)),
    (403, b"", ("403",)),
    (404, b"<html>no such page</html>", ("404", "without an S3 error document")),
])
def test_endpoint_answering_like_a_broken_proxy(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, status: int,
                                                body: bytes, words: tuple[str, ...]) -> None:
    with answering(status, body) as server:
        _endpoint(monkeypatch, server.url)
        reg = open_registry("s3://models/r")
        _refused(lambda: reg.show("v0001"), server.url, *words)
        if status >= 500:
            assert len(server.requests) == 1 + s3.RETRIES  # bounded: not minio's five
        _refused(lambda: reg.promote("v0001"), server.url)


def test_cli_on_a_dead_registry_endpoint_is_one_line_exit_7(monkeypatch: pytest.MonkeyPatch) -> None:
    from shopfloor.cli import app

    endpoint = dead_endpoint()
    _endpoint(monkeypatch, endpoint)
    for args in (["models", "list", "--registry", "s3://models/r"],
                 ["models", "show", "v0001", "--registry", "s3://models/r"],
                 ["models", "promote", "v0001", "--registry", "s3://models/r"]):
        result = CliRunner().invoke(app, args, env=ENV)
        lines = [ln for ln in result.output.splitlines() if ln.strip()]
        assert result.exit_code == 7, result.output
        assert len(lines) == 1 and lines[0].startswith("error:") and endpoint in lines[0], result.output


def test_a_bad_endpoint_setting_is_invalid_input(monkeypatch: pytest.MonkeyPatch) -> None:
    from shopfloor.errors import InvalidInputError

    for value in ("ftp://minio:9000", "http://minio:99999", "http://", "http://minio :9000"):
        monkeypatch.setenv("SHOPFLOOR_S3_ENDPOINT", value)
        with pytest.raises(InvalidInputError, match="SHOPFLOOR_S3_ENDPOINT"):
            open_registry("s3://models/r")
    monkeypatch.setenv("SHOPFLOOR_S3_ENDPOINT", "http://user:pa55@minio.local:9000/")
    assert s3.endpoint_url() == "http://minio.local:9000"  # never echo a password in a message
