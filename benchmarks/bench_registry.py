"""Benchmark: put (publish) and get (fetch + verify every checksum) of one model version.

Run: ``.venv/bin/python benchmarks/bench_registry.py [--repeats 7] [--run-dir RUN | --synthetic]``

The version is assembled from the newest real run under ``runs/`` that has a converted edge
model (else a synthetic version of the same shape: ~100 KB SavedModel, two small .tflite
files, golden sets, evidence). Backends: the embedded filesystem registry in a temp dir, and
S3 through the minio client against moto's S3 server on loopback (an in-process Python
server: it measures protocol + client overhead, not a real MinIO's throughput). Each figure
is the median over ``--repeats`` runs; every put publishes a new version (immutability), every
get fetches into a fresh directory.
"""

from __future__ import annotations

import argparse
import logging
import os
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from shopfloor.registry import FilesystemBackend, Registry, assemble_version, open_registry

REPO = Path(__file__).resolve().parents[1]


def real_run() -> Path | None:
    found = sorted(REPO.glob("runs/shopfloor-training-*/convert/edge_model/model_float32.tflite"))
    return found[-1].parents[2] if found else None


def synthetic_run(root: Path) -> Path:
    """A run-dir layout with real-sized payloads (no TF needed): random SavedModel bytes and
    valid LiteRT files padded to the real files' sizes (publishing loads them)."""
    sys.path.insert(0, str(REPO))
    from shopfloor.contract import litert_file
    from tests.fixtures.versions import SPEC, make_run_dir, tiny_litert

    run = make_run_dir(root)
    sizes = {"train/model/saved_model/saved_model.pb": 65_000,
             "train/model/saved_model/variables/variables.data-00000-of-00001": 25_000}
    for rel, size in sizes.items():
        (run / rel).write_bytes(os.urandom(size))
    for fmt, size in (("float32", 15_000), ("int8", 9_000)):
        model = tiny_litert(len(SPEC.names))
        (run / "convert/edge_model" / litert_file(fmt)).write_bytes(
            tiny_litert(len(SPEC.names), pad_bytes=max(0, size - len(model) - 64)))
    return run


def median_time(fn: Callable[[int], None], repeats: int) -> float:
    fn(-1)  # warm-up (connection pool, imports)
    times = []
    for i in range(repeats):
        start = time.perf_counter()
        fn(i)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def bench(reg: Registry, version_dir: Path, work: Path, repeats: int) -> tuple[float, float]:
    versions: list[str] = []

    def put(_: int) -> None:
        versions.append(reg.publish(version_dir, run_id="bench").version)

    put_s = median_time(put, repeats)

    def get(i: int) -> None:
        reg.fetch(versions[0], work / f"get-{i + 1}")

    get_s = median_time(get, repeats)
    return put_s, get_s


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--run-dir", type=Path, default=None)
    parser.add_argument("--synthetic", action="store_true", help="ignore runs/, synthesise the version")
    args = parser.parse_args()
    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # moto's request log

    with tempfile.TemporaryDirectory(prefix="bench-registry-") as tmp:
        work = Path(tmp)
        run = None if args.synthetic else (args.run_dir or real_run())
        source = f"real run {run.name}" if run else "synthetic run"
        run = run or synthetic_run(work / "runs")
        version_dir = assemble_version(run, work / "version")
        files = [p for p in version_dir.rglob("*") if p.is_file() and p.name != "manifest.json"]
        size = sum(p.stat().st_size for p in files)
        print(f"version: {source}, {len(files)} files, {size / 1024:.1f} KiB; median of {args.repeats}")

        from minio import Minio
        from moto.server import ThreadedMotoServer

        server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
        server.start()
        try:
            host, port = server.get_host_and_port()
            os.environ.update(SHOPFLOOR_S3_ENDPOINT=f"http://{host}:{port}", AWS_ACCESS_KEY_ID="bench",
                              AWS_SECRET_ACCESS_KEY="bench")
            Minio(f"{host}:{port}", access_key="bench", secret_key="bench", secure=False,
                  region="us-east-1").make_bucket("bench-registry")
            results = {
                "filesystem": bench(Registry(FilesystemBackend(work / "fs")), version_dir, work / "fs-get",
                                    args.repeats),
                "s3 (moto, loopback)": bench(open_registry("s3://bench-registry/r"), version_dir,
                                             work / "s3-get", args.repeats),
            }
        finally:
            server.stop()
            shutil.rmtree(work / "fs-get", ignore_errors=True)

    fs_put, fs_get = results["filesystem"]
    print(f"{'backend':<22}{'put (publish) ms':>18}{'get (fetch+verify) ms':>24}")
    for name, (put_s, get_s) in results.items():
        print(f"{name:<22}{put_s * 1e3:>18.1f}{get_s * 1e3:>24.1f}")
    s3_put, s3_get = results["s3 (moto, loopback)"]
    print(f"{'ratio S3/FS':<22}{s3_put / fs_put:>17.1f}x{s3_get / fs_get:>23.1f}x")


if __name__ == "__main__":
    main()
