"""End-to-end local pipeline wall time and the model quality it reaches.

Baseline in the same run: the pipeline's steps called in one process (same library
functions, no kfp.local; it skips validation, figures and registration, so it is a lower
bound), so the ratio is what KFP's per-step subprocesses cost. CPU seconds (user + system, of
this process and its children) are printed beside wall time: on a shared machine they move far
less with other load than wall time does, so compare runs by them. Per-step wall times come from
kfp.local's own log. Also prints every model's PR-AUC with its 95 % interval (the candidates,
the logistic-regression yardstick and the shipped edge file), which family shipped and why,
with the data version.

    .venv/bin/python benchmarks/bench_pipeline.py [--repeats 3] [--local-only]
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, str(Path(__file__).parent))

from bench_inference import make_run

from shopfloor.pipelines.run import SUCCEEDED, StepEvent, run_local
from shopfloor.summary import build_summary


def _cpu_s() -> float:
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def _row(name: str, values: list[float], base: float) -> str:
    med = statistics.median(values)
    return f"{name:36} {med:>9.1f} {min(values):>7.1f} {max(values):>7.1f} {med / base:>7.2f}"


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--local-only", action="store_true", help="skip the in-process baseline")
    args = parser.parse_args()
    local_times, inproc_times, local_cpu, inproc_cpu = [], [], [], []
    steps: dict[str, list[float]] = {}
    summary = None
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory(prefix="bench-pipeline-") as tmp:
        os.environ["SHOPFLOOR_REGISTRY"] = str(Path(tmp) / "registry")  # never the user's registry

        def record(event: StepEvent) -> None:
            if event.state == SUCCEEDED:
                steps.setdefault(event.step, []).append(event.elapsed_s)

        for i in range(args.repeats):
            t0, c0 = time.perf_counter(), _cpu_s()
            run = run_local({"source": "embedded:ai4i2020"}, Path(tmp) / "runs", on_event=record)
            local_times.append(time.perf_counter() - t0)
            local_cpu.append(_cpu_s() - c0)
            assert run.summary["status"] == "passed", run.summary["reason"]
            summary = run.summary
            line = f"repeat {i + 1}: kfp.local {local_times[-1]:.1f} s ({local_cpu[-1]:.1f} CPU s)"
            if not args.local_only:
                t0, c0 = time.perf_counter(), _cpu_s()
                make_run(Path(tmp) / f"inproc-{i}")
                inproc_times.append(time.perf_counter() - t0)
                inproc_cpu.append(_cpu_s() - c0)
                line += f", in-process {inproc_times[-1]:.1f} s ({inproc_cpu[-1]:.1f} CPU s)"
            print(line, flush=True)
        in_process = None
        if not args.local_only:
            in_process = build_summary(Path(tmp) / "inproc-0", source="embedded:ai4i2020")
    assert summary is not None
    load_after = os.getloadavg()
    print(f"\nend-to-end on the embedded data, {args.repeats} repeats, {os.cpu_count()} cores; "
          f"load average {load_before[0]:.1f} before, {load_after[0]:.1f} after\n")
    print(f"{'runner':36} {'median':>9} {'min':>7} {'max':>7} {'ratio':>7}")
    base_wall = statistics.median(inproc_times) if inproc_times else statistics.median(local_times)
    base_cpu = statistics.median(inproc_cpu) if inproc_cpu else statistics.median(local_cpu)
    if inproc_times:
        print(_row("steps in one process, wall s", inproc_times, base_wall))
        print(_row("steps in one process, CPU s", inproc_cpu, base_cpu))
    print(_row("kfp.local SubprocessRunner, wall s", local_times, base_wall))
    print(_row("kfp.local SubprocessRunner, CPU s", local_cpu, base_cpu))
    print("goal: kfp.local <= 20 s wall, warm, on an otherwise idle machine")
    print("\nper step (kfp.local, wall s, median): "
          + ", ".join(f"{step} {statistics.median(t):.1f}" for step, t in steps.items()))

    print(f"\nquality on the test split ({summary['test_rows']} rows), data {summary['data_version']}\n")
    print(f"{'model':10} {'PR-AUC':>7} {'95% CI':>16}   {'ROC-AUC':>7} {'95% CI':>16}")
    for model in ("keras", "trees", "baseline", "edge"):
        if model not in summary["metrics"]:
            continue
        pr, roc = summary["metrics"][model]["pr_auc"], summary["metrics"][model]["roc_auc"]
        print(
            f"{model:10} {pr['value']:>7.3f} [{pr['ci_low']:.3f}, {pr['ci_high']:.3f}]   "
            f"{roc['value']:>7.3f} [{roc['ci_low']:.3f}, {roc['ci_high']:.3f}]"
        )
    shipped = summary["shipped"]
    print(f"shipped: {shipped['family']} LiteRT {shipped['format']} ({shipped['size_bytes']:,} bytes); "
          f"{summary['selection']['reason']}")
    if in_process is not None:
        edge_pr_auc = summary["metrics"]["edge"]["pr_auc"]["value"]
        same = in_process["metrics"]["edge"]["pr_auc"]["value"] == edge_pr_auc
        print(f"in-process run gives the same edge PR-AUC (determinism): {same}")


if __name__ == "__main__":
    main()
