"""``shopfloor report [RUN]``: the path of a local run's HTML report (the latest run by default),
and the live progress lines ``shopfloor run`` prints while the pipeline's steps run.

Mounted by ``shopfloor.cli``. A run written before reports existed gets its report built from
its artifacts on first ask.
"""

from __future__ import annotations

import contextlib
import json
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from shopfloor.errors import NotFoundError

if TYPE_CHECKING:
    from shopfloor.pipelines.run import StepEvent

#: Directory name prefix of a local run (kfp.local: <pipeline name>-<timestamp>).
RUN_PREFIX = "shopfloor-training-"


def latest_run(root: Path) -> Path:
    """The most recent run directory under a pipeline root."""
    runs = [p for p in Path(root).glob(f"{RUN_PREFIX}*") if p.is_dir()]
    if not runs:
        raise NotFoundError(f"no runs under {root}: run `shopfloor run` first or pass --output")
    return max(runs, key=lambda p: (p.name, p.stat().st_mtime))


def resolve_run(run: str | None, root: Path) -> Path:
    """A run given as a directory, a run name under ``root``, or the latest run."""
    if run is None:
        return latest_run(root)
    for candidate in (Path(run), Path(root) / run):
        if candidate.is_dir():
            return candidate
    raise NotFoundError(f"run {run!r} not found (neither a directory nor a run under {root})")


def report_path(run_dir: Path, *, rebuild: bool = False) -> Path:
    """The run's ``report.html``, built from its artifacts when missing (or when asked)."""
    from shopfloor.contract import MANIFEST, run_output
    from shopfloor.report.html import REPORT_FILE, write_run_report
    from shopfloor.summary import build_summary

    path = Path(run_dir) / REPORT_FILE
    if path.is_file() and not rebuild:
        return path
    try:
        source = json.loads((run_output(run_dir, "dataset") / MANIFEST).read_text()).get("source", "unknown")
    except (OSError, ValueError, AttributeError):
        source = "unknown"
    return write_run_report(run_dir, build_summary(Path(run_dir), source=str(source)))


def report(
    run: Annotated[str | None, typer.Argument(help="Run directory or name (default: the latest).")] = None,
    output: Annotated[Path, typer.Option(help="Local pipeline root holding the runs.")] = Path("runs"),
    rebuild: Annotated[bool, typer.Option(help="Rebuild the report from the run's artifacts.")] = False,
) -> None:
    """Print the path of a run's self-contained HTML report (figures embedded, no network)."""
    typer.echo(str(report_path(resolve_run(run, output), rebuild=rebuild).resolve()))


#: How each state of a step is shown.
_STATE_TEXT = {"running": "running", "succeeded": "done", "failed": "FAILED"}


def progress_line(event: StepEvent) -> str:
    """``  train        done     12.3 s``: one line per change of a step's state."""
    when = f"at {event.elapsed_s:.1f} s" if event.state == "running" else f"{event.elapsed_s:.1f} s"
    return f"  {event.step:<14} {_STATE_TEXT.get(event.state, event.state):<8} {when}"


@contextlib.contextmanager
def progress_printer(console: Any) -> Iterator[Callable[[StepEvent], None]]:
    """Yield a callback printing each step's state change as it happens: plain lines when not on
    a terminal (logs, CI), plus a spinner naming the running step on a terminal."""
    interactive = bool(getattr(console, "is_terminal", False)) and sys.stderr.isatty()
    status = console.status("starting pipeline") if interactive else contextlib.nullcontext()
    with status as spinner:
        if not interactive:
            console.print("starting pipeline", highlight=False)

        def on_event(event: StepEvent) -> None:
            console.print(progress_line(event), highlight=False, markup=False)
            if spinner is not None and event.state == "running":
                spinner.update(f"running step [bold]{event.step}[/]")

        yield on_event
