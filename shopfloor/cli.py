"""The ``shopfloor`` command: wiring only; every decision lives in the library.

Errors: library code raises :mod:`shopfloor.errors` categories; :class:`ShopfloorGroup` turns
each into one line on stderr and the category's documented exit code (README, "Exit codes"),
for every command and sub-command alike. Anything else is a bug and keeps its traceback
(without local variables: they may hold credentials). Heavy libraries are imported inside the
commands that need them, so ``shopfloor --help`` and light commands start fast.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Annotated, Any

import typer
from typer.core import TyperGroup

from shopfloor.errors import InvalidInputError, ShopfloorError, bounded


class ShopfloorGroup(TyperGroup):
    """The root command group: the one place errors become exit codes."""

    def invoke(self, ctx: Any) -> Any:
        try:
            return super().invoke(ctx)
        except ShopfloorError as exc:
            typer.echo(f"error: {bounded(str(exc))}", err=True)
            raise typer.Exit(exc.exit_code) from None


from shopfloor.commands import deploy as deploy_commands  # noqa: E402
from shopfloor.commands import edge as edge_commands  # noqa: E402
from shopfloor.commands import keys as keys_commands  # noqa: E402
from shopfloor.commands import models as models_commands  # noqa: E402
from shopfloor.commands import report as report_commands  # noqa: E402
from shopfloor.commands import serve as serve_commands  # noqa: E402

app = typer.Typer(
    cls=ShopfloorGroup,
    help="shopfloor: MLOps for the factory floor.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_show_locals=False,
)
app.add_typer(
    models_commands.app, name="models", help="Versioned model registry: list, show, promote, rollback."
)
app.add_typer(deploy_commands.app, name="deploy", help="Deploy registry versions to the cloud cluster.")
app.add_typer(edge_commands.app, name="edge", help="Factory edge: LiteRT runtime, sites, push, rollout.")
app.add_typer(keys_commands.app, name="keys", help="Signing keys for model versions.")
app.command("serve")(serve_commands.serve)
app.command("report")(report_commands.report)


def _console(stderr: bool = False) -> Any:
    from rich.console import Console

    return Console(stderr=stderr)


#: Largest --params file read (a parameter file, not a data file).
MAX_PARAMS_BYTES = 1 << 20


def _arguments(data: str | None, params: Path | None, registry: str | None = None) -> dict[str, Any]:
    """Pipeline arguments from --params, --data and --registry, checked before anything runs
    (names, types, ranges, the policy file: :func:`shopfloor.pipelines.params.check_arguments`)."""
    import yaml

    from shopfloor.pipelines.params import check_arguments

    loaded: Any = {}
    if params is not None:
        if not params.is_file():
            raise InvalidInputError(f"--params {params} is not a file")
        if params.stat().st_size > MAX_PARAMS_BYTES:
            raise InvalidInputError(f"--params {params} is larger than {MAX_PARAMS_BYTES} bytes")
        try:
            loaded = yaml.safe_load(params.read_text(encoding="utf-8")) or {}
        except (OSError, UnicodeDecodeError) as exc:
            raise InvalidInputError(f"cannot read --params {params}: {exc}") from None
        except yaml.YAMLError as exc:
            problem = bounded(str(exc), 200)
            raise InvalidInputError(f"--params {params} is not valid YAML: {problem}") from None
        if not isinstance(loaded, dict):
            raise InvalidInputError(f"--params {params} must hold a mapping of pipeline parameters")
    arguments = dict(loaded)
    if data is not None:
        arguments["source"] = data
    if registry is not None:
        arguments["registry"] = registry
    arguments.setdefault("source", "embedded:ai4i2020")
    return check_arguments(arguments, base=params.parent if params is not None else None)


#: How each check of a run is shown: passed, failed, or did not run (a run that stopped earlier).
_CHECK_TEXT = {"passed": "pass", "failed": "FAIL", "not_run": "not run"}


def _print_summary(summary: dict[str, Any]) -> None:
    from rich.table import Table

    from shopfloor.summary import check_status, metric_rows

    out = _console()
    table = Table(title=f"shopfloor run: data {str(summary.get('data_version'))[:19]}", show_lines=False)
    for col in ("model", "PR-AUC [95% CI]", "ROC-AUC", "recall@precision", "F1@threshold"):
        table.add_column(col)
    for row in metric_rows(summary):
        table.add_row(*row)
    out.print(table)
    checks = Table(show_header=True)
    checks.add_column("check")
    checks.add_column("result")
    for check in ("validation", "gates", "equivalence"):
        checks.add_row(check, _CHECK_TEXT[check_status(summary, check)])
    if summary.get("registry"):
        reg = summary["registry"]
        checks.add_row("registered", f"{reg['model']} {reg['version']} ({reg['alias']}, {reg['env']})")
    if summary.get("champion"):
        checks.add_row("compared with champion", str(summary["champion"]["version"]))
    shipped = summary.get("shipped")
    if shipped:
        pr = shipped["pr_auc"]
        checks.add_row("shipped to the edge",
                       f"{shipped['family']} LiteRT {shipped['format']}, test PR-AUC {pr['value']:.3f} "
                       f"[{pr['ci_low']:.3f}, {pr['ci_high']:.3f}], {shipped['size_bytes']:,} B")
    if (summary.get("selection") or {}).get("reason"):
        checks.add_row("why this family", str(summary["selection"]["reason"]))
    if summary.get("size") and summary["size"].get("edge_size_ratio") is not None:
        checks.add_row("edge file / SavedModel size", f"{summary['size']['edge_size_ratio']:.3f}")
    for fmt, rep in summary["equivalence"]["formats"].items():
        checks.add_row(f"{fmt} single-row latency", f"{rep['latency']['median_us']:.1f} µs (median)")
    if "wall_time_s" in summary:
        checks.add_row("wall time", f"{summary['wall_time_s']:.1f} s")
    out.print(checks)
    for name, path in summary["artifacts"].items():
        if path:
            out.print(f"  {name}: {path}", highlight=False)


def _write_summary(path: Path | None, payload: dict[str, Any]) -> None:
    if path is None:
        return
    from shopfloor.lineage import write_json_atomic

    try:
        write_json_atomic(path, payload)
    except OSError as exc:
        raise InvalidInputError(f"cannot write --summary {path}: {exc.strerror or exc}") from None


@app.command()
def run(
    data: Annotated[
        str | None, typer.Option(help="CSV/Parquet path or s3:// URI (default: embedded AI4I 2020).")
    ] = None,
    params: Annotated[Path | None, typer.Option(help="YAML of pipeline parameters.")] = None,
    host: Annotated[
        str | None, typer.Option(help="KFP endpoint: submit there instead of running locally.")
    ] = None,
    experiment: Annotated[str, typer.Option(help="KFP experiment name (with --host).")] = "shopfloor",
    run_name: Annotated[str | None, typer.Option(help="KFP run name (with --host).")] = None,
    summary: Annotated[
        Path | None, typer.Option(help="Write the machine-readable JSON summary here.")
    ] = None,
    registry: Annotated[
        str | None,
        typer.Option(
            help="Model registry: s3://bucket/prefix or a path (default: SHOPFLOOR_REGISTRY or "
            "~/.shopfloor/registry)."
        ),
    ] = None,
    output: Annotated[Path, typer.Option(help="Local pipeline root for artifacts.")] = Path("runs"),
    verbose: Annotated[bool, typer.Option(help="Stream every task's log.")] = False,
) -> None:
    """Run the training pipeline (validate, train, evaluate, convert) and print its summary.

    Exit status 0 only when validation, gates and equivalence all pass; 6 when a gate said no.
    """
    arguments = _arguments(data, params, registry)
    if host:
        from shopfloor.pipelines.run import submit

        submitted = submit(host, arguments, experiment=experiment, run_name=run_name)
        _console().print(f"submitted run {submitted['run_id']}: {submitted['url']}", highlight=False)
        _write_summary(summary, {"submitted": submitted, "arguments": _public(arguments)})
        return

    from shopfloor.data.loader import check_source

    try:  # fail fast on a missing or unreadable source, before any step starts
        check_source(arguments["source"])
    except ShopfloorError as exc:
        _write_summary(summary, {"status": "failed", "reason": str(exc), "category": exc.category,
                                 "source": arguments["source"]})
        raise

    from shopfloor.commands.report import progress_printer
    from shopfloor.pipelines.run import run_local

    with progress_printer(_console(stderr=True)) as on_event:
        result = run_local(arguments, output, stream_logs=verbose, on_event=on_event)
    _write_summary(summary, result.summary)
    _print_summary(result.summary)
    if result.summary.get("report"):
        _console().print(f"report: {result.summary['report']}", highlight=False)
    if result.summary["status"] != "passed":
        raise result.error()
    _console().print(f"[bold green]passed[/]: {result.summary['reason']}")


def _public(arguments: dict[str, Any]) -> dict[str, Any]:
    return {k: ("<policy text>" if k == "policy_yaml" else v) for k, v in arguments.items()}


@app.command("compile")
def compile_(
    output: Annotated[Path, typer.Option("--output", "-o", help="Where to write the KFP IR YAML.")] = Path(
        "shopfloor-training.yaml"
    ),
) -> None:
    """Compile the training pipeline to KFP IR YAML (deterministic)."""
    from shopfloor.pipelines.run import compile_pipeline

    _console().print(f"wrote {compile_pipeline(output)}", highlight=False)


@app.command()
def simulate(
    rows: Annotated[int, typer.Option(help="Number of rows (processes) in total.")] = 10_000,
    machines: Annotated[int, typer.Option(help="Number of machines sharing the rows.")] = 1,
    seed: Annotated[int, typer.Option(help="Random seed (same seed, same data).")] = 0,
    scenario: Annotated[str, typer.Option(help="Drift scenario; see --list-scenarios.")] = "baseline",
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="CSV or Parquet file to write.")
    ] = None,
    list_scenarios: Annotated[bool, typer.Option(help="List scenarios and exit.")] = False,
) -> None:
    """Generate AI4I-like factory data, optionally with a named drift scenario."""
    from shopfloor.data import simulator

    out = _console()
    if list_scenarios:
        for name, description in simulator.scenarios().items():
            out.print(f"{name}: {description}", highlight=False)
        return
    try:
        frame = simulator.simulate(rows, n_machines=machines, seed=seed, scenario=scenario)
    except ValueError as exc:
        raise InvalidInputError(str(exc)) from None
    target = output or Path(f"simulated-{scenario}-{seed}-{datetime.now():%Y%m%d%H%M%S}.csv")
    target.parent.mkdir(parents=True, exist_ok=True)
    if target.suffix.lower() in (".parquet", ".pq"):
        frame.to_parquet(target, index=False)
    else:
        frame.to_csv(target, index=False)
    failures = int(frame["machine_failure"].sum())
    out.print(
        f"wrote {len(frame)} rows ({failures} failures, scenario {scenario}) to {target}", highlight=False
    )


def main() -> None:
    """Console entry point (``shopfloor`` and ``python -m shopfloor``)."""
    app()


if __name__ == "__main__":  # pragma: no cover
    main()
