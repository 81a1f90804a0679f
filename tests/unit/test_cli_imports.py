"""The CLI imports lazily: a command pays only for what it uses (``shopfloor --help`` pulls in
no ML or serving stack)."""

from __future__ import annotations

import json
import subprocess
import sys

HEAVY = ("kserve", "pandas", "fastapi", "tensorflow", "kfp", "numpy", "minio", "kubernetes",
         "great_expectations", "sklearn", "grpc", "uvicorn", "ai_edge_litert")


def _loaded_after(code: str) -> list[str]:
    report = f"print(json.dumps(sorted(m for m in {HEAVY!r} if m in sys.modules)))"
    probe = f"import sys, json\n{code}\n{report}"
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True,
                         timeout=60)
    return list(json.loads(out.stdout.strip().splitlines()[-1]))


def test_importing_the_cli_loads_no_heavy_library() -> None:
    assert _loaded_after("import shopfloor.cli") == []


def test_help_of_every_command_group_loads_no_heavy_library() -> None:
    code = (
        "from typer.testing import CliRunner\n"
        "from shopfloor.cli import app\n"
        "for args in ([], ['models'], ['deploy'], ['run'], ['serve'], ['simulate'], ['edge'], ['keys'],\n"
        "             ['edge', 'fleet'], ['edge', 'bundle']):\n"
        "    result = CliRunner().invoke(app, [*args, '--help'])\n"
        "    assert result.exit_code == 0, (args, result.output)\n"
    )
    assert _loaded_after(code) == []
