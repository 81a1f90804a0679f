"""Building the ``shopfloor`` command tree must stay light: every invocation (including
``shopfloor edge serve``, whose start-up time counts on a device) pays for it."""

from __future__ import annotations

import subprocess
import sys

from shopfloor.commands import models
from shopfloor.registry.core import CHAMPION

HEAVY = ("shopfloor.registry", "numpy", "prometheus_client", "cryptography", "rich")


def test_the_cli_module_imports_no_heavy_module() -> None:
    code = "import sys, shopfloor.cli; print(' '.join(sorted(sys.modules)))"
    loaded = set(subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                                check=True).stdout.split())
    assert not [m for m in HEAVY if m in loaded]


def test_the_models_command_spells_the_registry_s_champion_alias() -> None:
    assert models.CHAMPION == CHAMPION
