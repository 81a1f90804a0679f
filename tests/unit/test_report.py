"""Figures, the HTML report, the report command, run progress and the notebook API (no pipeline)."""

from __future__ import annotations

import base64
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from shopfloor.errors import NotFoundError
from shopfloor.report import figures as fig
from shopfloor.report import html
from tests.conftest import run_cli

RNG = np.random.default_rng(7)


def _scores(n: int = 600, rate: float = 0.1, separation: float = 1.5) -> tuple[np.ndarray, np.ndarray]:
    y = (RNG.random(n) < rate).astype(int)
    logits = RNG.normal(size=n) + separation * y
    return y, 1 / (1 + np.exp(-logits))


def test_bands_contain_the_curve_and_perfect_scores_give_a_perfect_curve() -> None:
    y, s = _scores()
    bands = fig.bootstrap_bands(y, s, resamples=100)
    assert np.all(bands["pr_low"] <= bands["pr_high"]) and np.all(bands["roc_low"] <= bands["roc_high"])
    inside = (bands["roc_low"] - 1e-9 <= bands["roc"]) & (bands["roc"] <= bands["roc_high"] + 1e-9)
    assert inside.mean() > 0.9
    perfect = fig.bootstrap_bands(y, y.astype(float), resamples=20)
    assert np.allclose(perfect["pr"], 1.0) and np.allclose(perfect["roc"][1:], 1.0)


@pytest.mark.parametrize(
    ("y", "s", "match"),
    [
        (np.zeros(10), np.linspace(0, 1, 10), "both classes"),
        (np.array([0, 1]), np.array([0.5]), "equal in length"),
    ],
)
def test_curves_refuse_unusable_labels(y: np.ndarray, s: np.ndarray, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        fig.bootstrap_bands(y, s, resamples=5)


def test_resamples_are_bounded() -> None:
    y, s = _scores(100)
    with pytest.raises(ValueError, match="resamples"):
        fig.bootstrap_bands(y, s, resamples=fig.MAX_RESAMPLES + 1)


def test_figures_write_png_and_svg_with_the_intervals(tmp_path: Path) -> None:
    import matplotlib.image as mpimg

    y, s = _scores()
    pr = {"keras": {"value": 0.812, "ci_low": 0.701, "ci_high": 0.9}}
    written = fig.curve_figures(y, {"keras": s}, tmp_path, pr_auc=pr, resamples=30)
    written.append(fig.calibration_figure(y, {"keras": s}, tmp_path))
    written.append(fig.confusion_figure([[500, 10], [20, 70]], 0.5, tmp_path))
    fig.write_index(tmp_path, written)
    for figure in fig.read_index(tmp_path):
        image = mpimg.imread(figure.png(tmp_path))
        assert image.shape[0] > 100 and image.shape[1] > 100
        assert figure.svg(tmp_path).read_text().startswith("<?xml")
    assert [f.name for f in fig.read_index(tmp_path)] == [
        "pr_curve",
        "roc_curve",
        "calibration",
        "confusion_matrix",
    ]
    assert "PR-AUC 0.812 [0.701, 0.900]" in (tmp_path / "pr_curve.svg").read_text()
    with pytest.raises(ValueError, match="2x2"):
        fig.confusion_figure([[1, 2, 3]], 0.5, tmp_path)


def test_calibration_of_a_bin_that_holds_only_failures(tmp_path: Path) -> None:
    """A confident tree ensemble puts only failures in its top bin (k == n): the Wilson bound
    equals the rate up to rounding, and drawing must not fail on a negative error bar."""
    y = np.array([0] * 97 + [1] * 3 + [1] * 7)
    s = np.concatenate([np.linspace(0.0, 0.2, 100), np.full(7, 0.999)])
    figure = fig.calibration_figure(y, {"trees": s}, tmp_path)
    assert figure.png(tmp_path).stat().st_size > 0


def _gate(
    name: str, metric: str, value: float, low: float, high: float, limit: float, ok: bool
) -> dict[str, Any]:
    return {
        "name": name,
        "metric": metric,
        "value": value,
        "ci_low": low,
        "ci_high": high,
        "limit": limit,
        "passed": ok,
        "verdict": "pass" if ok else "fail",
        "reason": f"{metric} {'ok' if ok else 'too low'}",
    }


def _est(value: float) -> dict[str, Any]:
    return {"value": value, "ci_low": value - 0.05, "ci_high": min(value + 0.04, 1.0), "method": "bca"}


def test_per_product_type_draws_the_gate_limits(tmp_path: Path) -> None:
    cell = {m: _est(v) for m, v in (("pr_auc", 0.8), ("roc_auc", 0.95))}
    evaluation = {"models": {"keras": {"overall": cell, "per_product_type": {"L": cell, "M": cell}}}}
    verdict = {"gates": [_gate("min_pr_auc", "pr_auc", 0.8, 0.75, 0.84, 0.6, True)]}
    figure = fig.per_product_type_figure(evaluation, verdict, tmp_path)
    assert "gate limit 0.60" in figure.svg(tmp_path).read_text()


def test_sensor_figure_marks_the_failed_column(tmp_path: Path) -> None:
    profile = {
        "columns": {
            "torque_nm": {"partition": {"bins": [0, 20, 40, 60], "weights": [0.2, 0.6, 0.2]}},
            "air_temperature_k": {"median_band": [296.0, 304.0]},
            "product_type": {"partition": {"values": ["L", "M", "H"], "weights": [0.6, 0.3, 0.1]}},
        }
    }
    table = pd.DataFrame(
        {
            "torque_nm": RNG.normal(40, 10, 500),
            "air_temperature_k": RNG.normal(27, 1, 500),
            "product_type": RNG.choice(["L", "M", "H"], 500),
        }
    )
    results = [
        {
            "expectation": "expect_column_median_to_be_between",
            "column": "air_temperature_k",
            "success": False,
        },
        {"expectation": "expect_column_to_exist", "column": "torque_nm", "success": True},
    ]
    figure = fig.sensor_figures(table, profile, results, tmp_path)
    svg = figure.svg(tmp_path).read_text()
    assert "FAILED: column_median_to_be_between" in svg
    assert svg.count("FAILED") == 1


def _summary(tmp_path: Path, *, status: str = "passed", reason: str = "all good") -> dict[str, Any]:
    gates = [
        _gate("min_pr_auc", "pr_auc", 0.842, 0.759, 0.903, 0.6, True),
        _gate("min_roc_auc", "roc_auc", 0.8, 0.7, 0.85, 0.9, False),
    ]
    return {
        "status": status,
        "reason": reason,
        "run_dir": str(tmp_path),
        "source": "embedded:ai4i2020",
        "data_version": "sha256:abc123",
        "rows": 10000,
        "test_rows": 2000,
        "threshold": 0.75,
        "checks": {"validation": "passed", "gates": "failed", "equivalence": "not_run"},
        "failure": None,
        "validation": {"failures": []},
        "gates": {"policy_version": "p1", "gates": gates},
        "equivalence": {"formats": {}},
        "registry": None,
        "champion": None,
        "metrics": {
            "keras": {
                m: _est(v)
                for m, v in (("pr_auc", 0.842), ("roc_auc", 0.97), ("recall_at_precision", 0.7), ("f1", 0.8))
            }
        },
        "per_product_type": {},
        "artifacts": {"evaluation": str(tmp_path / "evaluate")},
    }


def _figure_dir(run: Path, key: str) -> Path:
    from shopfloor.contract import run_output

    y, s = _scores(200)
    out = run_output(run, key)
    fig.write_index(out, [fig.calibration_figure(y, {"keras": s}, out)])
    return out


def test_a_step_page_gains_its_figures_before_the_end_of_its_body(tmp_path: Path) -> None:
    """The validate step's KFP HTML: its own table, then the sensor pictures, one page."""
    figures = _figure_dir(tmp_path, "validation_figures")
    page = "<html><body><table><tr><td>expect_column_values_to_be_between</td></tr></table></body></html>"
    combined = html.with_figures(page, figures)
    assert combined.index("</table>") < combined.index("<h2>Figures</h2>") < combined.index("</body>")
    assert combined.count('src="data:image/png;base64,') == 1 and combined.endswith("</body></html>")
    assert html.with_figures(page, tmp_path / "none") == page  # no figures drawn: the page as it was


def test_run_report_is_self_contained_and_escapes_what_it_shows(tmp_path: Path) -> None:
    _figure_dir(tmp_path, "evaluation_figures")
    summary = _summary(tmp_path, status="failed", reason="min_roc_auc <script>alert(1)</script>")
    page = html.write_run_report(tmp_path, summary).read_text()
    assert "<script>" not in page and "&lt;script&gt;" in page
    assert "0.842 [0.792, 0.882]" in page  # PR-AUC with its interval
    assert "sha256:abc123" in page and 'class="fail">FAIL' in page
    images = page.count("<img ")
    assert images == 1 and page.count('src="data:image/png;base64,') == 1
    assert "http://" not in page and "https://" not in page and "<link" not in page
    payload = page.split('src="data:image/png;base64,', 1)[1].split('"', 1)[0]
    assert base64.b64decode(payload).startswith(b"\x89PNG")


def test_oversized_images_are_left_out(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _figure_dir(tmp_path, "validation_figures")
    monkeypatch.setattr(html, "MAX_IMAGE_BYTES", 100)
    page = html.run_report_html(_summary(tmp_path), tmp_path)
    assert "<img " not in page and "image larger than 100 bytes" in page


def test_markdown_carries_the_verdict() -> None:
    evaluation = {
        "data_version": "sha256:x",
        "test_rows": 5,
        "models": {"keras": {"overall": {"pr_auc": _est(0.8)}}},
    }
    verdict = {
        "passed": False,
        "reason": "min_roc_auc failed",
        "gates": [_gate("min_roc_auc", "roc_auc", 0.8, 0.7, 0.85, 0.9, False)],
    }
    text = html.evaluation_markdown(evaluation, verdict)
    assert (
        text.startswith("# Evaluation: failed")
        and "| min_roc_auc | fail | 0.800 [0.700, 0.850] | 0.9 |" in text
    )
    result = {
        "success": False,
        "failures": [{"expectation": "expect_x", "column": "a|b", "message": "1|2"}],
    }
    assert "| expect_x | a/b | 1/2 |" in html.validation_markdown(result)


# -- the report command ----------------------------------------------------------------------------
def _fake_run(root: Path, name: str) -> Path:
    run = root / f"shopfloor-training-{name}"
    (run / "ingest").mkdir(parents=True)
    return run


def test_latest_run_and_named_runs(tmp_path: Path) -> None:
    from shopfloor.commands.report import latest_run, resolve_run

    with pytest.raises(NotFoundError, match="no runs"):
        latest_run(tmp_path)
    older, newer = _fake_run(tmp_path, "2026-01-01"), _fake_run(tmp_path, "2026-02-01")
    assert latest_run(tmp_path) == newer
    assert resolve_run(older.name, tmp_path) == older and resolve_run(str(older), tmp_path) == older
    with pytest.raises(NotFoundError, match="not found"):
        resolve_run("nope", tmp_path)


def test_report_command_builds_and_prints_the_path(tmp_path: Path) -> None:
    run = _fake_run(tmp_path / "runs", "2026-03-01")
    result = run_cli("report", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == str((run / "report.html").resolve())
    assert "<!DOCTYPE html>" in (run / "report.html").read_text()
    missing = run_cli("report", "does-not-exist", cwd=tmp_path)
    assert missing.returncode == 3 and missing.stderr.startswith("error: run 'does-not-exist' not found")
    assert "Traceback" not in missing.stderr


def test_progress_is_read_from_the_kfp_log_as_it_is_written() -> None:
    from shopfloor.commands.report import progress_line
    from shopfloor.pipelines.run import FAILED_STEP, RUNNING, SUCCEEDED, StepEvent, _LogTap

    events: list[StepEvent] = []
    tap = _LogTap(events.append)
    tap.write("12:00:00.000 - INFO - Executing task \x1b[96m'ingest'\x1b[0m\nsome task output\n")
    assert [(e.step, e.state) for e in events] == [("ingest", RUNNING)]
    tap.write("12:00:01.000 - INFO - Task \x1b[96m'ingest'\x1b[0m finished with status ")
    assert len(events) == 1  # not a whole line yet
    tap.write(
        "\x1b[92mSUCCESS\x1b[0m\nExecuting task 'validate'\nTask 'validate' finished with status FAILURE\n"
    )
    assert [(e.step, e.state) for e in events] == [
        ("ingest", RUNNING),
        ("ingest", SUCCEEDED),
        ("validate", RUNNING),
        ("validate", FAILED_STEP),
    ]
    assert "some task output" in tap.getvalue()  # the log is kept whole
    assert progress_line(events[1]).split() == ["ingest", "done", f"{events[1].elapsed_s:.1f}", "s"]
    assert progress_line(events[3]).split()[:2] == ["validate", "FAILED"]


# -- the notebook API ------------------------------------------------------------------------------
def test_import_shopfloor_stays_cheap() -> None:
    code = (
        "import sys, shopfloor; heavy = [m for m in ('pandas', 'numpy', 'kfp', 'matplotlib', "
        "'tensorflow', 'shopfloor.notebook') if m in sys.modules]; print(heavy); "
        "print(callable(shopfloor.run_pipeline), 'pandas' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split("\n")[:2] == ["[]", "True False"]


def test_run_object_exposes_metrics_with_intervals(tmp_path: Path) -> None:
    from shopfloor.notebook import Run

    (tmp_path / "evaluate" / "evaluation").mkdir(parents=True)
    (tmp_path / "evaluate" / "evaluation" / "evaluation.json").write_text(
        json.dumps({"models": {"champion": {"overall": {"pr_auc": _est(0.83)}}}})
    )
    run = Run(run_dir=tmp_path, summary=_summary(tmp_path))
    frame = run.metrics
    assert frame.loc[("keras", "pr_auc"), "ci_low"] == pytest.approx(0.792)
    assert frame.loc[("champion", "pr_auc"), "value"] == pytest.approx(0.83)
    assert list(run.gates["verdict"]) == ["pass", "fail"]
    assert run.checks["equivalence"] == "not_run" and run.registered is None
    shown = run._repr_html_()
    assert "PR-AUC [95% CI]" in shown and "0.842 [0.792, 0.882]" in shown


def test_run_pipeline_refuses_bad_parameters_before_running(tmp_path: Path) -> None:
    from shopfloor.errors import InvalidInputError
    from shopfloor.notebook import run_pipeline

    with pytest.raises(InvalidInputError, match="seed"):
        run_pipeline(params={"seed": "many"}, output=tmp_path / "runs", progress=False)
    with pytest.raises(InvalidInputError, match="mapping"):
        run_pipeline(params=["seed"], output=tmp_path / "runs", progress=False)  # type: ignore[arg-type]
    assert not (tmp_path / "runs").exists()


def test_evaluation_page_for_the_kfp_ui_embeds_its_figures(tmp_path: Path) -> None:
    out = _figure_dir(tmp_path, "evaluation_figures")
    evaluation = {
        "data_version": "sha256:x<y",
        "test_rows": 5,
        "models": {"keras": {"overall": {"pr_auc": _est(0.8)}}},
    }
    verdict = {
        "passed": True,
        "reason": "ok",
        "gates": [_gate("min_pr_auc", "pr_auc", 0.8, 0.75, 0.84, 0.6, True)],
    }
    page = html.evaluation_html(evaluation, verdict, out)
    assert page.startswith("<!DOCTYPE html>") and "sha256:x&lt;y" in page
    assert "0.800 [0.750, 0.840]" in page and page.count('src="data:image/png;base64,') == 1
