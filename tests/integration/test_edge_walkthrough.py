"""The README's edge walkthrough, command by command, as a user on a laptop runs it.

Everything uses the defaults under a fresh HOME (~/.shopfloor/registry, ~/.shopfloor/edge/sites.yaml,
~/.shopfloor/keys). Training is the slow part and is tested elsewhere: the walkthrough's
``shopfloor run`` is stood in for by the real trained version of tests/fixtures/registry-schema1
(what a first run leaves: v0001), and its second run by publishing v0002 (same model, another
threshold). Every other line is the README's command.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.edge_fleet import READINGS, SCHEMA1, SHOPFLOOR, cli, fleet_pids, publish

MODEL = "ai4i-failure"


def free_base_port(count: int = 3) -> int:
    for base in range(18091, 40000, 17):
        try:
            for port in range(base, base + count):
                with socket.socket() as s:
                    s.bind(("127.0.0.1", port))
        except OSError:
            continue
        return base
    raise AssertionError("no free loopback ports")


@pytest.fixture()
def home(tmp_path: Path) -> Iterator[tuple[Path, dict[str, str]]]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SHOPFLOOR_")}
    env.update(HOME=str(tmp_path), COLUMNS="200")
    # Stands in for the first `shopfloor run`: the trained version in the default registry.
    shutil.copytree(SCHEMA1, tmp_path / ".shopfloor" / "registry")
    try:
        yield tmp_path, env
    finally:
        pids = fleet_pids(tmp_path / ".shopfloor" / "edge")
        cli(env, "edge", "fleet", "down", timeout=60)
        for pid in pids:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(pid, signal.SIGKILL)


def sh(env: dict[str, str], line: str) -> str:
    """One README line: ``shopfloor ...`` (the README writes .venv/bin/shopfloor)."""
    args = line.split()
    assert args[0] == "shopfloor"
    done = cli(env, *[a.replace("~", env["HOME"], 1) if a.startswith("~") else a for a in args[1:]])
    assert done.returncode == 0, f"{line}\n{done.stdout}\n{done.stderr}"
    return done.stdout


def infer(url: str) -> dict:
    body = json.dumps(
        {
            "inputs": [
                {
                    "name": name,
                    "datatype": "BYTES" if isinstance(values[0], str) else "FP64",
                    "shape": [2],
                    "data": values,
                }
                for name, values in READINGS.items()
            ]
        }
    ).encode()
    request = urllib.request.Request(
        f"{url}/v2/models/{MODEL}/infer", data=body, headers={"content-type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        return dict(json.loads(response.read()))


def test_readme_edge_walkthrough(home: tuple[Path, dict[str, str]]) -> None:
    root, env = home
    base = free_base_port()
    urls = [f"http://127.0.0.1:{base + i}" for i in range(3)]

    # Three simulated plants on this laptop; the first use makes the development key and trusts it.
    out = sh(env, f"shopfloor edge fleet up --sites 3 --base-port {base}")
    assert [line.split("\t")[1] for line in out.splitlines()] == urls
    assert (root / ".shopfloor" / "keys" / "dev-ed25519.key").is_file()

    # Signing is a release step: sign the trained version with the development key.
    sh(env, "shopfloor models sign v0001 --key ~/.shopfloor/keys/dev-ed25519.key")

    # Push to one site, then call it.
    assert "v0001" in sh(env, "shopfloor edge push --site plant-1")
    answer = infer(urls[0])
    outputs = {o["name"]: o["data"] for o in answer["outputs"]}
    assert answer["model_version"] == "v0001" and outputs["failure_predicted"] == [False, True]

    # Roll out to every site, pilot first.
    assert "completed" in sh(env, "shopfloor edge rollout --pilot plant-1 --soak 2")
    status = json.loads(sh(env, "shopfloor edge fleet status --json"))
    assert [(s["name"], s["active"], s["health"]) for s in status] == [
        ("plant-1", "v0001", "ready"),
        ("plant-2", "v0001", "ready"),
        ("plant-3", "v0001", "ready"),
    ]
    assert "v0001" in sh(env, "shopfloor edge status")

    # An air-gapped plant: one signed file, carried over, verified and installed there.
    sh(
        env,
        "shopfloor edge bundle export -o v0001.bundle --profile fanless-amd64-8g".replace(
            "v0001.bundle", str(root / "v0001.bundle")
        ),
    )
    out = sh(
        env,
        f"shopfloor edge bundle import {root / 'v0001.bundle'} --store {root / 'plant-x'} "
        "--profile fanless-amd64-8g",
    )
    assert "active v0001" in out

    # A second run gives v0002 (stood in for here); sign it, roll it out, and roll one plant back.
    publish(root / ".shopfloor", "v0002", sign_key=None, threshold=0.01)
    sh(env, "shopfloor models sign v0002 --key ~/.shopfloor/keys/dev-ed25519.key")
    sh(env, "shopfloor edge rollout v0002 --pilot plant-1 --soak 2")
    assert [infer(u)["model_version"] for u in urls] == ["v0002"] * 3
    assert "from v0002 to v0001" in sh(env, "shopfloor edge rollback --site plant-2")
    assert [infer(u)["model_version"] for u in urls] == ["v0002", "v0001", "v0002"]

    assert "stopped plant-1, plant-2, plant-3" in sh(env, "shopfloor edge fleet down")
    assert SHOPFLOOR.is_file()
