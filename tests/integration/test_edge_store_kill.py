"""SIGKILL at each named step of an install + activate: the store reopens on a complete, verified
version and an empty incoming/ (the old version, or the new one only if the switch completed)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from shopfloor import settings
from shopfloor.edge.signing import write_signature_dir
from shopfloor.edge.store import FAULT_STEPS, INCOMING, ModelStore
from tests.fixtures.signed import SignedRegistry, signed_registry

REPO = Path(__file__).resolve().parents[2]

# The child installs and activates through the store API, as the runtime's admin upload does.
CHILD = """
import sys
from pathlib import Path
from typing import Any
from shopfloor.edge.signing import TrustStore, read_signature_dir
from shopfloor.edge.store import ModelStore
root, source, trust = map(Path, sys.argv[1:4])
store = ModelStore(root, trust=TrustStore.load(trust))
store.install(source, read_signature_dir(source.parent / "signatures"))
store.activate(source.name)
print("completed", store.active())
"""


@pytest.fixture(scope="module")
def signed(tmp_path_factory: pytest.TempPathFactory) -> SignedRegistry:
    sr = signed_registry(tmp_path_factory.mktemp("kill-registry"))
    sr.publish(0)
    sr.publish(1)
    return sr


def _run_child(root: Path, source: Path, trust: Path, fault: str | None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != settings.EDGE_FAULT.name}
    if fault:
        env[settings.EDGE_FAULT.name] = fault
    return subprocess.run([sys.executable, "-c", CHILD, str(root), str(source), str(trust)], cwd=REPO,
                          env=env, capture_output=True, text=True, timeout=120, check=False)


def _prepare(tmp_path: Path, signed: SignedRegistry) -> tuple[Path, Path]:
    root = tmp_path / "store"
    store = ModelStore(root, trust=signed.trust)
    store.install(*signed.fetch("v0001", tmp_path / "dl-v0001"))
    store.activate("v0001")
    source, sigs = signed.fetch("v0002", tmp_path / "upload" / "v0002")
    write_signature_dir(tmp_path / "upload" / "signatures", sigs)
    return root, source


@pytest.mark.parametrize("step", FAULT_STEPS)
def test_sigkill_at_each_step_leaves_a_complete_verified_active_version(
        step: str, tmp_path: Path, signed: SignedRegistry) -> None:
    root, source = _prepare(tmp_path, signed)
    done = _run_child(root, source, signed.trust_path, step)
    assert done.returncode == -signal.SIGKILL, (done.returncode, done.stdout, done.stderr[-2000:])
    assert "completed" not in done.stdout

    store = ModelStore(root, trust=signed.trust)
    report = store.recover()
    assert list((root / INCOMING).iterdir()) == []
    assert store.active() == "v0001"  # the switch never completed
    assert report.reason is None
    store.verify("v0001")
    if step == "during_switch":  # installed completely, just not switched to
        assert store.installed() == ["v0001", "v0002"]
        store.verify("v0002")
        assert store.activate("v0002").active == "v0002"
    else:
        assert store.installed() == ["v0001"]
    assert not list(root.glob(".state.json.*"))


def test_without_a_fault_the_same_child_switches(tmp_path: Path, signed: SignedRegistry) -> None:
    root, source = _prepare(tmp_path, signed)
    done = _run_child(root, source, signed.trust_path, None)
    assert done.returncode == 0, done.stderr[-2000:]
    store = ModelStore(root, trust=signed.trust)
    assert store.recover().reason is None
    assert store.active() == "v0002" and store.verify("v0002") == signed.key.key_id


# -- the real runtime (`shopfloor edge serve`) killed during a swap, then restarted ------------------
@pytest.fixture(scope="module")
def runtime_versions(tmp_path_factory: pytest.TempPathFactory) -> Any:
    from tests.integration.edge_runtime import make_signed_versions

    return make_signed_versions(tmp_path_factory.mktemp("kill-runtime"))


@pytest.mark.parametrize("step", FAULT_STEPS)
def test_the_runtime_killed_during_a_swap_restarts_on_a_verified_version(
        step: str, tmp_path: Path, runtime_versions: Any) -> None:
    from shopfloor.edge.client import RuntimeClient
    from shopfloor.edge.signing import TrustStore
    from shopfloor.errors import ExternalServiceError
    from tests.integration.edge_runtime import running_runtime

    versions = runtime_versions
    root = tmp_path / "store"
    store = ModelStore(root, trust=TrustStore.load(versions.trust))
    store.install(*versions.fetch("v0001", tmp_path / "dl"))
    store.activate("v0001")
    v2_dir, v2_signatures = versions.fetch("v0002", tmp_path / "dl")
    admin = ("--admin-token-file", str(versions.token_file))

    with running_runtime(root, tmp_path, *admin, trust=versions.trust,
                         env={settings.EDGE_FAULT.name: step}) as edge:
        client = RuntimeClient.with_token_file(edge.url, versions.token_file)
        assert client.metadata()["versions"] == ["v0001"]
        with pytest.raises(ExternalServiceError, match="not reachable"):
            client.upload(v2_dir, v2_signatures, activate=True)
        assert edge.proc.wait(timeout=30) == -signal.SIGKILL

    with running_runtime(root, tmp_path, *admin, trust=versions.trust) as edge:
        client = RuntimeClient.with_token_file(edge.url, versions.token_file)
        assert client.health() and client.metadata()["versions"] == ["v0001"]
        status = client.status()
        assert status["active"] == "v0001"
        assert status["installed"] == (["v0001", "v0002"] if step == "during_switch" else ["v0001"])
        assert list((root / INCOMING).iterdir()) == []
        # The site still takes the new version afterwards.
        client.upload(v2_dir, v2_signatures, activate=True)
        assert client.metadata()["versions"] == ["v0002"]
    assert ModelStore(root, trust=TrustStore.load(versions.trust)).verify("v0002")
