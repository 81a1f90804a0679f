"""Run the training pipeline: locally with kfp.local, or on a Kubeflow endpoint."""

from __future__ import annotations

import contextlib
import io
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from shopfloor.summary import STEPS, build_summary

PIPELINE_NAME = "shopfloor-training"


@dataclass
class LocalRun:
    run_dir: Path
    summary: dict[str, Any]
    log: str


def _newest_run(root: Path, before: set[Path]) -> Path | None:
    new = [p for p in root.glob(f"{PIPELINE_NAME}-*") if p.is_dir() and p not in before]
    return max(new, key=lambda p: p.stat().st_mtime) if new else None


def run_local(
    arguments: dict[str, Any],
    pipeline_root: Path,
    *,
    on_step: Callable[[str], None] | None = None,
    stream_logs: bool = False,
) -> LocalRun:
    """Run ``training_pipeline`` with kfp.local's SubprocessRunner in this environment.

    Task logs are captured (``stream_logs`` prints them); ``on_step`` is told each step as it
    starts, by watching the run directory, so a CLI can show progress.
    """
    import warnings

    from kfp import local

    from shopfloor.pipelines.training import training_pipeline

    root = Path(pipeline_root).resolve()
    root.mkdir(parents=True, exist_ok=True)
    before = set(root.glob(f"{PIPELINE_NAME}-*"))
    # kfp.local warns that our (non-"python"-named) image is not used: it is intended here.
    warnings.filterwarnings("ignore", message="You may be attemping to run a task", category=RuntimeWarning)
    local.init(runner=local.SubprocessRunner(use_venv=False), pipeline_root=str(root), raise_on_error=True)

    done = threading.Event()

    def watch() -> None:
        seen: set[str] = set()
        while not done.wait(0.25):
            run = _newest_run(root, before)
            if run is None:
                continue
            for step in STEPS:
                if step not in seen and (run / step).exists():
                    seen.add(step)
                    if on_step:
                        on_step(step)

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    buffer = io.StringIO()
    error: str | None = None
    started = time.perf_counter()
    try:
        sink = contextlib.nullcontext() if stream_logs else contextlib.redirect_stdout(buffer)
        with sink:
            training_pipeline(**arguments)
    except RuntimeError as exc:
        error = _task_error(buffer.getvalue()) or str(exc)
    finally:
        done.set()
        watcher.join()
    run_dir = _newest_run(root, before) or root
    (run_dir / "pipeline.log").write_text(buffer.getvalue())
    summary = build_summary(run_dir, source=str(arguments.get("source")), error=error)
    summary["wall_time_s"] = round(time.perf_counter() - started, 2)
    return LocalRun(run_dir=run_dir, summary=summary, log=buffer.getvalue())


def _task_error(log: str) -> str | None:
    """The last exception line a failed task printed (its one-line reason)."""
    lines = [ln.strip() for ln in log.splitlines() if ln.strip()]
    for line in reversed(lines):
        head = line.split(":", 1)[0]
        if head.endswith(("Error", "Exception")) and ":" in line:
            return line.split(":", 1)[1].strip()
    return None


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
