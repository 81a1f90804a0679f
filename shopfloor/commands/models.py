"""``shopfloor models``: list, inspect, register, promote and roll back registry versions.

Wiring only: every decision lives in :mod:`shopfloor.registry`. Mounted by ``shopfloor.cli``
as ``app.add_typer(models.app, name="models")``. Errors are one red line and exit code 1.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from shopfloor.registry.core import CHAMPION

app = typer.Typer(
    help="Model registry: versions, aliases, promotion.", no_args_is_help=True, add_completion=False
)
err = Console(stderr=True)
out = Console()

RegistryOpt = Annotated[
    str | None,
    typer.Option(
        "--registry",
        help="s3://bucket/prefix or a path (default: $SHOPFLOOR_REGISTRY or ~/.shopfloor/registry)",
    ),
]
EnvOpt = Annotated[str, typer.Option("--env", help="environment whose aliases are used, e.g. cloud, edge")]
ModelOpt = Annotated[str, typer.Option("--model", help="registered model name")]


@contextmanager
def _errors() -> Iterator[None]:
    """Registry, storage and input errors become one red line + exit 1 (no traceback)."""
    from shopfloor.registry import RegistryError

    try:
        yield
    except (RegistryError, KeyError, ValueError, OSError, RuntimeError) as exc:
        message = str(exc.args[0]) if isinstance(exc, KeyError) and exc.args else str(exc)
        err.print(f"[bold red]error:[/] {message}", highlight=False)
        raise typer.Exit(1) from None


def _run(fn: Callable[[], None]) -> None:
    with _errors():
        fn()


def _open(registry: str | None, model: str) -> Any:
    from shopfloor.registry import open_registry

    return open_registry(registry, model_name=model)


def _fmt(metric: dict[str, Any] | None) -> str:
    if not metric:
        return "-"
    return f"{metric['value']:.3f} [{metric['ci_low']:.3f}, {metric['ci_high']:.3f}]"


@app.command("list")
def list_(registry: RegistryOpt = None, env: EnvOpt = "cloud", model: ModelOpt = "ai4i-failure") -> None:
    """Published versions, newest last, with their aliases in ENV."""

    def body() -> None:
        reg = _open(registry, model)
        aliases: dict[str, list[str]] = {}
        for alias, version in reg.aliases(env).items():
            if version:
                aliases.setdefault(version, []).append(alias)
        table = Table(title=f"{reg.model} @ {reg.backend.describe()} ({env})")
        for col in (
            "version",
            "created",
            "aliases",
            "PR-AUC keras [95% CI]",
            "int8 PR-AUC",
            "formats",
            "run",
        ):
            table.add_column(col)
        for version in reg.list_versions():
            m = reg.show(version)
            metrics = m.get("metrics", {})
            table.add_row(
                version,
                str(m.get("created_at", ""))[:19],
                ", ".join(aliases.get(version, [])),
                _fmt(metrics.get("keras", {}).get("pr_auc")),
                _fmt(metrics.get("int8", {}).get("pr_auc")),
                ",".join(m.get("formats", [])),
                str(m.get("run_id", "")),
            )
        out.print(table)

    _run(body)


@app.command()
def show(
    version: Annotated[str, typer.Argument(help="e.g. v0003")],
    registry: RegistryOpt = None,
    model: ModelOpt = "ai4i-failure",
) -> None:
    """One version's manifest: lineage, metrics with intervals, gates, files."""

    def body() -> None:
        m = _open(registry, model).show(version)
        head = Table(title=f"{m['model']} {m['version']}", show_header=False)
        head.add_column("field")
        head.add_column("value")
        for key in ("created_at", "run_id", "data_version", "code_version", "champion", "threshold"):
            head.add_row(key, str(m.get(key)))
        head.add_row("validation suite", str(m.get("validation_suite", {}).get("version")))
        head.add_row("formats", ", ".join(m.get("formats", [])))
        gates = m.get("gates", {})
        head.add_row("gates", f"{'pass' if gates.get('passed') else 'FAIL'}: {gates.get('reason')}")
        head.add_row(
            "files", f"{len(m.get('files', {}))} ({sum(f['size'] for f in m['files'].values())} bytes)"
        )
        out.print(head)
        metrics = Table(title="metrics (95% CI)")
        for col in ("model", "PR-AUC", "ROC-AUC", "recall@precision", "F1"):
            metrics.add_column(col)
        for name, block in m.get("metrics", {}).items():
            metrics.add_row(
                name, *(_fmt(block.get(k)) for k in ("pr_auc", "roc_auc", "recall_at_precision", "f1"))
            )
        out.print(metrics)

    _run(body)


@app.command()
def register(
    run_dir: Annotated[Path, typer.Argument(help="a finished local run, e.g. runs/shopfloor-training-...")],
    registry: RegistryOpt = None,
    champion: Annotated[str | None, typer.Option(help="version this run was evaluated against")] = None,
    run_id: Annotated[
        str | None, typer.Option(help="pipeline run id (default: the run directory name)")
    ] = None,
    model: ModelOpt = "ai4i-failure",
) -> None:
    """Assemble a local run (needs a converted edge model and passed gates) and publish it."""

    def body() -> None:
        from shopfloor.registry import assemble_version

        reg = _open(registry, model)
        with tempfile.TemporaryDirectory(prefix="shopfloor-register-") as tmp:
            version_dir = assemble_version(run_dir, Path(tmp) / "version")
            m = reg.publish(version_dir, run_id=run_id or Path(run_dir).resolve().name, champion=champion)
        out.print(
            f"registered [bold]{m['model']} {m['version']}[/] in {reg.backend.describe()} "
            f"({len(m['files'])} files, threshold {m['threshold']:.4f})",
            highlight=False,
        )

    _run(body)


@app.command()
def promote(
    version: Annotated[str, typer.Argument(help="e.g. v0003")],
    registry: RegistryOpt = None,
    env: EnvOpt = "cloud",
    reason: Annotated[str, typer.Option(help="why, kept in history")] = "promoted",
    model: ModelOpt = "ai4i-failure",
) -> None:
    """Make VERSION the champion in ENV (the previous champion stays in the alias history)."""

    def body() -> None:
        reg = _open(registry, model)
        before = reg.resolve(CHAMPION, env)
        if before == version:
            out.print(f"champion ({env}) is already {version}", highlight=False)
            return
        reg.promote(version, env, reason)
        out.print(f"champion ({env}): {before or '-'} -> [bold]{version}[/]", highlight=False)

    _run(body)


@app.command()
def rollback(
    registry: RegistryOpt = None,
    env: EnvOpt = "cloud",
    alias: Annotated[str, typer.Option(help="alias to move back")] = "champion",
    model: ModelOpt = "ai4i-failure",
) -> None:
    """Move the champion in ENV back to the version before the current one."""

    def body() -> None:
        doc = _open(registry, model).rollback(env, alias)
        last = doc["history"][-1]
        out.print(
            f"{alias} ({env}): {last['previous']} -> [bold]{last['version']}[/] (rollback)", highlight=False
        )

    _run(body)


@app.command()
def history(
    registry: RegistryOpt = None,
    env: EnvOpt = "cloud",
    alias: Annotated[str, typer.Option(help="alias")] = "champion",
    model: ModelOpt = "ai4i-failure",
) -> None:
    """Every move of an alias in ENV, oldest first."""

    def body() -> None:
        table = Table(title=f"{alias} ({env})")
        for col in ("at", "action", "from", "to", "reason"):
            table.add_column(col)
        for e in _open(registry, model).alias_history(alias, env):
            table.add_row(
                str(e["at"])[:19], e["action"], e.get("previous") or "-", e["version"], e.get("reason", "")
            )
        out.print(table)

    _run(body)
