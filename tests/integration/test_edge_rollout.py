"""Staged rollout and rollback on a real fleet: three local runtimes, a GitOps site (a real git
working copy, values rendered through the real helm) and an air-gapped bundle site.

Tests run in file order on one fleet: each leaves the sites where the next expects them.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from shopfloor.edge.client import RuntimeClient
from tests.integration.edge_fleet import (
    READINGS,
    SHOPFLOOR,
    cli,
    dev_key,
    fleet_env,
    ok,
    publish,
    registry_with_v0001,
    running_fleet,
)

LOCAL = ("plant-1", "plant-2", "plant-3")


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, dict[str, str]]]:
    root = tmp_path_factory.mktemp("rollout")
    env = fleet_env(root)
    registry_with_v0001(root)
    gitops = root / "gitops"
    gitops.mkdir()
    subprocess.run(["git", "init", "-q", "-b", "main", str(gitops)], check=True)
    with running_fleet(root, env, 3):
        ok(env, "models", "sign", "v0001", "--key", str(dev_key(root)))
        publish(root, "v0002", sign_key=dev_key(root), threshold=0.01)
        publish(root, "v0003", sign_key=dev_key(root), golden_shift=0.3)  # golden outputs do not reproduce
        inventory = yaml.safe_load((root / "sites.yaml").read_text())
        inventory["sites"] += [
            {
                "name": "plant-g",
                "mode": "gitops",
                "profile": "rpi4-arm64-4g",
                "registry": "s3://plant-g-mirror/models",
                "gitops": {"repo": str(gitops), "path": "sites/plant-g/values.yaml"},
            },
            {"name": "plant-x", "mode": "bundle", "profile": "fanless-amd64-8g"},
        ]
        (root / "sites.yaml").write_text(yaml.safe_dump(inventory, sort_keys=False))
        yield root, env


def clients(root: Path) -> dict[str, RuntimeClient]:
    sites = yaml.safe_load((root / "sites.yaml").read_text())["sites"]
    return {
        s["name"]: RuntimeClient(s["url"], Path(s["admin_token_file"]).read_text().strip())
        for s in sites
        if s["mode"] == "local"
    }


def serving(root: Path) -> dict[str, str]:
    """The version each local site answers with (a real inference call)."""
    return {name: c.infer(READINGS)["model_version"] for name, c in clients(root).items()}


def gitops_state(root: Path) -> tuple[str, int]:
    values = yaml.safe_load((root / "gitops" / "sites" / "plant-g" / "values.yaml").read_text())
    commits = subprocess.run(
        ["git", "-C", str(root / "gitops"), "rev-list", "--count", "HEAD"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    return values["modelVersion"], int(commits)


def rollout(env: dict[str, str], *args: str) -> tuple[int, dict, str]:
    done = cli(env, "edge", "rollout", *args, "--json")
    return done.returncode, json.loads(done.stdout) if done.stdout.strip() else {}, done.stderr


def test_rollout_goes_pilot_first_then_every_site(world: tuple) -> None:
    root, env = world
    code, result, err = rollout(env, "v0001", "--pilot", "plant-1", "--soak", "1")
    assert code == 0, err
    outcomes = [(s["site"], s["outcome"]) for s in result["sites"]]
    assert outcomes == [
        ("plant-1", "active"),
        ("plant-2", "active"),
        ("plant-3", "active"),
        ("plant-g", "committed"),
        ("plant-x", "skipped"),
    ]
    assert serving(root) == {name: "v0001" for name in LOCAL}
    assert gitops_state(root) == ("v0001", 1)


def test_next_version_rolls_out_with_the_inventory_pilot_and_a_second_gitops_commit(world: tuple) -> None:
    root, env = world
    code, result, err = rollout(
        env, "v0002", "--soak", "1"
    )  # pilot: the inventory's (fleet up marks plant-1)
    assert code == 0, err
    assert result["pilot"] == "plant-1"
    assert serving(root) == {name: "v0002" for name in LOCAL}
    assert gitops_state(root) == ("v0002", 2)


def test_a_pilot_that_refuses_the_version_stops_the_rollout(world: tuple) -> None:
    root, env = world
    code, result, err = rollout(env, "v0003", "--pilot", "plant-1", "--soak", "1")
    assert code == 6, err
    assert "pilot plant-1 refused v0003" in err and "golden outputs" in err
    outcomes = {s["site"]: s["outcome"] for s in result["sites"]}
    assert outcomes == {
        "plant-1": "refused",
        "plant-2": "not reached",
        "plant-3": "not reached",
        "plant-g": "not reached",
        "plant-x": "not reached",
    }
    # Nothing moved: the previous version keeps serving everywhere, and the pilot says why.
    assert serving(root) == {name: "v0002" for name in LOCAL}
    assert gitops_state(root) == ("v0002", 2)
    status = clients(root)["plant-1"].status()
    assert "v0003" not in status["installed"] and "self-test" in (status["last_error"] or "")


def test_rollback_goes_one_version_back_whatever_the_mode(world: tuple) -> None:
    root, env = world
    assert "from v0002 to v0001" in ok(env, "edge", "rollback", "--site", "plant-2")
    assert serving(root)["plant-2"] == "v0001"
    assert serving(root)["plant-3"] == "v0002"
    assert "from v0002 to v0001" in ok(env, "edge", "rollback", "--site", "plant-g")
    assert gitops_state(root) == ("v0001", 3)
    done = cli(env, "edge", "rollback", "--site", "plant-x")
    assert done.returncode == 2 and "--store DIR" in done.stderr


def test_pilot_must_be_observable(world: tuple) -> None:
    _, env = world
    for pilot in ("plant-g", "plant-x"):
        code, _, err = rollout(env, "v0002", "--pilot", pilot, "--soak", "1")
        assert code == 2 and "cannot be observed" in err, err


def test_rollout_refuses_a_version_a_site_cannot_take_before_anything_moves(world: tuple) -> None:
    root, env = world
    publish(root, "v0006", sign_key=None)
    before = serving(root)
    code, _, err = rollout(env, "v0006", "--pilot", "plant-1", "--soak", "1")
    assert code == 5 and "unsigned" in err
    assert serving(root) == before


def test_a_pilot_that_dies_during_the_soak_stops_the_rollout(world: tuple) -> None:
    """Last: it kills plant-1. The pilot takes v0001, then crashes while soaking."""
    root, env = world
    pilot = clients(root)["plant-1"]
    pid = int(pilot.status()["pid"])
    assert serving(root)["plant-1"] == "v0002"
    others, git_before = serving_alive(root), gitops_state(root)
    proc = subprocess.Popen(
        [str(SHOPFLOOR), "edge", "rollout", "v0001", "--pilot", "plant-1", "--soak", "30", "--json"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    watchdog = threading.Timer(120, proc.kill)  # bounded: a hung rollout cannot hang the suite
    watchdog.start()
    try:
        # The rollout says on stderr when the pilot took the version; the soak starts right after.
        assert proc.stderr is not None
        seen = []
        while not any("v0001 verified on the device and active" in line for line in seen):
            line = proc.stderr.readline()
            assert line, ("".join(seen), proc.communicate())
            seen.append(line)
        assert pilot.status()["active"] == "v0001"
        os.kill(pid, signal.SIGKILL)
        out, rest = proc.communicate(timeout=60)
        err = "".join(seen) + rest
    finally:
        watchdog.cancel()
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 6, err
    result = json.loads(out)
    assert "pilot plant-1 unhealthy on v0001" in result["reason"]
    outcomes = {s["site"]: s["outcome"] for s in result["sites"]}
    assert outcomes["plant-1"] == "failed" and "rollback failed too" in result["sites"][0]["detail"]
    assert {outcomes[s] for s in ("plant-2", "plant-3", "plant-g", "plant-x")} == {"not reached"}
    assert serving_alive(root) == others and gitops_state(root) == git_before  # nobody else moved


def serving_alive(root: Path) -> dict[str, str]:
    return {
        name: c.infer(READINGS)["model_version"] for name, c in clients(root).items() if name != "plant-1"
    }
