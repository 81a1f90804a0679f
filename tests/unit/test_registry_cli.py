"""``shopfloor models`` (and ``serve``'s registry side) through the root command, as a user runs them:
every refusal is one line and the exit code of its category (README, "Exit codes")."""

from __future__ import annotations

import json
import shutil
import socket
from pathlib import Path

import pytest
from typer.testing import CliRunner

from shopfloor import contract
from shopfloor.cli import app
from shopfloor.registry import open_registry
from tests.conftest import run_cli
from tests.fixtures.versions import SCHEMA1_REGISTRY, make_run_dir, make_tree_version_dir, make_version_dir

runner = CliRunner()
ENV = {"COLUMNS": "200", "NO_COLOR": "1"}


def _cli(*args: str) -> tuple[int, str]:
    result = runner.invoke(app, list(args), env=ENV)
    return result.exit_code, result.output


def _models(*args: str) -> tuple[int, str]:
    return _cli("models", *args)


def _one_error_line(out: str, message: str) -> None:
    lines = [ln for ln in out.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("error:") and message in lines[0], out
    assert "Traceback" not in out


@pytest.fixture
def reg(tmp_path: Path) -> str:
    return str(tmp_path / "registry")


def test_register_list_show_promote_rollback(tmp_path: Path, reg: str) -> None:
    for seed in (1, 2):
        run = str(make_run_dir(tmp_path / f"r{seed}", seed=seed))
        code, out = _models("register", run, "--registry", reg)
        assert code == 0, out
        assert f"ai4i-failure v000{seed}" in out and "threshold 0.4200" in out
    code, out = _models("list", "--registry", reg)
    assert code == 0 and "v0001" in out and "v0002" in out and "0.830 [0.780, 0.880]" in out  # edge (int8)
    assert "shopfloor-training-test-1" in out and "saved_model,float32,int8" in out

    code, out = _models("show", "v0002", "--registry", reg)
    assert code == 0 and "abc123" in out and "threshold" in out and "0.42" in out and "int8" in out

    assert _models("promote", "v0001", "--registry", reg)[0] == 0
    code, out = _models("promote", "v0002", "--registry", reg, "--env", "cloud")
    assert code == 0 and "v0001 -> v0002" in out
    code, out = _models("promote", "v0002", "--registry", reg)
    assert code == 0 and "already v0002" in out
    code, out = _models("list", "--registry", reg)
    assert "champion" in out
    code, out = _models("rollback", "--registry", reg)
    assert code == 0 and "v0002 -> v0001" in out
    code, out = _models("history", "--registry", reg)
    assert code == 0 and out.count("promoted") == 2 and "rollback" in out


def test_errors_are_one_line_with_the_category_exit_code(tmp_path: Path, reg: str,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    failed, no_edge = make_run_dir(tmp_path / "f", gates=False), make_run_dir(tmp_path / "e", edge=False)
    cases = [
        (("show", "v0009", "--registry", reg), 3, "no published version v0009"),
        (("show", "latest", "--registry", reg), 2, "invalid version name 'latest'"),
        (("promote", "v0001", "--registry", reg), 3, "no published version v0001"),
        (("rollback", "--registry", reg), 4, "nothing to roll back to"),
        (("register", str(tmp_path / "missing"), "--registry", reg), 3, "run directory not found"),
        (("register", str(failed), "--registry", reg), 6, "gates failed"),
        (("register", str(no_edge), "--registry", reg), 2, "no converted edge"),
        (("list", "--registry", "gs://x/y"), 2, "unsupported registry URI"),
        (("list", "--registry", "s3://"), 2, "has no bucket"),
        (("list", "--model", "AI4I"), 2, "invalid model name"),
    ]
    for args, code, message in cases:
        got, out = _models(*args)
        assert got == code, (args, out)
        _one_error_line(out, message)
    monkeypatch.setenv("SHOPFLOOR_REGISTRY", reg)  # default location from the environment
    assert _models("register", str(make_run_dir(tmp_path / "ok")))[0] == 0
    code, out = _models("list")
    assert code == 0 and "v0001" in out


def test_register_refuses_a_link_in_the_run_before_copying(tmp_path: Path, reg: str) -> None:
    """Issue 7 item 3: a link to any file on the machine must not end up in the registry."""
    run = make_run_dir(tmp_path / "runs")
    secret = tmp_path / "elsewhere" / "variables.index"
    secret.parent.mkdir()
    secret.write_bytes(b"private key material")
    link = run / "train/model/saved_model/variables/variables.index"
    link.unlink()
    link.symlink_to(secret)
    code, out = _models("register", str(run), "--registry", reg)
    assert code == 2
    _one_error_line(out, "refusing saved_model/variables/variables.index: a symbolic link")
    stored = [p for p in Path(reg).rglob("*") if p.is_file() and ".locks" not in p.parts]
    assert stored == []


def test_promote_refuses_a_trailing_newline_and_creates_nothing(tmp_path: Path, reg: str) -> None:
    """Issue 7 item 13: ``models promote v0001 --env $'edge\\n'`` created an alias directory."""
    assert _models("register", str(make_run_dir(tmp_path)), "--registry", reg)[0] == 0
    before = sorted(p.relative_to(reg).as_posix() for p in Path(reg).rglob("*"))
    for args in (("promote", "v0001", "--env", "edge\n"), ("promote", "v0001\n"),
                 ("rollback", "--alias", "champion\n"), ("history", "--env", "cloud\n")):
        code, out = _models(*args, "--registry", reg)
        assert code == 2, (args, out)
        _one_error_line(out, "invalid")
    assert sorted(p.relative_to(reg).as_posix() for p in Path(reg).rglob("*")) == before


def _rows(out: str) -> dict[str, list[str]]:
    """``models list`` table rows by version: their cells."""
    return {cells[0]: cells for line in out.splitlines() if line.count("│") > 3
            for cells in [[c.strip() for c in line.split("│")[1:-1]]]}


def test_list_and_show_name_the_family_and_the_format_the_edge_gets(tmp_path: Path, reg: str) -> None:
    """An MLP version ships int8 (its int8 file's PR-AUC, kept under ``int8`` by runs before
    issue 10); a tree version ships float32, its only LiteRT file, with its own edge PR-AUC."""
    registry = open_registry(reg)
    registry.publish(make_version_dir(tmp_path / "mlp"), run_id="mlp-run")
    registry.publish(make_tree_version_dir(tmp_path / "trees"), run_id="tree-run")
    code, out = _models("list", "--registry", reg)
    assert code == 0, out
    header = next(line for line in out.splitlines() if "edge format" in line)
    assert [c.strip() for c in header.split("┃")[1:-1]] == [
        "version", "created", "aliases", "family", "edge format", "edge PR-AUC [95% CI]", "formats", "run"]
    rows = _rows(out)
    mlp, trees = rows["v0001"], rows["v0002"]
    assert mlp[3:] == ["keras-mlp", "int8", "0.830 [0.780, 0.880]", "saved_model,float32,int8", "mlp-run"]
    assert trees[3:] == ["hist-gbt", "float32", "0.880 [0.830, 0.930]", "saved_model,float32", "tree-run"]

    code, out = _models("show", "v0002", "--registry", reg)
    assert code == 0, out
    fields = {cells[0]: cells[1] for line in out.splitlines() if line.count("│") == 3
              for cells in [[c.strip() for c in line.split("│")[1:-1]]]}
    assert fields["model family"] == "hist-gbt" and fields["edge format"] == "float32"
    assert fields["edge PR-AUC"] == "0.880 [0.830, 0.930]" and fields["formats"] == "saved_model, float32"
    code, out = _models("show", "v0001", "--registry", reg)
    fields = {cells[0]: cells[1] for line in out.splitlines() if line.count("│") == 3
              for cells in [[c.strip() for c in line.split("│")[1:-1]]]}
    assert (fields["model family"], fields["edge format"], fields["edge PR-AUC"]) == (
        "keras-mlp", "int8", "0.830 [0.780, 0.880]")


def test_unreadable_versions_and_aliases_are_marked_not_fatal(tmp_path: Path, reg: str) -> None:
    """Issue 7 items 7 and 9: one corrupt manifest no longer breaks ``models list``; a manifest
    that is JSON but not an object is one line (not an AttributeError); alias files are named."""
    registry = open_registry(reg)
    version = make_version_dir(tmp_path)
    for _ in range(3):
        registry.publish(version, run_id="r")
    registry.promote("v0003")
    registry.set_alias("candidate", "v0001")
    (Path(reg) / "ai4i-failure/v0002/manifest.json").write_text("[]")
    (Path(reg) / "ai4i-failure/_aliases/cloud/candidate.json").write_text("{oops")

    code, out = _models("list", "--registry", reg)
    assert code == 0, out
    rows = {line.split("│")[1].strip(): line for line in out.splitlines() if line.count("│") > 3}
    assert set(rows) >= {"v0001", "v0002", "v0003"}
    assert "unreadable:" in rows["v0002"] and "expected a JSON object" in rows["v0002"]
    assert "0.830" in rows["v0001"] and "champion" in rows["v0003"]
    warnings = [ln for ln in out.splitlines() if ln.startswith("warning:")]
    assert len(warnings) == 1 and "_aliases/cloud/candidate.json" in warnings[0]

    code, out = _models("show", "v0002", "--registry", reg)
    assert code == 5
    _one_error_line(out, "v0002/manifest.json: expected a JSON object, got list")
    code, out = _models("promote", "v0001", "--registry", reg)
    assert code == 0, out  # the champion document is intact


def test_serve_on_a_version_that_fails_verification_is_one_line(tmp_path: Path) -> None:
    """Issue 7 item 7: serve refused a tampered version with a 50-114 line traceback."""
    registry = open_registry(str(tmp_path / "registry"))
    registry.publish(make_version_dir(tmp_path), run_id="r")
    stored = tmp_path / "registry/ai4i-failure/v0001" / contract.litert_file("int8")
    data = bytearray(stored.read_bytes())
    data[-1] ^= 1
    stored.write_bytes(bytes(data))
    with socket.socket() as probe:  # a free loopback port, should the refusal ever not happen
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    done = run_cli("serve", "v0001", "--http-port", str(port), "--grpc-port", "0", cwd=tmp_path, timeout=120)
    assert done.returncode == 5, done.stderr
    lines = [ln for ln in done.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and "model_int8.tflite does not match its manifest" in lines[0], done.stderr


def test_schema1_registry_through_the_cli(tmp_path: Path) -> None:
    """A registry written before the contract lists, shows and promotes as it did."""
    reg = tmp_path / "old"
    shutil.copytree(SCHEMA1_REGISTRY, reg)
    raw = json.loads((reg / "ai4i-failure/v0001/manifest.json").read_text())
    code, out = _models("list", "--registry", str(reg))
    assert code == 0 and "v0001" in out and "candidate, champion" in out and raw["run_id"] in out
    code, out = _models("show", "v0001", "--registry", str(reg))
    assert code == 0 and str(raw["threshold"]) in out and raw["code_version"] in out
    assert "0.842 [0.767, 0.911]" in out  # keras PR-AUC with its interval, as published
    code, out = _models("promote", "v0001", "--registry", str(reg), "--env", "edge")
    assert code == 0 and "- -> v0001" in out
