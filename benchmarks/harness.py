"""Shared load-test harness of the serving benchmarks: real servers, wrk, pinned cores.

Why not a Python client: with one, the cloud ceiling measured here swung between 589 and
1,480 req/s from run to run (the client, not the server, set the pace). So: ``wrk`` (from
Debian: ``apt-get install -y wrk``) drives the load; each server runs in its own process
group pinned to one core and wrk to another (``taskset``), so they do not fight for a core;
servers are measured in interleaved rounds (A, B, C, A, B, C, ...) so a noisy neighbour hits
all of them alike, and the median round is reported. Besides wrk's req/s and latency, the
server's own CPU time per request (utime + stime from ``/proc/<pid>/stat`` around a run) is
steadier under noise, and its resident memory is read from ``/proc/<pid>/status``.

Also the KServe no-op model server (the ceiling every server is compared with): run as
``python benchmarks/harness.py --serve-kserve {noop|model|both} MODEL_DIR PORT``.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))
MODEL, NOOP = "ai4i-failure", "noop"
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def require_wrk() -> str:
    path = shutil.which("wrk")
    if path is None:
        sys.exit("this benchmark needs wrk (a real HTTP load generator): apt-get install -y wrk")
    return path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def cores() -> tuple[str | None, str | None]:
    """(server core, load-generator core): the first two CPUs this process may use, if two."""
    cpus = sorted(os.sched_getaffinity(0))
    if len(cpus) < 2 or shutil.which("taskset") is None:
        return None, None
    return str(cpus[0]), str(cpus[1])


def _pinned(cmd: Sequence[str], core: str | None) -> list[str]:
    return ["taskset", "-c", core, *cmd] if core is not None else list(cmd)


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process (all its threads) so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def ready(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/v2/health/ready", timeout=1) as response:
            return bool(response.status == 200)
    except OSError:
        return False


@dataclass
class Server:
    """One server under test: how to start it and where it answers."""

    name: str
    cmd: list[str]
    infer_path: str
    port: int
    env: dict[str, str] = field(default_factory=dict)
    proc: subprocess.Popen[bytes] | None = None
    cold_start: float = float("nan")
    log: Path | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def start(self, core: str | None, log_dir: Path, timeout: float = 120) -> None:
        """Start pinned to ``core``; cold start = spawn to the first ready answer."""
        self.log = log_dir / f"{self.name}.log"
        with self.log.open("wb") as out:
            began = time.perf_counter()
            self.proc = subprocess.Popen(
                _pinned(self.cmd, core),
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                env={**os.environ, **self.env},
            )
        deadline = began + timeout
        while not ready(self.url):
            if self.proc.poll() is not None or time.perf_counter() > deadline:
                self.stop()
                tail = self.log.read_text(errors="replace")[-3000:]
                raise RuntimeError(f"{self.name} did not become ready:\n{tail}")
            time.sleep(0.005)
        self.cold_start = time.perf_counter() - began

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGTERM)
        try:
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()


@contextlib.contextmanager
def running(servers: Sequence[Server], core: str | None, log_dir: Path) -> Iterator[None]:
    """Start every server (one at a time: cold starts do not overlap), stop all afterwards."""
    try:
        for server in servers:
            server.start(core, log_dir)
        yield
    finally:
        for server in servers:
            server.stop()


def cold_starts(server: Server, core: str | None, log_dir: Path, repeats: int) -> list[float]:
    """Start and stop ``server`` ``repeats`` times: seconds from spawn to ready, each time."""
    times = []
    for _ in range(repeats):
        try:
            server.start(core, log_dir)
            times.append(server.cold_start)
        finally:
            server.stop()
    return times


@dataclass(frozen=True)
class WrkResult:
    requests: int
    seconds: float
    rps: float
    p50_ms: float
    p99_ms: float
    errors: int
    cpu_us_per_request: float


_UNITS = {"us": 1e-3, "ms": 1.0, "s": 1e3, "m": 60e3}


def _ms(text: str) -> float:
    match = re.fullmatch(r"([\d.]+)(us|ms|s|m)", text)
    if not match:
        raise ValueError(f"unexpected wrk latency {text!r}")
    return float(match.group(1)) * _UNITS[match.group(2)]


def parse_wrk(output: str) -> tuple[int, float, float, float, float, int]:
    """(requests, seconds, req/s, p50 ms, p99 ms, errors) from ``wrk --latency`` output."""
    total = re.search(r"(\d+) requests in ([\d.]+)(ms|s|m),", output)
    rps = re.search(r"Requests/sec:\s+([\d.]+)", output)
    p50 = re.search(r"^\s+50%\s+(\S+)", output, re.M)
    p99 = re.search(r"^\s+99%\s+(\S+)", output, re.M)
    if not (total and rps and p50 and p99):
        raise RuntimeError(f"could not read wrk's output:\n{output[-2000:]}")
    seconds = _ms(total.group(2) + total.group(3)) / 1000
    errors = sum(int(n) for n in re.findall(r"Non-2xx or 3xx responses: (\d+)", output))
    socket_errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", output)
    if socket_errors:
        errors += sum(int(n) for n in socket_errors.groups())
    return int(total.group(1)), seconds, float(rps.group(1)), _ms(p50.group(1)), _ms(p99.group(1)), errors


_LUA = """wrk.method = "POST"
local f = io.open("{body}", "rb")
wrk.body = f:read("*all")
f:close()
wrk.headers["Content-Type"] = "application/json"
"""


def wrk(
    server: Server,
    body_file: Path,
    *,
    connections: int,
    seconds: float,
    core: str | None,
    wrk_path: str = "wrk",
) -> WrkResult:
    """One wrk run of ``seconds`` against the server's infer path; the server's CPU time around it."""
    script = body_file.with_suffix(".lua")
    script.write_text(_LUA.format(body=body_file))
    cmd = _pinned(
        [
            wrk_path,
            "-t1",
            f"-c{connections}",
            f"-d{seconds:g}s",
            "--latency",
            "-s",
            str(script),
            server.url + server.infer_path,
        ],
        core,
    )
    before = cpu_seconds(server.pid)
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=seconds + 60, check=True).stdout
    used = cpu_seconds(server.pid) - before
    requests, elapsed, rps, p50, p99, errors = parse_wrk(out)
    return WrkResult(requests, elapsed, rps, p50, p99, errors, used / max(requests, 1) * 1e6)


def median_result(results: Sequence[WrkResult]) -> WrkResult:
    """Medians of each figure over the rounds (errors summed)."""
    return WrkResult(
        requests=int(statistics.median(r.requests for r in results)),
        seconds=statistics.median(r.seconds for r in results),
        rps=statistics.median(r.rps for r in results),
        p50_ms=statistics.median(r.p50_ms for r in results),
        p99_ms=statistics.median(r.p99_ms for r in results),
        errors=sum(r.errors for r in results),
        cpu_us_per_request=statistics.median(r.cpu_us_per_request for r in results),
    )


def v2_body(batch: int, offset: int = 0) -> bytes:
    """A V2 JSON request of ``batch`` real AI4I rows (the vendored table)."""
    from shopfloor.data import loader, schema

    frame = loader.load().frame
    start = offset % (len(frame) - batch)
    rows = frame.iloc[start : start + batch]
    return json.dumps(
        {
            "inputs": [
                {
                    "name": n,
                    "shape": [batch],
                    "datatype": "BYTES" if n == schema.PRODUCT_TYPE else "FP64",
                    "data": rows[n].tolist(),
                }
                for n in schema.INPUT_COLUMNS
            ]
        }
    ).encode()


def check_answers(server: Server, body: bytes) -> None:
    """One request by hand before measuring: a 200 with the two outputs, or stop."""
    req = urllib.request.Request(
        server.url + server.infer_path, data=body, method="POST", headers={"content-type": "application/json"}
    )
    with urllib.request.urlopen(req, timeout=30) as response:
        document = json.loads(response.read())
    names = [o["name"] for o in document["outputs"]]
    if names != ["failure_probability", "failure_predicted"]:
        raise RuntimeError(f"{server.name} answered {names}")


def body_files(directory: Path, batches: Sequence[int]) -> dict[int, Path]:
    files = {}
    for batch in batches:
        path = directory / f"body-{batch}.json"
        path.write_bytes(v2_body(batch, offset=batch * 7))
        files[batch] = path
    return files


def kserve_server(name: str, which: str, model_dir: Path, port: int | None = None) -> Server:
    """The KServe model server of the cloud benchmark: ``noop``, the failure ``model``, or ``both``."""
    port = port or free_port()
    path = f"/v2/models/{NOOP if which == 'noop' else MODEL}/infer"
    return Server(
        name,
        [sys.executable, str(Path(__file__).resolve()), "--serve-kserve", which, str(model_dir), str(port)],
        path,
        port,
        env={"TF_CPP_MIN_LOG_LEVEL": "2"},
    )


def serve_kserve(which: str, model_dir: str, port: int) -> None:
    """Server mode (in the subprocess): KServe's PredictorServer with the no-op model (the ceiling:
    the same response tensors, no decoding, features, inference or metrics: what remains is
    kserve + FastAPI + uvicorn + JSON), the failure model, or both, with default logging."""
    import logging

    import numpy as np
    from kserve import Model
    from kserve.protocol.infer_type import InferRequest

    from shopfloor.serving import FailureModel, PredictorServer, codec

    class NoOpModel(Model):
        def __init__(self, name: str) -> None:
            super().__init__(name)
            self.ready = True

        def predict(self, payload: InferRequest, headers: Any = None, response_headers: Any = None) -> Any:
            rows = int(payload.inputs[0].shape[0])
            return codec.encode_v2(payload, self.name, "0", np.zeros(rows), np.zeros(rows, bool))

    logging.basicConfig(level=logging.WARNING)
    models: list[Any] = []
    if which in ("noop", "both"):
        models.append(NoOpModel(NOOP))
    if which in ("model", "both"):
        model = FailureModel(MODEL, model_dir)  # the version's own edge format
        model.load()
        models.append(model)
    PredictorServer(models, http_port=port, grpc_port=None).run()


def load_average() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


def table(rows: Sequence[Sequence[Any]], header: Sequence[str]) -> str:
    cells = [[str(c) for c in header], *[[str(c) for c in row] for row in rows]]
    widths = [max(len(r[i]) for r in cells) for i in range(len(header))]
    lines = [
        "  ".join(c.rjust(w) if i else c.ljust(w) for i, (c, w) in enumerate(zip(row, widths, strict=True)))
        for row in cells
    ]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def scratch(prefix: str) -> tempfile.TemporaryDirectory[str]:
    return tempfile.TemporaryDirectory(prefix=prefix)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description="server mode of the benchmark harness")
    parser.add_argument("--serve-kserve", nargs=3, metavar=("WHICH", "MODEL_DIR", "PORT"), required=True)
    args = parser.parse_args()
    which, model_dir, port = args.serve_kserve
    if which not in ("noop", "model", "both"):
        sys.exit(f"--serve-kserve: WHICH must be noop, model or both, got {which!r}")
    serve_kserve(which, model_dir, int(port))
