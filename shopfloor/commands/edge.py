"""``shopfloor edge``: run, push, roll out and roll back models on factory edge sites.

Mounted by ``shopfloor.cli``. Each part lives in its own module (runtime, sites, operations),
whose commands are registered on :data:`app` here. Wiring only: logic lives in
:mod:`shopfloor.edge`.
"""

from __future__ import annotations

import typer

from shopfloor.commands import edge_ops, edge_runtime, edge_sites

app = typer.Typer(help="Factory edge: LiteRT runtime, sites, push, rollout.", no_args_is_help=True,
                  add_completion=False)

for part in (edge_runtime, edge_sites, edge_ops):
    for command in part.app.registered_commands:
        app.registered_commands.append(command)
    for group in part.app.registered_groups:
        app.registered_groups.append(group)
