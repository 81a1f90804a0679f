"""End-to-end local pipeline wall time and the model quality it reaches.

Baseline in the same run: the pipeline's steps called in one process (same library
functions, no kfp.local), so the ratio is what KFP's per-step subprocesses cost. Also prints
the int8 model's PR-AUC with its 95 % interval beside the baseline's, with the data version.

    .venv/bin/python benchmarks/bench_pipeline.py [--repeats 3]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, str(Path(__file__).parent))

from bench_inference import make_run

from shopfloor.pipelines.run import run_local
from shopfloor.summary import build_summary


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    local_times, inproc_times = [], []
    summary = None
    with tempfile.TemporaryDirectory(prefix="bench-pipeline-") as tmp:
        os.environ["SHOPFLOOR_REGISTRY"] = str(Path(tmp) / "registry")  # never the user's registry
        for i in range(args.repeats):
            t0 = time.perf_counter()
            run = run_local({"source": "embedded:ai4i2020"}, Path(tmp) / "runs")
            local_times.append(time.perf_counter() - t0)
            assert run.summary["status"] == "passed", run.summary["reason"]
            summary = run.summary
            t0 = time.perf_counter()
            make_run(Path(tmp) / f"inproc-{i}")
            inproc_times.append(time.perf_counter() - t0)
            print(
                f"repeat {i + 1}: kfp.local {local_times[-1]:.1f} s, in-process {inproc_times[-1]:.1f} s",
                flush=True,
            )
        in_process = build_summary(Path(tmp) / "inproc-0", source="embedded:ai4i2020")
    assert summary is not None
    local_med, inproc_med = statistics.median(local_times), statistics.median(inproc_times)
    print(f"\nend-to-end wall time on the embedded data, median of {args.repeats} (2 cores)\n")
    print(f"{'runner':36} {'median s':>9} {'min s':>7} {'max s':>7} {'ratio':>7}")
    print(
        f"{'steps in one process (baseline)':36} {inproc_med:>9.1f} {min(inproc_times):>7.1f} "
        f"{max(inproc_times):>7.1f} {1.0:>7.2f}"
    )
    print(
        f"{'kfp.local SubprocessRunner':36} {local_med:>9.1f} {min(local_times):>7.1f} "
        f"{max(local_times):>7.1f} {local_med / inproc_med:>7.2f}"
    )
    print("goal: kfp.local <= 45 s")

    print(f"\nquality on the test split ({summary['test_rows']} rows), data {summary['data_version']}\n")
    print(f"{'model':10} {'PR-AUC':>7} {'95% CI':>16}   {'ROC-AUC':>7} {'95% CI':>16}")
    for model in ("keras", "int8", "baseline"):
        pr, roc = summary["metrics"][model]["pr_auc"], summary["metrics"][model]["roc_auc"]
        print(
            f"{model:10} {pr['value']:>7.3f} [{pr['ci_low']:.3f}, {pr['ci_high']:.3f}]   "
            f"{roc['value']:>7.3f} [{roc['ci_low']:.3f}, {roc['ci_high']:.3f}]"
        )
    int8, base = summary["metrics"]["int8"]["pr_auc"], summary["metrics"]["baseline"]["pr_auc"]
    print(
        f"int8 / baseline PR-AUC: {int8['value'] / base['value']:.3f}; int8 >= baseline point: "
        f"{int8['value'] >= base['value']}; "
        f"int8 above baseline's interval low: {int8['value'] >= base['ci_low']}"
    )
    same = in_process["metrics"]["int8"]["pr_auc"]["value"] == int8["value"]
    print(f"in-process run gives the same int8 PR-AUC (determinism): {same}")


if __name__ == "__main__":
    main()
