"""The ``shopfloor`` command: wiring only; every decision lives in the library."""

from __future__ import annotations

import json
import sys
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any

import typer
import yaml
from rich.console import Console
from rich.table import Table

from shopfloor.commands import deploy as deploy_commands
from shopfloor.commands import models as models_commands
from shopfloor.commands import serve as serve_commands

app = typer.Typer(help="shopfloor: MLOps for the factory floor.", no_args_is_help=True, add_completion=False)
app.add_typer(
    models_commands.app, name="models", help="Versioned model registry: list, show, promote, rollback."
)
app.add_typer(deploy_commands.app, name="deploy", help="Deploy registry versions to the cloud cluster.")
app.command("serve")(serve_commands.serve)
console = Console(stderr=True)
out = Console()

PIPELINE_PARAMETERS = (
    "seed",
    "validation_fraction",
    "test_fraction",
    "train_params",
    "policy_yaml",
    "registry",
    "env",
    "deploy",
    "deploy_namespace",
    "predictor_image",
)


def _fail(message: str, code: int = 1) -> typer.Exit:
    console.print(f"[bold red]error:[/] {message}", highlight=False, soft_wrap=True)
    return typer.Exit(code)


def _arguments(data: str | None, params: Path | None, registry: str | None = None) -> dict[str, Any]:
    """Pipeline arguments from --data and a --params YAML (unknown keys are an error)."""
    arguments: dict[str, Any] = {}
    if params is not None:
        try:
            loaded = yaml.safe_load(params.read_text()) or {}
        except (OSError, yaml.YAMLError) as exc:
            raise _fail(f"cannot read --params {params}: {exc}", 2) from exc
        if not isinstance(loaded, dict):
            raise _fail(f"--params {params} must hold a mapping of pipeline parameters", 2)
        unknown = sorted(set(loaded) - {*PIPELINE_PARAMETERS, "source", "policy"})
        if unknown:
            raise _fail(
                f"unknown pipeline parameters {unknown} in {params}; known: "
                f"{sorted(PIPELINE_PARAMETERS)} (+ source, policy: a policy file path)",
                2,
            )
        if "policy" in loaded:
            loaded["policy_yaml"] = (params.parent / loaded.pop("policy")).read_text()
        arguments.update(loaded)
    if data is not None:
        arguments["source"] = data
    if registry is not None:
        arguments["registry"] = registry
    arguments.setdefault("source", "embedded:ai4i2020")
    return arguments


def _print_summary(summary: dict[str, Any]) -> None:
    from shopfloor.summary import metric_rows

    table = Table(title=f"shopfloor run: data {str(summary.get('data_version'))[:19]}", show_lines=False)
    for col in ("model", "PR-AUC [95% CI]", "ROC-AUC", "recall@precision", "F1@threshold"):
        table.add_column(col)
    for row in metric_rows(summary):
        table.add_row(*row)
    out.print(table)
    checks = Table(show_header=True)
    checks.add_column("check")
    checks.add_column("result")
    checks.add_row("validation", "pass" if summary["validation"]["success"] else "FAIL")
    checks.add_row("gates", "pass" if summary["gates"]["passed"] else "FAIL")
    checks.add_row("equivalence", "pass" if summary["equivalence"]["passed"] else "FAIL")
    if summary.get("registry"):
        reg = summary["registry"]
        checks.add_row("registered", f"{reg['model']} {reg['version']} ({reg['alias']}, {reg['env']})")
    if summary.get("champion"):
        checks.add_row("compared with champion", str(summary["champion"]["version"]))
    if summary.get("size"):
        checks.add_row("int8 size / SavedModel", f"{summary['size']['int8_size_ratio']:.3f}")
    for fmt, rep in summary["equivalence"]["formats"].items():
        checks.add_row(f"{fmt} single-row latency", f"{rep['latency']['median_us']:.1f} µs (median)")
    if "wall_time_s" in summary:
        checks.add_row("wall time", f"{summary['wall_time_s']:.1f} s")
    out.print(checks)
    for name, path in summary["artifacts"].items():
        if path:
            out.print(f"  {name}: {path}", highlight=False)


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

    Exit status 0 only when validation, gates and equivalence all pass.
    """
    arguments = _arguments(data, params, registry)
    if host:
        from shopfloor.pipelines.run import submit

        submitted = submit(host, arguments, experiment=experiment, run_name=run_name)
        out.print(f"submitted run {submitted['run_id']}: {submitted['url']}", highlight=False)
        if summary:
            summary.write_text(
                json.dumps({"submitted": submitted, "arguments": _public(arguments)}, indent=2)
            )
        return

    from shopfloor.data.loader import DataLoadError, check_source

    try:  # fail fast on a missing or unreadable source, before any step starts
        check_source(arguments["source"])
    except (DataLoadError, RuntimeError) as exc:
        if summary:
            summary.write_text(
                json.dumps({"status": "failed", "reason": str(exc), "source": arguments["source"]}, indent=2)
            )
        raise _fail(str(exc)) from exc

    from shopfloor.pipelines.run import run_local

    with console.status("starting pipeline") as status:
        result = run_local(
            arguments,
            output,
            stream_logs=verbose,
            on_step=lambda step: status.update(f"running step [bold]{step}[/]"),
        )
    if summary:
        summary.parent.mkdir(parents=True, exist_ok=True)
        summary.write_text(json.dumps(result.summary, indent=2, default=str) + "\n")
    _print_summary(result.summary)
    if result.summary["status"] != "passed":
        raise _fail(result.summary["reason"])
    out.print(f"[bold green]passed[/]: {result.summary['reason']}")


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

    out.print(f"wrote {compile_pipeline(output)}", highlight=False)


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

    if list_scenarios:
        for name, description in simulator.scenarios().items():
            out.print(f"{name}: {description}", highlight=False)
        return
    try:
        frame = simulator.simulate(rows, n_machines=machines, seed=seed, scenario=scenario)
    except ValueError as exc:
        raise _fail(str(exc), 2) from exc
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


def main() -> None:  # pragma: no cover - console entry point
    app()


if __name__ == "__main__":  # pragma: no cover
    sys.exit(app())
