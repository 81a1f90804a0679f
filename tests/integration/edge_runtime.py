"""Run the real edge runtime (the ``shopfloor`` console script) on loopback, with signed versions.

Shared by the edge runtime tests and the benchmark: a registry holding two servable, signed
versions of the real trained model (``tests/fixtures/registry-schema1``; v0002 differs in its
decision threshold, so every answer shows which version made it), a trust file, an admin
token, and a context manager that starts ``shopfloor edge serve`` in its own process group
and always stops it.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from shopfloor import contract
from shopfloor.lineage import write_bytes_atomic

REPO = Path(__file__).resolve().parents[2]
SHOPFLOOR = REPO / ".venv" / "bin" / "shopfloor"
SOURCE_VERSION = REPO / "tests" / "fixtures" / "registry-schema1" / "ai4i-failure" / "v0001"
MODEL = "ai4i-failure"
TOKEN = "edge-test-token-0123456789abcdef"
#: v0002's threshold: low enough that some ordinary readings flip to "failure".
SECOND_THRESHOLD = 0.01


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass(frozen=True)
class SignedVersions:
    """A registry with signed versions, the key that signed them and a trust file for it."""

    registry: Path
    trust: Path
    private_key: Path
    token_file: Path
    thresholds: dict[str, float]
    #: With ``make_signed_versions(tree=True)``: v0003, a tree-like version (float32 only,
    #: family hist-gbt; :func:`tests.fixtures.versions.as_tree_version`), v0001's threshold.
    tree: str | None = None

    def fetch(self, version: str, dest: Path) -> tuple[Path, list[contract.SignatureDoc]]:
        """A version directory as the registry stores it, and its signatures."""
        from shopfloor.registry import open_registry

        reg = open_registry(self.registry)
        return reg.fetch(version, dest / version), reg.signatures(version)


def _copy_without_manifest(dest: Path, threshold: float | None = None) -> Path:
    shutil.copytree(SOURCE_VERSION, dest)
    (dest / contract.MANIFEST).unlink()
    if threshold is not None:
        decision = contract.load_decision(dest)
        data = {**decision.to_dict(), "threshold": threshold}
        write_bytes_atomic(dest / contract.DECISION, contract.dumps(data).encode())
    return dest


def make_signed_versions(root: Path, *, tree: bool = False) -> SignedVersions:
    """v0001 (the trained model) and v0002 (same model, threshold SECOND_THRESHOLD), both signed;
    with ``tree``, also v0003: v0001 as a tree ensemble ships (float32 only, hist-gbt), signed."""
    from shopfloor.edge.signing import TrustStore, generate_keypair, load_public_key, sign_manifest
    from shopfloor.registry import open_registry
    from tests.fixtures.versions import as_tree_version

    root.mkdir(parents=True, exist_ok=True)
    pair = generate_keypair(root / "keys", "edge-test")
    trust = root / "trust.yaml"
    TrustStore().with_key(load_public_key(pair.public_path), "edge tests").save(trust)
    token_file = root / "admin.token"
    token_file.write_text(TOKEN + "\n")
    reg = open_registry(root / "registry")
    thresholds = {}
    for n, threshold in ((1, None), (2, SECOND_THRESHOLD)):
        source = _copy_without_manifest(root / f"source-{n}", threshold)
        manifest = reg.publish(source, run_id=f"edge-test-{n}", version=f"v000{n}")
        reg.add_signature(
            manifest.version, sign_manifest(reg.manifest_bytes(manifest.version), pair.private_path)
        )
        thresholds[manifest.version] = float(manifest.threshold)
    tree_version = None
    if tree:
        source = as_tree_version(_copy_without_manifest(root / "source-tree"))
        tree_version = reg.publish(source, run_id="edge-test-tree", version="v0003").version
        reg.add_signature(tree_version, sign_manifest(reg.manifest_bytes(tree_version), pair.private_path))
    return SignedVersions(root / "registry", trust, pair.private_path, token_file, thresholds, tree_version)


@dataclass(frozen=True)
class Runtime:
    url: str
    port: int
    proc: subprocess.Popen[bytes]
    log_path: Path
    store: Path

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")


def _ready(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/v2/health/ready", timeout=1) as response:
            return bool(response.status == 200)
    except OSError:
        return False


def stop(proc: subprocess.Popen[bytes]) -> None:
    """SIGTERM the runtime's process group, SIGKILL it if it lingers."""
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


@contextlib.contextmanager
def running_runtime(
    store: Path,
    log_dir: Path,
    *flags: str,
    trust: Path,
    timeout: float = 60,
    wait_ready: bool = True,
    command: tuple[str, ...] = (str(SHOPFLOOR),),
    env: dict[str, str] | None = None,
) -> Iterator[Runtime]:
    """``shopfloor edge serve --store STORE FLAGS`` on a free loopback port, stopped afterwards."""
    port = free_port()
    log_path = log_dir / f"edge-{port}.log"
    cmd = [
        *command,
        "edge",
        "serve",
        "--store",
        str(store),
        "--port",
        str(port),
        "--trust",
        str(trust),
        *flags,
    ]
    with log_path.open("wb") as log:  # a file, not a pipe: an unread pipe blocks the server
        proc = subprocess.Popen(
            cmd,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", **(env or {})},
        )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + timeout
        while wait_ready and not _ready(url):
            if proc.poll() is not None:
                raise AssertionError(
                    f"edge runtime exited with {proc.returncode}:\n{log_path.read_text()[-4000:]}"
                )
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"edge runtime not ready in {timeout:.0f} s:\n{log_path.read_text()[-4000:]}"
                )
            time.sleep(0.05)
        yield Runtime(url, port, proc, log_path, store)
    finally:
        stop(proc)
