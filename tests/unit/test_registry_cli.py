"""``shopfloor models`` through typer's CliRunner on a filesystem registry in tmp."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from shopfloor.commands.models import app
from tests.unit.test_registry_fixtures import make_run_dir

runner = CliRunner()
ENV = {"COLUMNS": "200", "NO_COLOR": "1"}


def _cli(*args: str) -> tuple[int, str]:
    result = runner.invoke(app, list(args), env=ENV)
    return result.exit_code, result.output


@pytest.fixture
def reg(tmp_path: Path) -> str:
    return str(tmp_path / "registry")


def test_register_list_show_promote_rollback(tmp_path: Path, reg: str) -> None:
    for seed in (1, 2):
        code, out = _cli("register", str(make_run_dir(tmp_path / f"r{seed}", seed=seed)), "--registry", reg)
        assert code == 0, out
        assert f"ai4i-failure v000{seed}" in out
    code, out = _cli("list", "--registry", reg)
    assert code == 0 and "v0001" in out and "v0002" in out and "0.840 [0.790, 0.890]" in out
    assert "shopfloor-training-test-1" in out

    code, out = _cli("show", "v0002", "--registry", reg)
    assert code == 0 and "abc123" in out and "threshold" in out and "0.42" in out and "int8" in out

    assert _cli("promote", "v0001", "--registry", reg)[0] == 0
    code, out = _cli("promote", "v0002", "--registry", reg, "--env", "cloud")
    assert code == 0 and "v0001 -> v0002" in out
    code, out = _cli("promote", "v0002", "--registry", reg)
    assert code == 0 and "already v0002" in out
    code, out = _cli("list", "--registry", reg)
    assert "champion" in out
    code, out = _cli("rollback", "--registry", reg)
    assert code == 0 and "v0002 -> v0001" in out
    code, out = _cli("history", "--registry", reg)
    assert code == 0 and out.count("promoted") == 2 and "rollback" in out


def test_errors_are_one_red_line(tmp_path: Path, reg: str, monkeypatch: pytest.MonkeyPatch) -> None:
    cases = [
        (("show", "v0009", "--registry", reg), "no published version v0009"),
        (("show", "latest", "--registry", reg), "invalid version name 'latest'"),
        (("promote", "v0001", "--registry", reg), "no published version v0001"),
        (("rollback", "--registry", reg), "nothing to roll back to"),
        (("register", str(tmp_path / "missing"), "--registry", reg), "run directory not found"),
        (("register", str(make_run_dir(tmp_path / "f", gates=False)), "--registry", reg), "gates failed"),
        (("register", str(make_run_dir(tmp_path / "e", edge=False)), "--registry", reg), "no converted edge"),
        (("list", "--registry", "gs://x/y"), "unsupported registry URI"),
    ]
    for args, message in cases:
        code, out = _cli(*args)
        assert code == 1, (args, out)
        lines = [ln for ln in out.splitlines() if ln.strip()]
        assert len(lines) == 1 and lines[0].startswith("error:") and message in lines[0], (args, out)
    monkeypatch.setenv("SHOPFLOOR_REGISTRY", reg)  # default location from the environment
    assert _cli("register", str(make_run_dir(tmp_path / "ok")))[0] == 0
    code, out = _cli("list")
    assert code == 0 and "v0001" in out
