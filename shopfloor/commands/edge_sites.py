"""`shopfloor edge status`: what each site should run and what it reports (owner: sites).

Mounted by :mod:`shopfloor.commands.edge`. Wiring only: logic lives in
:mod:`shopfloor.edge.status`.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

app = typer.Typer(no_args_is_help=True, add_completion=False)


@app.command("status")
def status(
    inventory: Annotated[Path | None, typer.Option(
        "--inventory",
        help="site inventory (default: $SHOPFLOOR_EDGE_SITES or ~/.shopfloor/edge/sites.yaml)")] = None,
    registry: Annotated[str | None, typer.Option(
        "--registry",
        help="registry for the version local and bundle sites should run (default: the configured one)")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="print a JSON list, one object per site")] = False,
) -> None:
    """For every site: the version it should run, the version it reports and the LiteRT format
    it runs it in (int8 or float32: the version's, within the device's preference)."""
    from shopfloor.edge.sites import load_inventory
    from shopfloor.edge.status import inventory_status
    from shopfloor.errors import ShopfloorError
    from shopfloor.registry import open_registry

    sites = load_inventory(inventory)
    try:
        reg = open_registry(registry) if any(s.mode in ("local", "bundle") for s in sites.sites) else None
    except ShopfloorError:
        reg = None
    rows = inventory_status(sites, registry=reg)
    if as_json:
        typer.echo(json.dumps([r.to_dict() for r in rows], indent=2))
        return
    if not rows:
        typer.echo(f"no sites in {sites.path}")
        return
    header = ("SITE", "MODE", "PROFILE", "SHOULD RUN", "REPORTS", "FORMAT", "HEALTHY", "DETAIL")
    table = [header] + [(r.site, r.mode, r.profile, r.should_run or "-", r.reports or "-", r.format or "-",
                         {True: "yes", False: "no", None: "-"}[r.healthy], r.detail) for r in rows]
    widths = [max(len(row[i]) for row in table) for i in range(len(header) - 1)]
    for row in table:
        typer.echo("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=False)) + "  " + row[-1])
