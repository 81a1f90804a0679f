"""The shopfloor command's own wiring: simulate, and refusals before any work starts."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
from typer.testing import CliRunner

from shopfloor.cli import app
from shopfloor.data import loader, schema

runner = CliRunner()


def test_simulate_writes_canonical_data(tmp_path: Path) -> None:
    out = tmp_path / "sim.parquet"
    result = runner.invoke(app, ["simulate", "--rows", "2000", "--machines", "2", "--seed", "3",
                                 "--scenario", "slow_spindle", "-o", str(out)])
    assert result.exit_code == 0, result.output
    frame = pd.read_parquet(out)
    assert len(frame) == 2000 and frame[schema.MACHINE_ID].nunique() == 2
    assert list(frame.columns[: len(schema.CANONICAL_COLUMNS)]) == list(schema.CANONICAL_COLUMNS)
    assert loader.load(out).version.startswith("sha256:")  # the pipeline can read it as is


def test_simulate_lists_and_refuses_unknown_scenarios(tmp_path: Path) -> None:
    listed = runner.invoke(app, ["simulate", "--list-scenarios"])
    assert listed.exit_code == 0 and "process_temp_offset_3k" in listed.output
    bad = runner.invoke(app, ["simulate", "--scenario", "earthquake", "-o", str(tmp_path / "x.csv")])
    assert bad.exit_code == 2
    assert "earthquake" in bad.output and "baseline" in bad.output
    assert not (tmp_path / "x.csv").exists()


def test_params_must_be_a_mapping(tmp_path: Path) -> None:
    params = tmp_path / "p.yaml"
    params.write_text("- just\n- a list\n")
    result = runner.invoke(app, ["run", "--params", str(params)])
    assert result.exit_code == 2 and "must hold a mapping" in result.output
