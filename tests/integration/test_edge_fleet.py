"""The laptop fleet and ``edge push``: three real runtimes on loopback, real signed versions.

Everything goes through the ``shopfloor`` console command as a user types it; the registry,
inventory and key directory are private to the test (environment variables).
"""

from __future__ import annotations

import json
import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from shopfloor.edge.client import RuntimeClient
from tests.integration.edge_fleet import (
    READINGS,
    cli,
    dev_key,
    fleet_env,
    fleet_pids,
    ok,
    publish,
    registry_with_v0001,
    running_fleet,
)


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, dict[str, str], list[dict]]]:
    root = tmp_path_factory.mktemp("fleet")
    env = fleet_env(root)
    registry_with_v0001(root)
    with running_fleet(root, env, 3) as status:
        # The fleet made (and trusts) the development key: sign the trained version with it.
        ok(env, "models", "sign", "v0001", "--key", str(dev_key(root)))
        yield root, env, status


def site(root: Path, name: str) -> dict:
    sites = yaml.safe_load((root / "sites.yaml").read_text())["sites"]
    return next(s for s in sites if s["name"] == name)


def client(root: Path, name: str) -> RuntimeClient:
    entry = site(root, name)
    return RuntimeClient(entry["url"], Path(entry["admin_token_file"]).read_text().strip())


def test_fleet_up_starts_three_live_sites_with_private_tokens_and_an_inventory(world: tuple) -> None:
    root, _, status = world
    assert [s["name"] for s in status] == ["plant-1", "plant-2", "plant-3"]
    assert len({s["url"] for s in status}) == 3 and all(
        s["url"].startswith("http://127.0.0.1:") for s in status
    )
    assert all(s["running"] and s["active"] is None for s in status)
    assert [s["pid"] for s in status] == fleet_pids(root)
    sites = yaml.safe_load((root / "sites.yaml").read_text())["sites"]
    assert [(s["name"], s["mode"]) for s in sites] == [
        ("plant-1", "local"),
        ("plant-2", "local"),
        ("plant-3", "local"),
    ]
    for s in sites:
        assert stat.S_IMODE(os.stat(s["admin_token_file"]).st_mode) == 0o600
    # Admin is on and authenticated: no token, no status.
    with pytest.raises(Exception, match="401"):
        RuntimeClient(status[0]["url"]).status()


def test_push_a_signed_version_then_call_the_site(world: tuple) -> None:
    root, env, _ = world
    out = ok(env, "edge", "push", "--site", "plant-2")  # no VERSION: the edge champion, else the newest
    assert "v0001" in out
    answer = client(root, "plant-2").infer(READINGS)
    assert answer["model_version"] == "v0001"
    outputs = {o["name"]: o["data"] for o in answer["outputs"]}
    assert outputs["failure_predicted"] == [False, True]
    status = {
        s["name"]: s
        for s in json.loads(ok(env, "edge", "fleet", "status", "--json", "--root", str(root / "fleet")))
    }
    assert status["plant-2"]["active"] == "v0001" and status["plant-2"]["health"] == "ready"
    assert status["plant-1"]["active"] is None  # a push reaches one site only


def test_unsigned_version_is_refused_before_it_reaches_the_site(world: tuple) -> None:
    root, env, _ = world
    publish(root, "v0004", sign_key=None)
    done = cli(env, "edge", "push", "v0004", "--site", "plant-3")
    assert done.returncode == 5, done.stderr
    assert "unsigned" in done.stderr and "shopfloor models sign v0004" in done.stderr
    assert client(root, "plant-3").status()["installed"] == []


def test_version_signed_by_a_key_the_site_does_not_trust_is_refused_on_the_site(
    world: tuple, tmp_path: Path
) -> None:
    root, env, _ = world
    ok(env, "keys", "generate", "--out", str(tmp_path), "--name", "stranger")
    publish(root, "v0005", sign_key=tmp_path / "stranger.key")
    done = cli(env, "edge", "push", "v0005", "--site", "plant-2")
    assert done.returncode != 0 and "unknown key" in done.stderr, done.stderr
    status = client(root, "plant-2").status()
    assert status["active"] == "v0001" and "v0005" not in status["installed"]
    assert client(root, "plant-2").infer(READINGS)["model_version"] == "v0001"


def test_push_that_breaks_the_site_profile_is_refused_with_figures(world: tuple, tmp_path: Path) -> None:
    root, env, _ = world
    tiny = tmp_path / "tiny.yaml"
    tiny.write_text(
        yaml.safe_dump(
            {
                "name": "tiny-box",
                "arch": "amd64",
                "cores": 1,
                "memory_limit_mib": 64,
                "max_model_bytes": 1000,
                "latency_budget_us": 100,
                "variant": "int8",
            }
        )
    )
    inventory = tmp_path / "sites.yaml"
    entry = {**site(root, "plant-3"), "profile": str(tiny)}
    inventory.write_text(yaml.safe_dump({"sites": [entry]}))
    done = cli(env, "edge", "push", "v0001", "--site", "plant-3", "--inventory", str(inventory))
    assert done.returncode == 6, done.stderr
    assert "over the profile's largest model file 1,000 bytes" in done.stderr
    assert client(root, "plant-3").status()["installed"] == []


def test_air_gapped_site_is_refused_with_advice(world: tuple, tmp_path: Path) -> None:
    _, env, _ = world
    inventory = tmp_path / "sites.yaml"
    inventory.write_text(
        yaml.safe_dump({"sites": [{"name": "plant-x", "mode": "bundle", "profile": "fanless-amd64-8g"}]})
    )
    done = cli(env, "edge", "push", "--site", "plant-x", "--inventory", str(inventory))
    assert done.returncode == 2 and "air-gapped: use shopfloor edge bundle export" in done.stderr


def test_unknown_site_is_one_line_not_found(world: tuple) -> None:
    _, env, _ = world
    done = cli(env, "edge", "push", "--site", "nowhere")
    assert done.returncode == 3 and done.stderr.count("\n") == 1 and "Traceback" not in done.stderr


def test_fleet_down_stops_every_runtime_and_is_idempotent(tmp_path: Path) -> None:
    env = fleet_env(tmp_path)
    with running_fleet(tmp_path, env, 2):
        pids = fleet_pids(tmp_path)
        assert len(pids) == 2
        assert "stopped plant-1, plant-2" in ok(
            env, "edge", "fleet", "down", "--root", str(tmp_path / "fleet")
        )
        for pid in pids:
            assert (
                not Path(f"/proc/{pid}").exists() or "Z" in Path(f"/proc/{pid}/stat").read_text().split()[2]
            )
        assert "no fleet running" in ok(env, "edge", "fleet", "down", "--root", str(tmp_path / "fleet"))
        assert yaml.safe_load((tmp_path / "sites.yaml").read_text())["sites"] == []
        assert (
            json.loads(ok(env, "edge", "fleet", "status", "--json", "--root", str(tmp_path / "fleet"))) == []
        )


def test_second_fleet_up_on_a_running_fleet_is_a_conflict(tmp_path: Path) -> None:
    env = fleet_env(tmp_path)
    with running_fleet(tmp_path, env, 1):
        done = cli(
            env, "edge", "fleet", "up", "--sites", "1", "--base-port", "0", "--root", str(tmp_path / "fleet")
        )
        assert done.returncode == 4 and "already running" in done.stderr


def test_bundle_export_and_import_into_a_fleet_site_and_a_k3s_root(world: tuple, tmp_path: Path) -> None:
    root, env, _ = world
    path = tmp_path / "v0001.bundle"
    assert "v0001" in ok(env, "edge", "bundle", "export", "v0001", "-o", str(path), "--profile", "laptop")
    out = ok(env, "edge", "bundle", "import", str(path), "--site", "plant-1")
    assert "active v0001" in out
    assert client(root, "plant-1").infer(READINGS)["model_version"] == "v0001"
    ok(env, "edge", "bundle", "import", str(path), "--k3s-root", str(tmp_path / "k3s"), "--profile", "laptop")
    assert (tmp_path / "k3s" / "storage" / "shopfloor" / "registry" / "ai4i-failure" / "v0001").is_dir()
    # A damaged copy: one line, exit 5, nothing installed.
    cut = tmp_path / "cut.bundle"
    cut.write_bytes(path.read_bytes()[:50_000])
    done = cli(env, "edge", "bundle", "import", str(cut), "--store", str(tmp_path / "store"))
    assert done.returncode == 5 and "truncated" in done.stderr and done.stderr.count("\n") == 1, done.stderr
    assert not (tmp_path / "store").exists()
    done = cli(env, "edge", "bundle", "import", str(path))
    assert done.returncode == 2 and "exactly one of --site" in done.stderr
