"""The embedded default: a fleet of simulated factory sites on one laptop.

``fleet up`` starts N ``shopfloor edge serve`` processes on 127.0.0.1, each with its own model
store, port and admin token file (0600), all trusting the development key pair; it returns when
every runtime answers its liveness probe, and records them in the site inventory (mode
``local``) and in a fleet state file beside the stores. ``fleet down`` stops them (SIGTERM to
the process group, then SIGKILL after a grace period) and is safe to repeat.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from shopfloor import settings
from shopfloor.errors import ConflictError, ExternalServiceError, InvalidInputError, NotFoundError
from shopfloor.lineage import write_text_atomic

STATE_FILE = "fleet.json"
#: At most this many simulated sites on one machine (each is a process with its own port).
MAX_SITES = 16
DEFAULT_BASE_PORT = 8091
SITE_PREFIX = "plant"
DEFAULT_PROFILE = "laptop"
READY_TIMEOUT_SECONDS = 60.0
STOP_GRACE_SECONDS = 10.0
LOG_TAIL_BYTES = 2000

Log = Callable[[str], None]


def _quiet(_: str) -> None:
    return None


def default_root() -> Path:
    """Where the fleet's stores, tokens, logs and state live: beside the site inventory."""
    return settings.edge_inventory_path().parent / "fleet"


@dataclass(frozen=True)
class FleetSite:
    name: str
    url: str
    port: int
    pid: int
    store: str
    token_file: str
    log: str
    profile: str = DEFAULT_PROFILE


def serve_command() -> list[str]:
    """The console command ``shopfloor`` of this installation (else ``python -m shopfloor``)."""
    exe = Path(sys.executable).parent / "shopfloor"
    return [str(exe)] if exe.is_file() else [sys.executable, "-m", "shopfloor"]


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((settings.DEFAULT_HOST, 0))
        return int(s.getsockname()[1])


def _port_taken(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        try:
            s.bind((settings.DEFAULT_HOST, port))
        except OSError:
            return True
    return False


def _write_secret(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.unlink(missing_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0), 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(text + "\n")


def _alive(pid: int) -> bool:
    with contextlib.suppress(ChildProcessError, OSError):
        done, _ = os.waitpid(pid, os.WNOHANG)  # reap our own child, else it stays a zombie
        if done == pid:
            return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        return stat.rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return True


def _is_ours(pid: int, store: str) -> bool:
    """The pid still runs our runtime (not a recycled pid of another program)."""
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return _alive(pid)
    # The path as a flag, or inside the JSON argument the runtime re-executes itself with.
    forms = (store.encode(), json.dumps(store)[1:-1].encode())
    return any(form in arg for arg in cmdline for form in forms)


def _live(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/v2/health/live", timeout=1.0) as resp:
            return bool(resp.status == 200)
    except (urllib.error.URLError, OSError, ValueError):
        return False


def _tail(path: Path) -> str:
    try:
        with open(path, "rb") as fh:
            fh.seek(max(0, path.stat().st_size - LOG_TAIL_BYTES))
            lines = fh.read().decode(errors="replace").strip().splitlines()
    except OSError:
        return ""
    return lines[-1] if lines else ""


def read_state(root: Path) -> list[FleetSite]:
    path = Path(root) / STATE_FILE
    if not path.is_file():
        return []
    try:
        data = json.loads(path.read_text())
        return [FleetSite(**entry) for entry in data["sites"]]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise InvalidInputError(f"fleet state {path} is unreadable: {exc}") from None


def _write_state(root: Path, sites: list[FleetSite]) -> None:
    write_text_atomic(
        Path(root) / STATE_FILE,
        json.dumps({"sites": [asdict(s) for s in sites]}, indent=2, sort_keys=True) + "\n",
    )


def up(
    count: int,
    *,
    root: Path | None = None,
    base_port: int = DEFAULT_BASE_PORT,
    inventory: Path | None = None,
    profile: str = DEFAULT_PROFILE,
    trust: Path | None = None,
    timeout: float = READY_TIMEOUT_SECONDS,
    log: Log = _quiet,
) -> list[FleetSite]:
    """Start ``count`` local runtimes and return when all are live. ``base_port`` 0 picks free ports."""
    from shopfloor.edge import signing, sites

    if not 1 <= count <= MAX_SITES:
        raise InvalidInputError(f"--sites must be between 1 and {MAX_SITES}, got {count}")
    root = Path(root) if root is not None else default_root()
    if any(_alive(s.pid) and _is_ours(s.pid, s.store) for s in read_state(root)):
        raise ConflictError(f"a fleet is already running from {root}: shopfloor edge fleet down first")
    ports = [_free_port() if base_port == 0 else base_port + i for i in range(count)]
    if base_port and not 1024 <= base_port <= 65535 - count:
        raise InvalidInputError(f"--base-port {base_port} leaves no room for {count} ports")
    taken = [p for p in ports if base_port and _port_taken(p)]
    if taken:
        raise ConflictError(
            f"port(s) {taken} on {settings.DEFAULT_HOST} are in use: choose another --base-port"
        )
    if trust is None:
        trust = signing.ensure_dev_keypair()[1]
    root.mkdir(parents=True, exist_ok=True)
    started: list[FleetSite] = []
    procs: list[subprocess.Popen[bytes]] = []
    try:
        for i, port in enumerate(ports):
            name = f"{SITE_PREFIX}-{i + 1}"
            home = root / name
            store = home / "store"
            store.mkdir(parents=True, exist_ok=True)
            token_file = home / "admin.token"
            _write_secret(token_file, secrets.token_urlsafe(32))
            log_path = home / "runtime.log"
            cmd = [
                *serve_command(),
                "edge",
                "serve",
                "--store",
                str(store),
                "--host",
                settings.DEFAULT_HOST,
                "--port",
                str(port),
                "--profile",
                profile,
                "--admin-token-file",
                str(token_file),
                "--trust",
                str(trust),
            ]
            with open(log_path, "ab") as out:
                proc = subprocess.Popen(
                    cmd,
                    stdin=subprocess.DEVNULL,
                    stdout=out,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                )
            procs.append(proc)
            started.append(
                FleetSite(
                    name,
                    f"http://{settings.DEFAULT_HOST}:{port}",
                    port,
                    proc.pid,
                    str(store),
                    str(token_file),
                    str(log_path),
                    profile,
                )
            )
        deadline = time.monotonic() + timeout
        pending = list(zip(started, procs, strict=True))
        while pending:
            for site, proc in list(pending):
                if proc.poll() is not None:
                    raise ExternalServiceError(
                        f"site {site.name} exited with code {proc.returncode} before it "
                        f"was ready: {_tail(Path(site.log))}"
                    )
                if _live(site.url):
                    pending.remove((site, proc))
                    log(f"{site.name} live at {site.url} (pid {site.pid})")
            if pending and time.monotonic() > deadline:
                raise ExternalServiceError(
                    f"site(s) {[s.name for s, _ in pending]} not live after {timeout:.0f} s"
                )
            if pending:
                time.sleep(0.1)
        _write_state(root, started)
        inv = sites.load_inventory(inventory) if _inventory_exists(inventory) else sites.Inventory(sites=())
        mine = {s.name for s in started}
        kept = [s for s in inv.sites if s.name not in mine]
        new = [
            sites.Site(
                name=s.name,
                mode="local",
                profile=profile,
                url=s.url,
                admin_token_file=s.token_file,
                store=s.store,
                pilot=(i == 0),
            )
            for i, s in enumerate(started)
        ]
        sites.save_inventory(sites.Inventory(sites=tuple(kept + new)), inventory)
    except BaseException:
        _stop([s.pid for s in started], log=log)
        raise
    return started


def _inventory_exists(path: Path | None) -> bool:
    return (Path(path).expanduser() if path is not None else settings.edge_inventory_path()).is_file()


def _stop(pids: list[int], *, grace: float = STOP_GRACE_SECONDS, log: Log = _quiet) -> None:
    for pid in pids:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pid, signal.SIGTERM)
    deadline = time.monotonic() + grace
    waiting = [p for p in pids if _alive(p)]
    while waiting and time.monotonic() < deadline:
        time.sleep(0.05)
        waiting = [p for p in waiting if _alive(p)]
    for pid in waiting:
        log(f"pid {pid} ignored SIGTERM for {grace:.0f} s: SIGKILL")
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pid, signal.SIGKILL)
        end = time.monotonic() + 5
        while _alive(pid) and time.monotonic() < end:
            time.sleep(0.05)


def status(root: Path | None = None) -> list[dict[str, Any]]:
    """Per site: name, url, pid, running, health, active version and the LiteRT format it runs
    in (as the runtime reports)."""
    from shopfloor.edge.client import RuntimeClient

    root = Path(root) if root is not None else default_root()
    out = []
    for site in read_state(root):
        running = _alive(site.pid) and _is_ours(site.pid, site.store)
        entry: dict[str, Any] = {
            "name": site.name,
            "url": site.url,
            "pid": site.pid,
            "running": running,
            "profile": site.profile,
            "active": None,
            "format": None,
            "health": "down",
            "last_error": None,
        }
        if running:
            client = RuntimeClient(site.url, token=Path(site.token_file).read_text().strip())
            try:
                st = client.status()
                entry["active"] = st.get("active")
                entry["format"] = st.get("format")
                entry["last_error"] = st.get("last_error")
                entry["health"] = "ready" if client.health() else "live (no active version)"
            except Exception as exc:
                entry["health"] = f"unreachable: {str(exc)[:120]}"
        out.append(entry)
    return out


def down(root: Path | None = None, *, inventory: Path | None = None, log: Log = _quiet) -> list[str]:
    """Stop every runtime of the fleet; forget them in the inventory. Idempotent."""
    from shopfloor.edge import sites

    root = Path(root) if root is not None else default_root()
    fleet = read_state(root)
    ours = [s for s in fleet if _alive(s.pid) and _is_ours(s.pid, s.store)]
    _stop([s.pid for s in ours], log=log)
    (root / STATE_FILE).unlink(missing_ok=True)
    if fleet and _inventory_exists(inventory):
        names = {s.name for s in fleet}
        inv = sites.load_inventory(inventory)
        sites.save_inventory(
            sites.Inventory(sites=tuple(s for s in inv.sites if s.name not in names)), inventory
        )
    return [s.name for s in ours]


def remove(root: Path) -> None:
    """Delete a stopped fleet's stores and tokens (tests and ``fleet down --purge``)."""
    if read_state(root):
        raise ConflictError(f"fleet at {root} is still recorded as running: fleet down first")
    if not Path(root).exists():
        raise NotFoundError(f"no fleet at {root}")
    shutil.rmtree(root)
