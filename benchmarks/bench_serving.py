"""V2 REST throughput and latency of the cloud predictor vs. the framework ceiling, on loopback.

Why a ceiling: most of a small request's time is kserve/FastAPI/uvicorn (HTTP parsing,
pydantic validation, InferRequest building, JSON encoding), which our code cannot change.
A no-op ``kserve.Model`` (returns outputs of the right shape, computes nothing) served by the
SAME server process and stack measures that ceiling in the same run, so the ratio isolates
what decoding, features, LiteRT and metrics cost. Goal: >= 90 % of the ceiling's throughput at
batch 1 and 64, p99 <= ceiling p99 + 2 ms.

    .venv/bin/python benchmarks/bench_serving.py                    # newest run or a tiny model
    .venv/bin/python benchmarks/bench_serving.py --model-dir DIR --seconds 5 --rounds 9

Load comes from wrk (``apt-get install -y wrk``), pinned to another core than the server,
in interleaved rounds with medians, plus the server's CPU time per request: see harness.py
(shared with bench_edge.py). The server subprocess is stopped at the end.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import harness

BATCHES = (1, 64)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--model-dir", type=Path, help="model version directory (default: newest run or tiny)"
    )
    parser.add_argument("--seconds", type=float, default=5.0, help="wrk duration per cell")
    parser.add_argument("--connections", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=5, help="interleaved rounds; medians are reported")
    args = parser.parse_args()
    wrk_path = harness.require_wrk()
    server_core, load_core = harness.cores()

    from shopfloor.serving.sample import sample_version_dir

    with harness.scratch("bench-serving-") as tmp:
        work = Path(tmp)
        model_dir = args.model_dir or sample_version_dir(work / "v0001", harness.REPO / "runs")
        ceiling = harness.kserve_server("no-op Model", "both", model_dir)
        bodies = harness.body_files(work, BATCHES)
        results: dict[tuple[str, int], list[harness.WrkResult]] = {}
        with harness.running([ceiling], server_core, work):
            model = dataclasses.replace(
                ceiling, name="FailureModel", infer_path=f"/v2/models/{harness.MODEL}/infer"
            )
            servers = [ceiling, model]
            for server in servers:
                for batch in BATCHES:
                    harness.check_answers(server, bodies[batch].read_bytes())
                    harness.wrk(
                        server,
                        bodies[batch],
                        connections=args.connections,
                        seconds=1,
                        core=load_core,
                        wrk_path=wrk_path,
                    )  # warm-up
            for _ in range(args.rounds):
                for batch in BATCHES:
                    for server in servers:
                        results.setdefault((server.name, batch), []).append(
                            harness.wrk(
                                server,
                                bodies[batch],
                                connections=args.connections,
                                seconds=args.seconds,
                                core=load_core,
                                wrk_path=wrk_path,
                            )
                        )
            rss = harness.rss_mib(ceiling.pid)

    pinned = "server and wrk pinned to separate cores" if load_core else "unpinned"
    print(
        f"\nV2 REST on loopback, {args.connections} connections, {args.rounds} interleaved rounds of "
        f"{args.seconds:g} s per cell, medians; {pinned}; load average {harness.load_average()}, "
        f"{os.cpu_count()} CPUs; server RSS {rss:.0f} MiB, cold start {ceiling.cold_start:.2f} s\n"
    )
    rows = []
    for batch in BATCHES:
        base = harness.median_result(results[("no-op Model", batch)])
        for name in ("no-op Model", "FailureModel"):
            m = harness.median_result(results[(name, batch)])
            is_model = name == "FailureModel"
            rows.append(
                [
                    batch,
                    name,
                    f"{m.rps:.0f}",
                    f"{m.rps * batch:.0f}",
                    f"{m.p50_ms:.2f}",
                    f"{m.p99_ms:.2f}",
                    f"{m.cpu_us_per_request:.0f}",
                    m.errors,
                    f"{m.rps / base.rps:.1%}" if is_model else "(ceiling)",
                    f"{m.p99_ms - base.p99_ms:+.2f} ms" if is_model else "",
                ]
            )
    print(
        harness.table(
            rows,
            [
                "batch",
                "server",
                "req/s",
                "rows/s",
                "p50 ms",
                "p99 ms",
                "CPU us/req",
                "errors",
                "thru vs ceiling",
                "p99 - ceiling",
            ],
        )
    )


if __name__ == "__main__":
    main()
