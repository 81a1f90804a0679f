"""``shopfloor models``: list, inspect, register, promote and roll back registry versions.

Wiring only: every decision lives in :mod:`shopfloor.registry`. Mounted by ``shopfloor.cli``
as ``app.add_typer(models.app, name="models")``. Refusals are :mod:`shopfloor.errors`
categories, which the root command turns into one line and the category's exit code. Heavy
imports (rich, the registry) happen inside the commands.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from shopfloor.contract import EDGE_KEY
from shopfloor.settings import CLOUD_ENV, DEFAULT_MODEL_NAME

if TYPE_CHECKING:
    from shopfloor.contract import Interval
    from shopfloor.registry import Registry

#: :data:`shopfloor.registry.core.CHAMPION`, spelled here so that building the command tree (every
#: ``shopfloor`` invocation) does not import the registry; a test keeps the two equal.
CHAMPION = "champion"

app = typer.Typer(
    help="Model registry: versions, aliases, promotion.", no_args_is_help=True, add_completion=False
)

RegistryOpt = Annotated[
    str | None,
    typer.Option(
        "--registry",
        help="s3://bucket/prefix or a path (default: $SHOPFLOOR_REGISTRY or ~/.shopfloor/registry)",
    ),
]
EnvOpt = Annotated[str, typer.Option("--env", help="environment whose aliases are used, e.g. cloud, edge")]
ModelOpt = Annotated[str, typer.Option("--model", help="registered model name")]


def _out(stderr: bool = False) -> Any:
    from rich.console import Console

    return Console(stderr=stderr)


def _open(registry: str | None, model: str) -> Registry:
    from shopfloor.registry import open_registry

    return open_registry(registry, model_name=model)


def _fmt(metric: Interval | None) -> str:
    if metric is None:
        return "-"
    return f"{metric.value:.3f} [{metric.ci_low:.3f}, {metric.ci_high:.3f}]"


@app.command("list")
def list_(
    registry: RegistryOpt = None, env: EnvOpt = CLOUD_ENV, model: ModelOpt = DEFAULT_MODEL_NAME
) -> None:
    """Published versions, newest last, with their aliases in ENV, model family, the LiteRT format
    shipped to the edge and that file's PR-AUC on the test split (unreadable ones are marked)."""
    from rich.table import Table

    from shopfloor.errors import bounded

    reg = _open(registry, model)
    listing = reg.listing(env)
    aliases: dict[str, list[str]] = {}
    for alias, version in listing.aliases.items():
        if version:
            aliases.setdefault(version, []).append(alias)
    table = Table(title=f"{reg.model} @ {reg.backend.describe()} ({env})")
    columns = ("version", "created", "aliases", "family", "edge format", "edge PR-AUC [95% CI]", "formats",
               "run")
    for col in columns:
        table.add_column(col)
    for entry in listing.versions:
        m = entry.manifest
        if m is None:
            table.add_row(entry.version, f"unreadable: {bounded(entry.problem or '', 200)}",
                          ", ".join(aliases.get(entry.version, [])), *("-",) * (len(columns) - 3))
            continue
        table.add_row(
            entry.version,
            m.created_at[:19],
            ", ".join(aliases.get(entry.version, [])),
            m.model_family,
            m.edge_format or "-",
            _fmt(m.metric(EDGE_KEY, "pr_auc")),
            ",".join(m.formats),
            m.run_id,
        )
    _out().print(table)
    err = _out(stderr=True)
    for problem in listing.problems:
        err.print(f"warning: {bounded(problem)}", highlight=False, soft_wrap=True)


@app.command()
def show(
    version: Annotated[str, typer.Argument(help="e.g. v0003")],
    registry: RegistryOpt = None,
    model: ModelOpt = DEFAULT_MODEL_NAME,
) -> None:
    """One version's manifest: lineage, family and edge format, metrics with intervals, gates, files."""
    from rich.table import Table

    m = _open(registry, model).show(version)
    head = Table(title=f"{m.model} {m.version}", show_header=False)
    head.add_column("field")
    head.add_column("value")
    for key in ("created_at", "run_id", "data_version", "code_version", "champion", "threshold"):
        head.add_row(key, str(getattr(m, key)))
    head.add_row("validation suite", str(m.validation_suite.get("version")))
    head.add_row("model family", m.model_family)
    head.add_row("edge format", m.edge_format or "- (no LiteRT file)")
    head.add_row("edge PR-AUC", _fmt(m.metric(EDGE_KEY, "pr_auc")))
    head.add_row("formats", ", ".join(m.formats))
    head.add_row("gates", f"{'pass' if m.gates.get('passed') else 'FAIL'}: {m.gates.get('reason')}")
    head.add_row("files", f"{len(m.files)} ({m.total_bytes} bytes)")
    out = _out()
    out.print(head)
    metrics = Table(title="metrics (95% CI)")
    for col in ("model", "PR-AUC", "ROC-AUC", "recall@precision", "F1"):
        metrics.add_column(col)
    for name, block in m.metrics.items():
        metrics.add_row(
            name, *(_fmt(block.get(k)) for k in ("pr_auc", "roc_auc", "recall_at_precision", "f1"))
        )
    out.print(metrics)


@app.command()
def register(
    run_dir: Annotated[Path, typer.Argument(help="a finished local run, e.g. runs/shopfloor-training-...")],
    registry: RegistryOpt = None,
    champion: Annotated[str | None, typer.Option(help="version this run was evaluated against")] = None,
    run_id: Annotated[
        str | None, typer.Option(help="pipeline run id (default: the run directory name)")
    ] = None,
    model: ModelOpt = DEFAULT_MODEL_NAME,
) -> None:
    """Assemble a local run (needs a converted edge model and passed gates) and publish it."""
    from shopfloor.registry import assemble_version

    reg = _open(registry, model)
    with tempfile.TemporaryDirectory(prefix="shopfloor-register-") as tmp:
        version_dir = assemble_version(run_dir, Path(tmp) / "version")
        m = reg.publish(version_dir, run_id=run_id or Path(run_dir).resolve().name, champion=champion)
    _out().print(
        f"registered [bold]{m.model} {m.version}[/] in {reg.backend.describe()} "
        f"({len(m.files)} files, threshold {m.threshold:.4f})",
        highlight=False,
    )


@app.command()
def promote(
    version: Annotated[str, typer.Argument(help="e.g. v0003")],
    registry: RegistryOpt = None,
    env: EnvOpt = CLOUD_ENV,
    reason: Annotated[str, typer.Option(help="why, kept in history")] = "promoted",
    model: ModelOpt = DEFAULT_MODEL_NAME,
) -> None:
    """Make VERSION the champion in ENV (the previous champion stays in the alias history)."""
    reg = _open(registry, model)
    before = reg.resolve(CHAMPION, env)
    if before == version:
        _out().print(f"champion ({env}) is already {version}", highlight=False)
        return
    reg.promote(version, env, reason)
    _out().print(f"champion ({env}): {before or '-'} -> [bold]{version}[/]", highlight=False)


@app.command()
def rollback(
    registry: RegistryOpt = None,
    env: EnvOpt = CLOUD_ENV,
    alias: Annotated[str, typer.Option(help="alias to move back")] = CHAMPION,
    model: ModelOpt = DEFAULT_MODEL_NAME,
) -> None:
    """Move the champion in ENV back to the version before the current one."""
    last = _open(registry, model).rollback(env, alias).history[-1]
    _out().print(f"{alias} ({env}): {last.previous} -> [bold]{last.version}[/] (rollback)", highlight=False)


@app.command()
def history(
    registry: RegistryOpt = None,
    env: EnvOpt = CLOUD_ENV,
    alias: Annotated[str, typer.Option(help="alias")] = CHAMPION,
    model: ModelOpt = DEFAULT_MODEL_NAME,
) -> None:
    """Every move of an alias in ENV, oldest first."""
    from rich.table import Table

    table = Table(title=f"{alias} ({env})")
    for col in ("at", "action", "from", "to", "reason"):
        table.add_column(col)
    for e in _open(registry, model).alias_history(alias, env):
        table.add_row(e.at[:19], e.action, e.previous or "-", e.version, e.reason)
    _out().print(table)


@app.command()
def sign(
    version: Annotated[str, typer.Argument(help="e.g. v0003")],
    key: Annotated[Path, typer.Option("--key", help="ed25519 private key (PEM), `shopfloor keys generate`")],
    registry: RegistryOpt = None,
    model: ModelOpt = DEFAULT_MODEL_NAME,
) -> None:
    """Write a detached signature of VERSION beside it (the version itself never changes).

    Signing again with the same key changes nothing; several keys may sign one version.
    """
    from shopfloor.commands.keys import _signing

    reg = _open(registry, model)
    doc = _signing().sign_manifest(reg.manifest_bytes(version), key)
    added = reg.add_signature(version, doc)
    state = "signed" if added else "already signed"
    _out().print(f"{state}: {reg.model} {version} by key [bold]{doc.key_id}[/] in {reg.backend.describe()}",
                 highlight=False)
