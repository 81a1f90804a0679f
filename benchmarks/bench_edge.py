"""Edge runtime vs KServe's no-op ceiling vs the cloud predictor, same version, same machine.

    .venv/bin/python benchmarks/bench_edge.py                         # 9 rounds of 5 s per cell
    .venv/bin/python benchmarks/bench_edge.py --rounds 3 --seconds 2  # a quick check

Servers (each its own process, pinned to one core; wrk pinned to another; see harness.py):
  A  edge     ``shopfloor edge serve`` (the console script) on a store holding the version
  B  ceiling  KServe 0.21's no-op model on the cloud predictor's server (as bench_serving.py)
  C  cloud    ``python -m shopfloor.serving`` serving the same version (its own LiteRT format)
Per cell (server x batch 1 / 64, 8 connections), interleaved rounds A, B, C, A, B, C, ...;
medians of the rounds. Then: resident memory after warm-up, cold start to ready (spawn to the
first ready answer), hot swap on the edge (push of a new signed version through the admin API
to its first answer, and failed requests meanwhile) and a bundle's export/import time and size.

Goals (issue 8): edge RSS <= 80 MiB; batch 1 throughput >= 5x the ceiling, batch-64 rows/s
>= 4x; p99 at batch 1 below the ceiling's; cold start <= 0.5 s; swap <= 1 s with 0 failures.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import statistics
import sys
import threading
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import harness

from tests.integration.edge_runtime import SHOPFLOOR, TOKEN, make_signed_versions

BATCHES = (1, 64)


def _servers(versions: Any, version_dir: Path, work: Path) -> list[harness.Server]:
    edge_port, cloud_port = harness.free_port(), harness.free_port()
    infer = f"/v2/models/{harness.MODEL}/infer"
    store = work / "store"
    edge = harness.Server(
        "edge",
        [
            str(SHOPFLOOR),
            "edge",
            "serve",
            "--store",
            str(store),
            "--port",
            str(edge_port),
            "--trust",
            str(versions.trust),
            "--admin-token-file",
            str(versions.token_file),
            "--log-level",
            "WARNING",
        ],
        infer,
        edge_port,
    )
    ceiling = harness.kserve_server("kserve-noop", "noop", version_dir)
    cloud = harness.Server(
        "cloud",
        [
            sys.executable,
            "-m",
            "shopfloor.serving",
            "--model-dir",
            str(version_dir),
            "--model-name",
            harness.MODEL,
            "--http-port",
            str(cloud_port),
            "--grpc-port",
            "0",
            "--log-level",
            "WARNING",
        ],
        infer,
        cloud_port,
        env={"TF_CPP_MIN_LOG_LEVEL": "2"},
    )
    return [edge, ceiling, cloud]


def _lean_config(edge: harness.Server) -> str:
    """The configuration ``shopfloor edge serve`` hands to its lean process (see shopfloor.edge.__main__)."""
    from shopfloor.edge.__main__ import RuntimeConfig

    args = edge.cmd[edge.cmd.index("serve") + 1 :]
    options = {args[i].lstrip("-").replace("-", "_"): args[i + 1] for i in range(0, len(args), 2)}
    return RuntimeConfig(
        store=options["store"],
        trust=options["trust"],
        port=int(options["port"]),
        admin_token_file=options["admin_token_file"],
        log_level=options["log_level"],
    ).to_json()


def _install_first(versions: Any, store: Path) -> None:
    """The store holds v0001, active, before the edge runtime's cold start is timed."""
    from shopfloor.edge.signing import TrustStore
    from shopfloor.edge.store import ModelStore
    from shopfloor.registry import open_registry

    reg = open_registry(versions.registry)
    model_store = ModelStore(store, trust=TrustStore.load(versions.trust))
    fetched = reg.fetch("v0001", store.parent / "fetch" / "v0001")
    model_store.install(fetched, reg.signatures("v0001"))
    model_store.activate("v0001")


def _hot_swap(edge: harness.Server, versions: Any, work: Path, swaps: int) -> tuple[list[float], int, int]:
    """Swap versions under load (4 clients): seconds from each push/activation to the first
    answer from the new version; failed and total requests meanwhile."""
    from shopfloor.edge.client import RuntimeClient
    from shopfloor.registry import open_registry

    reg = open_registry(versions.registry)
    v2 = reg.fetch("v0002", work / "swap" / "v0002")
    signatures = reg.signatures("v0002")
    body = harness.v2_body(1)
    seen: list[tuple[float, str]] = []
    failures = [0]
    total = [0]
    stop = threading.Event()
    lock = threading.Lock()

    def client() -> None:
        conn = http.client.HTTPConnection("127.0.0.1", edge.port, timeout=10)
        while not stop.is_set():
            try:
                conn.request("POST", edge.infer_path, body=body, headers={"content-type": "application/json"})
                response = conn.getresponse()
                data = response.read()
                ok = response.status == 200
                version = json.loads(data)["model_version"] if ok else ""
            except (OSError, http.client.HTTPException, ValueError):
                ok, version = False, ""
                conn.close()
                conn = http.client.HTTPConnection("127.0.0.1", edge.port, timeout=10)
            with lock:
                total[0] += 1
                if ok:
                    seen.append((time.perf_counter(), version))
                else:
                    failures[0] += 1
            time.sleep(0.001)
        conn.close()

    threads = [threading.Thread(target=client, daemon=True) for _ in range(4)]
    for thread in threads:
        thread.start()
    admin = RuntimeClient(edge.url, TOKEN)
    times = []
    try:
        time.sleep(0.5)
        for i in range(swaps):
            target = "v0002" if i % 2 == 0 else "v0001"
            began = time.perf_counter()
            if i == 0:
                admin.upload(v2, signatures)  # a push: unpack, verify, self-test, activate
            else:
                admin.activate(target)
            while True:
                with lock:
                    hit = next((t for t, v in reversed(seen) if v == target and t >= began), None)
                if hit is not None or time.perf_counter() - began > 10:
                    break
                time.sleep(0.001)
            with lock:
                hit = min((t for t, v in seen if v == target and t >= began), default=float("nan"))
            times.append(hit - began)
            time.sleep(0.3)
    finally:
        stop.set()
        for thread in threads:
            thread.join(timeout=20)
    return times, failures[0], total[0]


def _bundle(versions: Any, work: Path) -> tuple[float, float, int] | None:
    """Export one version as a signed bundle and import it into a bare store: (s, s, bytes)."""
    try:
        from shopfloor.edge.bundle import export_bundle, import_into_store
    except ImportError:
        return None
    from shopfloor.edge.signing import TrustStore
    from shopfloor.registry import open_registry

    reg = open_registry(versions.registry)
    out = work / "bundle" / "v0001.tar"
    out.parent.mkdir(parents=True, exist_ok=True)
    began = time.perf_counter()
    export_bundle(reg, "v0001", out, release_key=versions.private_key)
    exported = time.perf_counter() - began
    began = time.perf_counter()
    import_into_store(out, work / "bundle-store", TrustStore.load(versions.trust))
    return exported, time.perf_counter() - began, out.stat().st_size


def _ratio(value: float, reference: float) -> str:
    return f"{value / reference:.2f}x" if reference > 0 else "-"


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rounds", type=int, default=9, help="interleaved rounds (median reported)")
    parser.add_argument("--seconds", type=float, default=5.0, help="wrk duration per cell")
    parser.add_argument("--connections", type=int, default=8)
    parser.add_argument("--swaps", type=int, default=5, help="hot swaps on the edge runtime")
    parser.add_argument("--cold-starts", type=int, default=5, help="edge cold starts (median reported)")
    args = parser.parse_args()
    wrk_path = harness.require_wrk()
    server_core, load_core = harness.cores()

    with harness.scratch("bench-edge-") as tmp:
        work = Path(tmp)
        versions = make_signed_versions(work / "versions")
        from shopfloor.registry import open_registry

        version_dir = open_registry(versions.registry).fetch("v0001", work / "fetched" / "v0001")
        _install_first(versions, work / "store")
        servers = _servers(versions, version_dir, work)
        bodies = harness.body_files(work, BATCHES)
        results: dict[tuple[str, int], list[harness.WrkResult]] = {}
        with harness.running(servers, server_core, work):
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
            rss = {s.name: harness.rss_mib(s.pid) for s in servers}
            for _ in range(args.rounds):
                for server in servers:  # A, B, C, A, B, C, ...
                    for batch in BATCHES:
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
            swap_times, swap_failures, swap_requests = _hot_swap(servers[0], versions, work, args.swaps)
            rss_after = harness.rss_mib(servers[0].pid)
        # cold starts again, servers stopped: the console command, and the lean process it becomes
        edge_starts = harness.cold_starts(servers[0], server_core, work, args.cold_starts)
        lean = harness.Server(
            "edge-lean",
            [sys.executable, "-m", "shopfloor.edge", _lean_config(servers[0])],
            servers[0].infer_path,
            servers[0].port,
        )
        lean_starts = harness.cold_starts(lean, server_core, work, args.cold_starts)
        bundle = _bundle(versions, work)

    med = {key: harness.median_result(r) for key, r in results.items()}
    names = [s.name for s in servers]
    print(
        f"\nV2 REST JSON on loopback, {args.connections} connections, {args.rounds} interleaved rounds of "
        f"{args.seconds:g} s per cell, medians; wrk {'on core ' + load_core if load_core else 'unpinned'}, "
        f"servers {'on core ' + server_core if server_core else 'unpinned'}; "
        f"load average {harness.load_average()}, {os.cpu_count()} CPUs\n"
    )
    rows = []
    for batch in BATCHES:
        ceiling = med[("kserve-noop", batch)]
        for name in names:
            m = med[(name, batch)]
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
                    _ratio(m.rps, ceiling.rps) if name != "kserve-noop" else "(ceiling)",
                    _ratio(ceiling.cpu_us_per_request, m.cpu_us_per_request) if name != "kserve-noop" else "",
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
                "CPU: ceiling/this",
            ],
        )
    )
    print()
    print(
        harness.table(
            [[s.name, f"{rss[s.name]:.1f}", f"{s.cold_start:.3f}"] for s in servers],
            ["server", "RSS MiB after warm-up", "cold start s (spawn to ready)"],
        )
    )
    edge1, ceil1 = med[("edge", 1)], med[("kserve-noop", 1)]
    edge64, ceil64 = med[("edge", 64)], med[("kserve-noop", 64)]
    swap_median = statistics.median(swap_times) if swap_times else float("nan")
    print("\nGoals (edge):")
    goals: list[tuple[str, str, bool | None]] = [
        (
            "RSS after warm-up <= 80 MiB",
            f"{rss['edge']:.1f} MiB (after the swaps {rss_after:.1f})",
            rss["edge"] <= 80,
        ),
        ("batch 1 throughput >= 5x ceiling", _ratio(edge1.rps, ceil1.rps), edge1.rps >= 5 * ceil1.rps),
        ("batch 64 rows/s >= 4x ceiling", _ratio(edge64.rps, ceil64.rps), edge64.rps >= 4 * ceil64.rps),
        (
            "batch 1 p99 below the ceiling's",
            f"{edge1.p99_ms:.2f} vs {ceil1.p99_ms:.2f} ms",
            edge1.p99_ms < ceil1.p99_ms,
        ),
        (
            "cold start <= 0.5 s",
            f"console command {statistics.median(edge_starts):.3f} s, its lean process alone "
            f"{statistics.median(lean_starts):.3f} s (medians of {len(edge_starts)})",
            statistics.median(edge_starts) <= 0.5,
        ),
        (
            "hot swap <= 1 s",
            f"push {swap_times[0]:.3f} s, then activations median {swap_median:.3f} s "
            f"({len(swap_times)} swaps)",
            max(swap_times) <= 1.0,
        ),
        ("failed requests during swaps = 0", f"{swap_failures} of {swap_requests}", swap_failures == 0),
    ]
    if bundle is not None:
        exported, imported, size = bundle
        goals.append(
            (
                "bundle export / import / size",
                f"{exported:.3f} s / {imported:.3f} s / {size / 1024:.0f} KiB",
                None,
            )
        )
    else:
        goals.append(("bundle export / import / size", "TODO: shopfloor.edge.bundle not available", None))
    marks = [[g, v, "-" if ok is None else "yes" if ok else "NO"] for g, v, ok in goals]
    print(harness.table(marks, ["goal", "measured", "met"]))


if __name__ == "__main__":
    main()
