"""V2 REST throughput and latency of the predictor vs. the framework ceiling, on loopback.

Why a ceiling: most of a small request's time is kserve/FastAPI/uvicorn (HTTP parsing,
pydantic validation, InferRequest building, JSON encoding), which our code cannot change.
A no-op ``kserve.Model`` (returns outputs of the right shape, computes nothing) served by the
SAME server process and stack measures that ceiling in the same run, so the ratio isolates
what decoding, features, LiteRT and metrics cost. Goal: >= 90 % of the ceiling's throughput at
batch 1 and 64, p99 <= ceiling p99 + 2 ms.

    .venv/bin/python benchmarks/bench_serving.py                    # newest run or a tiny model
    .venv/bin/python benchmarks/bench_serving.py --model-dir DIR --requests 3000 --concurrency 8

Bounded: a fixed number of requests per cell (after a warm-up); the server subprocess is
stopped at the end. Client and server share the machine, as they do for the ceiling.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
import numpy as np

REPO = Path(__file__).resolve().parents[1]
MODEL, NOOP = "ai4i-failure", "noop"


def _serve(model_dir: str, port: int) -> None:
    """Server mode (in the subprocess): the failure model and a no-op model on one server."""
    import logging

    from kserve import Model
    from kserve.protocol.infer_type import InferRequest

    from shopfloor.serving import FailureModel, PredictorServer, codec

    class NoOpModel(Model):
        """Framework ceiling: the same response tensors (same encoder), no decoding, features,
        inference or metrics. What remains is kserve + FastAPI + uvicorn + JSON."""

        def __init__(self, name: str) -> None:
            super().__init__(name)
            self.ready = True

        def predict(self, payload: InferRequest, headers: Any = None, response_headers: Any = None) -> Any:
            rows = int(payload.inputs[0].shape[0])
            return codec.encode_v2(payload, self.name, "0", np.zeros(rows), np.zeros(rows, bool))

    logging.basicConfig(level=logging.WARNING)
    model = FailureModel(MODEL, model_dir, fmt="int8")
    model.load()
    PredictorServer([model, NoOpModel(NOOP)], http_port=port, grpc_port=None).run()


def _body(frame: Any, batch: int, offset: int) -> bytes:
    import json

    from shopfloor.data import schema

    rows = frame.iloc[offset : offset + batch]
    inputs = [
        {
            "name": n,
            "shape": [batch],
            "datatype": "BYTES" if n == schema.PRODUCT_TYPE else "FP64",
            "data": rows[n].tolist(),
        }
        for n in schema.INPUT_COLUMNS
    ]
    return json.dumps({"inputs": inputs}).encode()


async def _load(url: str, bodies: list[bytes], requests: int, concurrency: int) -> tuple[float, np.ndarray]:
    latencies: list[float] = []
    counter = iter(range(requests))
    headers = {"content-type": "application/json"}
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(limits=limits, timeout=30) as client:

        async def worker() -> None:
            for i in counter:
                start = time.perf_counter()
                response = await client.post(url, content=bodies[i % len(bodies)], headers=headers)
                latencies.append(time.perf_counter() - start)
                if response.status_code != 200:
                    raise RuntimeError(f"{url}: {response.status_code} {response.text[:200]}")

        began = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        elapsed = time.perf_counter() - began
    return requests / elapsed, np.asarray(latencies) * 1000.0


def _pin_cores(server_pid: int) -> bool:
    """Server on CPU 0, load generator on CPU 1 (when there are two): on a 2-core box they
    otherwise fight for the same core and the tail latency measures the scheduler, not us."""
    cpus = sorted(os.sched_getaffinity(0))
    if len(cpus) < 2:
        return False
    os.sched_setaffinity(server_pid, {cpus[0]})
    os.sched_setaffinity(0, {cpus[1]})
    return True


def _median_round(rounds: list[tuple[float, np.ndarray]]) -> tuple[float, np.ndarray]:
    """The round with the median throughput (its latencies with it): robust to one noisy round."""
    ordered = sorted(rounds, key=lambda r: r[0])
    return ordered[len(ordered) // 2]


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--model-dir", type=Path, help="model version directory (default: newest run or tiny)"
    )
    parser.add_argument("--requests", type=int, default=2000, help="requests per cell (after warm-up)")
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument(
        "--rounds", type=int, default=5, help="interleaved rounds; the median round is reported"
    )
    parser.add_argument("--serve", nargs=2, metavar=("MODEL_DIR", "PORT"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        _serve(args.serve[0], int(args.serve[1]))
        return

    from shopfloor.data.loader import load
    from shopfloor.serving.sample import sample_version_dir

    tmp = tempfile.TemporaryDirectory(prefix="bench-serving-")
    model_dir = args.model_dir or sample_version_dir(Path(tmp.name) / "v0001", REPO / "runs")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen(
        [sys.executable, __file__, "--serve", str(model_dir), str(port)],
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"},
    )
    pinned = _pin_cores(proc.pid)
    try:
        base = f"http://127.0.0.1:{port}"
        for _ in range(300):
            try:
                if httpx.get(f"{base}/v2/health/ready", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.1)
        frame = load().frame
        results: dict[tuple[str, int], list[tuple[float, np.ndarray]]] = {}
        for _ in range(args.rounds):
            for batch in (1, 64):
                bodies = [_body(frame, batch, (i * batch) % (len(frame) - batch)) for i in range(64)]
                for name in (NOOP, MODEL):
                    url = f"{base}/v2/models/{name}/infer"
                    asyncio.run(_load(url, bodies, 200, args.concurrency))  # warm-up
                    results.setdefault((name, batch), []).append(
                        asyncio.run(_load(url, bodies, args.requests, args.concurrency))
                    )
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
        tmp.cleanup()

    print(
        f"\nV2 REST on loopback, {args.concurrency} connections, {args.requests} requests/cell, "
        f"median of {args.rounds} interleaved rounds, {os.cpu_count()} CPUs"
        f"{' (server and client pinned to separate cores)' if pinned else ''}\n"
    )
    print(
        f"{'batch':>5} {'server':<14} {'req/s':>8} {'rows/s':>9} {'p50 ms':>7} {'p99 ms':>7} "
        f"{'thru vs ceiling':>15} {'p99 - ceiling':>13}"
    )
    for batch in (1, 64):
        best = {name: _median_round(results[(name, batch)]) for name in (NOOP, MODEL)}
        ceiling_rps, ceiling_lat = best[NOOP]
        for name in (NOOP, MODEL):
            rps, lat = best[name]
            p50, p99 = np.percentile(lat, [50, 99])
            ratio = f"{rps / ceiling_rps:.1%}" if name == MODEL else "(ceiling)"
            delta = f"{p99 - np.percentile(ceiling_lat, 99):+.2f} ms" if name == MODEL else ""
            label = "FailureModel" if name == MODEL else "no-op Model"
            print(
                f"{batch:>5} {label:<14} {rps:>8.0f} {rps * batch:>9.0f} {p50:>7.2f} {p99:>7.2f} "
                f"{ratio:>15} {delta:>13}"
            )


if __name__ == "__main__":
    main()
