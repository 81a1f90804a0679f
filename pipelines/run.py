"""Run the training pipeline: locally with kfp.local, or on a Kubeflow endpoint.

A failed task is known to kfp.local only by its exit status; its reason comes from the
:class:`~shopfloor.steps.StepFailure` the component recorded in its task directory
(:func:`shopfloor.steps.recorded_failure`), never from its log.
"""

from __future__ import annotations

import contextlib
import io
import re
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from shopfloor.contract import RUN_STEPS
from shopfloor.errors import GateFailedError, ShopfloorError
from shopfloor.steps import StepFailure, read_failure
from shopfloor.summary import FAILED, build_summary

PIPELINE_NAME = "shopfloor-training"


@dataclass
class LocalRun:
    """A finished local run: its directory, summary and captured log, and, when a task
    failed, what that task recorded (its step, error category and reason)."""

    run_dir: Path
    summary: dict[str, Any]
    log: str
    failure: StepFailure | None = None

    def error(self) -> ShopfloorError:
        """The error a failed run stands for, with the summary's one-line reason: the failed
        task's recorded category, else a gate that said no (the run completed)."""
        reason = str(self.summary.get("reason") or "run failed")
        if self.failure is not None:
            return type(self.failure.to_error())(reason)
        if FAILED in (self.summary.get("checks") or {}).values():
            return GateFailedError(reason)
        return ShopfloorError(reason)


def _newest_run(root: Path, before: set[Path]) -> Path | None:
    new = [p for p in root.glob(f"{PIPELINE_NAME}-*") if p.is_dir() and p not in before]
    return max(new, key=lambda p: p.stat().st_mtime) if new else None


#: States of a step as a local run reports them: started, finished, stopped with an error.
RUNNING, SUCCEEDED, FAILED_STEP = "running", "succeeded", "failed"
#: kfp.local's own log lines for a task starting and ending (its colour codes removed).
_STARTED = re.compile(r"Executing task '([^']+)'")
_ENDED = re.compile(r"Task '([^']+)' finished with status (\w+)")
_ANSI = re.compile(r"\x1b\[[0-9;]*m")
#: Longest log line examined for progress; longer lines are task output, not kfp.local's.
_MAX_LINE = 4096


@dataclass(frozen=True)
class StepEvent:
    """One change of a step's state: ``elapsed_s`` is the step's own time once it ended, and
    the run's time so far when it starts."""

    step: str
    state: str
    elapsed_s: float


class _LogTap(io.StringIO):
    """The run's captured log, read as it is written: kfp.local logs each task's start and end,
    so progress is known the moment it happens (``echo`` also streams the log)."""

    def __init__(self, on_event: Callable[[StepEvent], None] | None, echo: Any = None) -> None:
        super().__init__()
        self.on_event, self.echo = on_event, echo
        self.started_at = time.perf_counter()
        self.started: dict[str, float] = {}
        self.pending = ""

    def write(self, text: str) -> int:
        written = super().write(text)
        if self.echo is not None:
            self.echo.write(text)
        self.pending += text
        *lines, self.pending = self.pending.split("\n")
        self.pending = self.pending[-_MAX_LINE:]
        for line in lines:
            self._line(_ANSI.sub("", line[:_MAX_LINE]))
        return written

    def _line(self, line: str) -> None:
        now = time.perf_counter()
        if found := _STARTED.search(line):
            step = found.group(1)
            self.started[step] = now
            self._emit(StepEvent(step, RUNNING, round(now - self.started_at, 1)))
        elif found := _ENDED.search(line):
            step, status = found.groups()
            state = SUCCEEDED if status == "SUCCESS" else FAILED_STEP
            self._emit(StepEvent(step, state, round(now - self.started.get(step, self.started_at), 1)))

    def _emit(self, event: StepEvent) -> None:
        if self.on_event is not None:
            self.on_event(event)


def run_local(
    arguments: dict[str, Any],
    pipeline_root: Path,
    *,
    on_step: Callable[[str], None] | None = None,
    on_event: Callable[[StepEvent], None] | None = None,
    stream_logs: bool = False,
    report: bool = True,
) -> LocalRun:
    """Run ``training_pipeline`` with kfp.local's SubprocessRunner in this environment.

    Task logs are captured (``stream_logs`` also prints them). Progress is read from kfp.local's
    log as it is written: ``on_step`` is told each step as it starts, ``on_event`` each start
    and end with its state and time, so a CLI or notebook can show it. ``report`` writes the run's HTML
    report (``<run>/report.html``) beside the summary.
    """
    import warnings

    from kfp import local

    from shopfloor.pipelines.training import training_pipeline

    root = Path(pipeline_root).resolve()
    root.mkdir(parents=True, exist_ok=True)
    before = set(root.glob(f"{PIPELINE_NAME}-*"))
    # kfp.local warns that our (non-"python"-named) image is not used: it is intended here.
    warnings.filterwarnings("ignore", message="You may be attemping to run a task", category=RuntimeWarning)
    warnings.filterwarnings("ignore", message="Task .* have no effect in the current local runner")
    local.init(runner=local.SubprocessRunner(use_venv=False), pipeline_root=str(root), raise_on_error=True)

    def relay(event: StepEvent) -> None:
        if on_step is not None and event.state == RUNNING:
            on_step(event.step)
        if on_event is not None:
            on_event(event)

    error: str | None = None
    started = time.perf_counter()
    log = _LogTap(relay, echo=sys.stdout if stream_logs else None)
    try:
        with contextlib.redirect_stdout(log):
            training_pipeline(**arguments)
    except RuntimeError as exc:  # kfp.local: "Task <name> finished with status FAILURE"
        error = str(exc)
    run = _newest_run(root, before)
    run_dir = run or root
    failure = read_failure(run, RUN_STEPS) if run is not None and error is not None else None
    if failure is not None:
        error = failure.reason
    (run_dir / "pipeline.log").write_text(log.getvalue())
    summary = build_summary(run_dir, source=str(arguments.get("source")), error=error, failure=failure)
    summary["wall_time_s"] = round(time.perf_counter() - started, 2)
    if report and run is not None:
        from shopfloor.report.html import write_run_report

        summary["report"] = str(write_run_report(run_dir, summary))
    return LocalRun(run_dir=run_dir, summary=summary, log=log.getvalue(), failure=failure)


def submit(
    host: str,
    arguments: dict[str, Any],
    *,
    experiment: str,
    run_name: str | None,
    client_factory: Callable[..., Any] | None = None,
) -> dict[str, str]:
    """Submit the same pipeline to a KFP endpoint; returns the run id and its URL."""
    import kfp

    from shopfloor.pipelines.training import training_pipeline

    client = (client_factory or kfp.Client)(host=host)
    result = client.create_run_from_pipeline_func(
        training_pipeline,
        arguments=arguments,
        experiment_name=experiment,
        run_name=run_name,
    )
    return {"run_id": result.run_id, "url": f"{host.rstrip('/')}/#/runs/details/{result.run_id}"}


def compile_pipeline(path: Path) -> Path:
    """Write the KFP IR YAML; output is deterministic for the same code and image."""
    from kfp import compiler

    from shopfloor.pipelines.training import training_pipeline

    Path(path).parent.mkdir(parents=True, exist_ok=True)
    compiler.Compiler().compile(training_pipeline, str(path))
    return Path(path)
