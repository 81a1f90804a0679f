"""A real laptop fleet for the edge operation tests: the ``shopfloor`` console command, loopback only.

``fleet_env`` isolates everything a user's machine would share (registry, site inventory, key
directory) under one temporary folder; ``running_fleet`` runs ``shopfloor edge fleet up`` and
always stops the processes again (``fleet down``, then SIGKILL of any pid left in the state
file). Versions come from the real trained model in tests/fixtures/registry-schema1.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import shutil
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from shopfloor import contract
from shopfloor.lineage import write_bytes_atomic

REPO = Path(__file__).resolve().parents[2]
SHOPFLOOR = REPO / ".venv" / "bin" / "shopfloor"
SCHEMA1 = REPO / "tests" / "fixtures" / "registry-schema1"
SOURCE_VERSION = SCHEMA1 / "ai4i-failure" / "v0001"
#: Two raw sensor readings (an ordinary one and a worn, overloaded tool), as in the README.
READINGS = {
    "product_type": ["L", "H"],
    "air_temperature_k": [298.1, 302.5],
    "process_temperature_k": [308.6, 310.9],
    "rotational_speed_rpm": [1551.0, 1320.0],
    "torque_nm": [42.8, 68.2],
    "tool_wear_min": [0.0, 215.0],
}


def fleet_env(root: Path) -> dict[str, str]:
    """Environment of a user whose registry, inventory and keys live under ``root``."""
    return {
        **os.environ,
        "COLUMNS": "200",
        "SHOPFLOOR_REGISTRY": str(root / "registry"),
        "SHOPFLOOR_EDGE_SITES": str(root / "sites.yaml"),
        "SHOPFLOOR_KEYS": str(root / "keys"),
    }


def cli(env: dict[str, str], *args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(SHOPFLOOR), *args], env=env, capture_output=True, text=True, timeout=timeout, check=False
    )


def ok(env: dict[str, str], *args: str) -> str:
    done = cli(env, *args)
    assert done.returncode == 0, f"{args} -> {done.returncode}\n{done.stdout}\n{done.stderr}"
    return done.stdout


def fleet_pids(root: Path) -> list[int]:
    state = root / "fleet" / "fleet.json"
    if not state.is_file():
        return []
    return [int(s["pid"]) for s in json.loads(state.read_text())["sites"]]


@contextlib.contextmanager
def running_fleet(root: Path, env: dict[str, str], sites: int = 3) -> Iterator[list[dict[str, object]]]:
    """``fleet up --sites N`` on free loopback ports; yields ``fleet status --json``; always stops."""
    try:
        ok(
            env,
            "edge",
            "fleet",
            "up",
            "--sites",
            str(sites),
            "--base-port",
            "0",
            "--root",
            str(root / "fleet"),
        )
        yield json.loads(ok(env, "edge", "fleet", "status", "--json", "--root", str(root / "fleet")))
    finally:
        pids = fleet_pids(root)
        cli(env, "edge", "fleet", "down", "--root", str(root / "fleet"), timeout=60)
        for pid in pids:  # belt and braces: nothing of ours outlives the test
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(pid, signal.SIGKILL)


def copy_source(dest: Path, *, threshold: float | None = None, golden_shift: float = 0.0) -> Path:
    """The trained version's files without its manifest, optionally with another threshold or
    with int8 golden outputs that the model does not reproduce."""
    shutil.copytree(SOURCE_VERSION, dest)
    (dest / contract.MANIFEST).unlink()
    if threshold is not None:
        data = {**contract.load_decision(dest).to_dict(), "threshold": threshold}
        write_bytes_atomic(dest / contract.DECISION, contract.dumps(data).encode())
    if golden_shift:
        _, npz = contract.golden_files("int8")
        with np.load(dest / npz) as loaded:
            arrays = {k: loaded[k] for k in loaded.files}
        arrays["outputs"] = np.clip(arrays["outputs"] + golden_shift, 0.0, 1.0).astype(
            arrays["outputs"].dtype
        )
        buf = io.BytesIO()
        np.savez(buf, **arrays)
        write_bytes_atomic(dest / npz, buf.getvalue())
    return dest


def registry_with_v0001(root: Path) -> Path:
    """A copy of the schema-1 fixture registry (v0001: the real trained model), unsigned."""
    shutil.copytree(SCHEMA1, root / "registry")
    return root / "registry"


def publish(
    root: Path,
    version: str,
    *,
    sign_key: Path | None,
    threshold: float | None = None,
    golden_shift: float = 0.0,
) -> str:
    from shopfloor.edge.signing import sign_manifest
    from shopfloor.registry import open_registry

    reg = open_registry(root / "registry")
    source = copy_source(root / f"source-{version}", threshold=threshold, golden_shift=golden_shift)
    reg.publish(source, run_id=f"edge-ops-{version}", version=version)
    if sign_key is not None:
        reg.add_signature(version, sign_manifest(reg.manifest_bytes(version), sign_key))
    return version


def dev_key(root: Path) -> Path:
    return root / "keys" / "dev-ed25519.key"
