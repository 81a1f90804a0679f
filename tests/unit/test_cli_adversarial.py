"""The ``shopfloor`` command as a careless or hostile user meets it: every refusal is one line
on stderr with the documented exit code, no traceback, and nothing half-written.

Runs the real console entry point (``python -m shopfloor``) in a subprocess, against a copy of
the schema-1 registry fixture (a real model version written by older shopfloor code).
"""

from __future__ import annotations

import shutil
import socket
import time
from pathlib import Path

import pytest

from shopfloor import errors
from tests.conftest import run_cli

FIXTURE_REGISTRY = Path(__file__).resolve().parents[1] / "fixtures" / "registry-schema1"


@pytest.fixture
def registry(tmp_path: Path) -> Path:
    root = tmp_path / "registry"
    shutil.copytree(FIXTURE_REGISTRY, root, ignore=shutil.ignore_patterns("README.md"))
    return root


def _refused(result: object, category: type[errors.ShopfloorError], *needles: str) -> str:
    """Assert a one-line refusal with the category's exit code; return the line."""
    code, out, err = result.returncode, result.stdout, result.stderr  # type: ignore[attr-defined]
    assert code == category.exit_code, f"exit {code}, expected {category.exit_code}\n{out}\n{err}"
    assert "Traceback" not in err + out, err
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    for needle in needles:
        assert needle in lines[0], lines[0]
    return lines[0]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# -- run --params ------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("content", "needle"),
    [
        ("seed: abc\n", "seed"),
        ("test_fraction: 1.5\n", "test_fraction"),
        ("validation_fraction: -0.1\n", "validation_fraction"),
        ("train_params: {epochs: many}\n", "epochs"),
        ("train_params: {no_such_knob: 1}\n", "no_such_knob"),
        ("seed: [1, 2\n", "not valid YAML"),
        ("policy: a-directory\n", "a-directory"),
        ("policy: bad-policy.yaml\n", "bad-policy.yaml"),
    ],
)
def test_bad_params_are_refused_before_the_pipeline_starts(tmp_path: Path, content: str, needle: str) -> None:
    (tmp_path / "a-directory").mkdir()
    (tmp_path / "bad-policy.yaml").write_text("policy_version: x\ngates: []\n")
    params = tmp_path / "params.yaml"
    params.write_text(content)
    result = run_cli("run", "--params", str(params), "--output", str(tmp_path / "runs"), cwd=tmp_path,
                     timeout=120)
    _refused(result, errors.InvalidInputError, needle)
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").iterdir())


def test_a_missing_policy_file_is_not_found(tmp_path: Path) -> None:
    params = tmp_path / "params.yaml"
    params.write_text("policy: missing-policy.yaml\n")
    result = run_cli("run", "--params", str(params), cwd=tmp_path, timeout=120)
    _refused(result, errors.NotFoundError, "missing-policy.yaml")


def test_dead_s3_endpoint_is_one_line_and_the_summary_says_why(tmp_path: Path) -> None:
    port = _free_port()  # nothing listens here
    env = {"SHOPFLOOR_S3_ENDPOINT": f"http://127.0.0.1:{port}", "AWS_ACCESS_KEY_ID": "k",
           "AWS_SECRET_ACCESS_KEY": "s"}
    started = time.monotonic()
    result = run_cli("run", "--data", "s3://plant/line3.csv", "--summary", str(tmp_path / "s.json"),
                     cwd=tmp_path, env=env, timeout=120)
    line = _refused(result, errors.ExternalServiceError, f"127.0.0.1:{port}")
    assert time.monotonic() - started < 60, "a dead endpoint must fail fast"
    summary = (tmp_path / "s.json").read_text()
    assert '"failed"' in summary and line.removeprefix("error: ")[:40] in summary


# -- serve ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("flag", ["--http-port", "--grpc-port"])
@pytest.mark.parametrize("port", ["99999", "-1", "70000"])
def test_ports_out_of_range_are_refused(registry: Path, flag: str, port: str) -> None:
    result = run_cli("serve", "--registry", str(registry), flag, port, cwd=registry.parent, timeout=60)
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr and port in result.stderr


def test_grpc_port_in_use_is_one_line(registry: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = run_cli("serve", "--registry", str(registry), "--http-port", str(_free_port()),
                         "--grpc-port", str(port), cwd=registry.parent, timeout=120)
    assert result.returncode != 0 and "Traceback" not in result.stderr, result.stderr
    assert str(port) in result.stderr and len(result.stderr.strip().splitlines()) <= 3, result.stderr


def test_serve_refuses_a_tampered_version_in_one_line(registry: Path) -> None:
    model = registry / "ai4i-failure" / "v0001" / "model_int8.tflite"
    data = bytearray(model.read_bytes())
    data[len(data) // 2] ^= 0xFF
    model.write_bytes(bytes(data))
    result = run_cli("serve", "--registry", str(registry), "--http-port", str(_free_port()),
                     "--grpc-port", "0", cwd=registry.parent, timeout=120)
    _refused(result, errors.IntegrityError, "model_int8.tflite")


def test_serve_refuses_a_manifest_that_is_not_an_object(registry: Path) -> None:
    (registry / "ai4i-failure" / "v0001" / "manifest.json").write_text("[1, 2, 3]\n")
    result = run_cli("serve", "v0001", "--registry", str(registry), "--http-port", str(_free_port()),
                     "--grpc-port", "0", cwd=registry.parent, timeout=120)
    _refused(result, errors.IntegrityError, "manifest.json")


def test_serve_unknown_version_is_not_found(registry: Path) -> None:
    result = run_cli("serve", "v0042", "--registry", str(registry), "--http-port", str(_free_port()),
                     cwd=registry.parent, timeout=120)
    _refused(result, errors.NotFoundError, "v0042")


# -- models ----------------------------------------------------------------------------------------
@pytest.mark.parametrize("env", ["edge\n", "Edge", "../cloud", "a" * 300, ""])
def test_hostile_environment_names_create_nothing(registry: Path, env: str) -> None:
    before = sorted(p.relative_to(registry) for p in registry.rglob("*"))
    result = run_cli("models", "promote", "v0001", "--env", env, "--registry", str(registry),
                     cwd=registry.parent, timeout=60)
    _refused(result, errors.InvalidInputError)
    after = sorted(p.relative_to(registry) for p in registry.rglob("*") if ".locks" not in p.parts)
    assert after == [p for p in before if ".locks" not in p.parts]


def test_promote_unknown_version_is_not_found(registry: Path) -> None:
    result = run_cli("models", "promote", "v0099", "--registry", str(registry), cwd=registry.parent,
                     timeout=60)
    _refused(result, errors.NotFoundError, "v0099")


def test_register_a_missing_run_directory_is_not_found(registry: Path, tmp_path: Path) -> None:
    result = run_cli("models", "register", str(tmp_path / "no-such-run"), "--registry", str(registry),
                     cwd=tmp_path, timeout=60)
    _refused(result, errors.NotFoundError, "no-such-run")
