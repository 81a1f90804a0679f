"""The notebook API: run the pipeline, hold the run as an object, look at it inline.

    import shopfloor
    run = shopfloor.run_pipeline()           # the embedded AI4I 2020 data, kfp.local
    run                                       # summary table and key plots (Jupyter)
    run.metrics                               # pandas DataFrame with 95 % intervals
    run.registered, run.report_path, run.artifacts

The same run as the command line (``shopfloor run``): the steps stay separate KFP components
run by kfp.local, so what passes here passes on a cluster. ``submit`` sends the same pipeline
to a KFP endpoint.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from shopfloor.errors import InvalidInputError

if TYPE_CHECKING:
    import pandas as pd

    from shopfloor.pipelines.run import StepEvent

#: Metrics the evaluation reports for every model, in display order.
METRIC_NAMES = ("pr_auc", "roc_auc", "recall_at_precision", "f1")
#: Figures shown inline by a run's rich display, when the run drew them.
INLINE_FIGURES = ("pr_curve", "per_product_type", "sensor_distributions")


def _printer(stream: Any) -> Callable[[StepEvent], None]:
    """Progress lines to ``stream``: the notebook's stdout, taken before the run captures the
    steps' logs (the watcher thread's prints would go into that capture)."""
    from shopfloor.commands.report import progress_line

    def show(event: StepEvent) -> None:
        print(progress_line(event), file=stream, flush=True)

    return show


@dataclass
class Run:
    """A finished local run: its summary (the same JSON as ``shopfloor run --summary``), with
    metrics as a DataFrame, the artifact paths, the registered version and the HTML report."""

    run_dir: Path
    summary: dict[str, Any]
    log: str = field(default="", repr=False)

    @property
    def status(self) -> str:
        return str(self.summary.get("status", "failed"))

    @property
    def passed(self) -> bool:
        return self.status == "passed"

    @property
    def reason(self) -> str:
        return str(self.summary.get("reason", ""))

    @property
    def data_version(self) -> str | None:
        return self.summary.get("data_version")

    @property
    def metrics(self) -> pd.DataFrame:
        """One row per (model, metric) on the test split: value and 95 % interval bounds."""
        import pandas as pd

        tables = dict(self.summary.get("metrics") or {})
        champion = self._evaluation_models().get("champion")
        if champion:
            tables["champion"] = champion.get("overall", {})
        rows = [
            {
                "model": model,
                "metric": name,
                "value": est.get("value"),
                "ci_low": est.get("ci_low"),
                "ci_high": est.get("ci_high"),
                "method": est.get("method"),
            }
            for model, table in tables.items()
            for name, est in table.items()
            if name in METRIC_NAMES and isinstance(est, Mapping)
        ]
        columns = ["model", "metric", "value", "ci_low", "ci_high", "method"]
        return pd.DataFrame(rows, columns=columns).set_index(["model", "metric"])

    def _evaluation_models(self) -> dict[str, Any]:
        """The evaluation report's per-model tables (candidate, baseline, champion), if written."""
        from shopfloor.contract import EVALUATION_REPORT, run_output

        try:
            report = json.loads((run_output(self.run_dir, "evaluation") / EVALUATION_REPORT).read_text())
        except (OSError, ValueError):
            return {}
        models = report.get("models") if isinstance(report, dict) else None
        return dict(models) if isinstance(models, dict) else {}

    @property
    def per_product_type(self) -> pd.DataFrame:
        """Metrics per product type (L/M/H) with intervals, one row per (model, type, metric)."""
        import pandas as pd

        rows = [
            {
                "model": model,
                "product_type": group,
                "metric": name,
                "value": est.get("value"),
                "ci_low": est.get("ci_low"),
                "ci_high": est.get("ci_high"),
            }
            for model, groups in (self.summary.get("per_product_type") or {}).items()
            for group, cells in groups.items()
            for name, est in cells.items()
            if name in METRIC_NAMES and isinstance(est, Mapping)
        ]
        frame = pd.DataFrame(rows, columns=["model", "product_type", "metric", "value", "ci_low", "ci_high"])
        return frame.set_index(["model", "product_type", "metric"])

    @property
    def gates(self) -> pd.DataFrame:
        """Every release gate: verdict, value with interval, limit and why."""
        import pandas as pd

        gates = (self.summary.get("gates") or {}).get("gates") or []
        columns = ["name", "verdict", "value", "ci_low", "ci_high", "limit", "reason"]
        return pd.DataFrame([{k: g.get(k) for k in columns} for g in gates], columns=columns)

    @property
    def checks(self) -> dict[str, str]:
        """passed / failed / not_run of validation, gates and equivalence."""
        return dict(self.summary.get("checks") or {})

    @property
    def artifacts(self) -> dict[str, Path]:
        """Paths of what the run produced (SavedModel, LiteRT files, reports), when it did."""
        return {k: Path(v) for k, v in (self.summary.get("artifacts") or {}).items() if v}

    @property
    def registered(self) -> str | None:
        """The registry version this run registered (as the candidate), or None."""
        registry = self.summary.get("registry") or {}
        return registry.get("version")

    @property
    def shipped(self) -> dict[str, Any] | None:
        """What reaches the edge: ``family``, ``format`` (int8 or float32), ``path`` of the LiteRT
        file and its test ``pr_auc`` with interval; None when nothing passed."""
        shipped = self.summary.get("shipped")
        return dict(shipped) if isinstance(shipped, Mapping) else None

    @property
    def champion(self) -> str | None:
        """The champion version the candidate was compared with, or None (no champion yet)."""
        return (self.summary.get("champion") or {}).get("version")

    @property
    def report_path(self) -> Path:
        """The run's self-contained HTML report (built from the artifacts if missing)."""
        from shopfloor.commands.report import report_path

        return report_path(self.run_dir)

    def figures(self) -> dict[str, Path]:
        """PNG of every figure the steps drew, by name."""
        from shopfloor.contract import run_output
        from shopfloor.report.figures import read_index
        from shopfloor.report.html import FIGURE_OUTPUTS

        out: dict[str, Path] = {}
        for key in FIGURE_OUTPUTS:
            directory = run_output(self.run_dir, key)
            out.update({f.name: f.png(directory) for f in read_index(directory)})
        return out

    def __repr__(self) -> str:
        return f"Run({self.run_dir.name}: {self.status}: {self.reason})"

    def _repr_html_(self) -> str:
        from shopfloor.report.html import run_fragment_html

        return run_fragment_html(self.summary, self.run_dir, INLINE_FIGURES)


def _arguments(data: str | None, params: Mapping[str, Any] | None, registry: str | None) -> dict[str, Any]:
    from shopfloor.pipelines.params import check_arguments

    if params is not None and not isinstance(params, Mapping):
        kind = type(params).__name__
        raise InvalidInputError(f"params must be a mapping of pipeline parameters, got {kind}")
    arguments = dict(params or {})
    if data is not None:
        arguments["source"] = data
    if registry is not None:
        arguments["registry"] = registry
    arguments.setdefault("source", "embedded:ai4i2020")
    return check_arguments(arguments)


def run_pipeline(
    data: str | None = None,
    *,
    params: Mapping[str, Any] | None = None,
    registry: str | os.PathLike[str] | None = None,
    output: str | os.PathLike[str] = "runs",
    progress: bool | Callable[[StepEvent], None] = True,
) -> Run:
    """Run the training pipeline locally (kfp.local) and return the run.

    ``data`` is a CSV/Parquet path or s3:// URI (default: the embedded AI4I 2020 data);
    ``params`` the pipeline parameters (as in ``--params``); ``registry`` where a passing run
    registers its version. ``progress`` prints each step's state (or is a callback). A run that
    fails validation or a gate is returned, not raised: look at ``run.reason`` and the report.
    """
    from shopfloor.data.loader import check_source
    from shopfloor.pipelines.run import run_local

    arguments = _arguments(data, params, None if registry is None else str(registry))
    check_source(arguments["source"])
    on_event = progress if callable(progress) else (_printer(sys.stdout) if progress else None)
    result = run_local(arguments, Path(output), on_event=on_event)
    return Run(run_dir=result.run_dir, summary=result.summary, log=result.log)


def load_run(run: str | os.PathLike[str] | None = None, *, output: str | os.PathLike[str] = "runs") -> Run:
    """A past local run (a directory or run name; the latest under ``output`` by default)."""
    from shopfloor.commands.report import resolve_run
    from shopfloor.contract import MANIFEST, run_output
    from shopfloor.summary import build_summary

    run_dir = resolve_run(None if run is None else str(run), Path(output))
    try:
        source = json.loads((run_output(run_dir, "dataset") / MANIFEST).read_text()).get("source", "unknown")
    except (OSError, ValueError, AttributeError):
        source = "unknown"
    return Run(run_dir=run_dir, summary=build_summary(run_dir, source=str(source)))


def submit(
    host: str,
    data: str | None = None,
    *,
    params: Mapping[str, Any] | None = None,
    registry: str | None = None,
    experiment: str = "shopfloor",
    run_name: str | None = None,
) -> dict[str, str]:
    """Submit the same pipeline to a KFP endpoint; returns the run id and its URL."""
    from shopfloor.pipelines.run import submit as submit_run

    return submit_run(host, _arguments(data, params, registry), experiment=experiment, run_name=run_name)
