"""Single-row inference latency and model size: SavedModel vs LiteRT float32/int8 vs sklearn.

Why single rows: the edge scores one machine reading at a time, so per-call overhead, not
throughput, decides what fits next to plant monitoring. Medians are quoted (robust to the
scheduler noise of a shared box), p90 beside them. The models are a pipeline run's own
artifacts (the newest under runs/, or --run-dir); with none, the pipeline's library steps are
run in a temporary directory first.

    .venv/bin/python benchmarks/bench_inference.py [--run-dir runs/shopfloor-training-...]
"""

from __future__ import annotations

import argparse
import os
import pickle
import tempfile
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from shopfloor.conversion.equivalence import measure_latency, model_size_bytes
from shopfloor.data.ingest import read_split
from shopfloor.inference.features import Featurizer
from shopfloor.inference.runtime import LiteRTModel
from shopfloor.training.train import load_baseline, params_from_dict


def newest_run(root: Path) -> Path | None:
    runs = [p.parent.parent for p in root.glob("shopfloor-training-*/convert/edge_model")]
    return max(runs, key=lambda p: p.stat().st_mtime) if runs else None


def make_run(work: Path) -> Path:
    """The pipeline's steps in-process (same library functions as the components)."""
    from shopfloor.conversion.step import convert_step
    from shopfloor.data.ingest import ingest
    from shopfloor.evaluation.evaluate import evaluate_step
    from shopfloor.training.train import train_step

    data, model, evaluation = work / "ingest/dataset", work / "train/model", work / "evaluate/evaluation"
    version = ingest("embedded:ai4i2020", data).outputs["data_version"]
    train_step(data, model, params_from_dict({}), version)
    evaluate_step(data, model, evaluation, data_version=version)
    convert_step(
        data,
        model,
        evaluation,
        work / "convert/edge_model",
        work / "convert/equivalence",
        data_version=version,
    )
    return work


def bench(run: Path, n_fast: int, n_slow: int) -> None:
    import tensorflow as tf

    model_dir, edge = run / "train/model", run / "convert/edge_model"
    spec = Featurizer.load(model_dir / "feature_spec.json")
    x = spec.transform(read_split(run / "ingest/dataset", "test"))
    row = x[0].copy()
    rows: list[tuple[str, dict[str, float], int]] = []

    signature = tf.saved_model.load(str(model_dir / "saved_model")).signatures["serving_default"]
    sm_latency = measure_latency(
        lambda r: signature(features=tf.constant(r[None, :])), row, n=n_slow, warmup=20
    )
    sm_size = model_size_bytes(model_dir / "saved_model")
    rows.append(("SavedModel serving_default", sm_latency, sm_size))
    for fmt in ("float32", "int8"):
        model = LiteRTModel(edge / f"model_{fmt}.tflite")
        rows.append(
            (f"LiteRT {fmt} (quantisation incl.)", measure_latency(model, row, n=n_fast), model.size_bytes)
        )
    gbm = load_baseline(model_dir)
    rows.append(
        (
            "sklearn HistGradientBoosting (baseline)",
            measure_latency(lambda r: gbm.predict_proba(r[None, :])[0, 1], row, n=n_slow, warmup=20),
            len(pickle.dumps(gbm)),
        )
    )

    base = sm_latency["median_us"]
    print(
        f"\nrun: {run}\nsingle-row latency, median of per-call timings; {x.shape[1]} features; "
        f"LiteRT n={n_fast}, others n={n_slow}\n"
    )
    print(f"{'model':42} {'median µs':>10} {'p90 µs':>9} {'speed-up':>9} {'size bytes':>11} {'size/SM':>8}")
    for name, lat, size in rows:
        print(
            f"{name:42} {lat['median_us']:>10.1f} {lat['p90_us']:>9.1f} {base / lat['median_us']:>8.1f}x "
            f"{size:>11,} {size / sm_size:>8.3f}"
        )
    print(
        "\nspeed-up = SavedModel median / model median; size/SM = model bytes / SavedModel dir bytes "
        "(sklearn: pickled). Goals: int8 <= 10 µs, >= 75x, size <= 0.15."
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--run-dir", type=Path, help="a local pipeline run (default: newest under runs/)")
    parser.add_argument("--n", type=int, default=20000, help="timed calls for the LiteRT models")
    parser.add_argument("--n-slow", type=int, default=500, help="timed calls for SavedModel and sklearn")
    args = parser.parse_args()
    run = args.run_dir or newest_run(Path("runs"))
    if run is not None:
        bench(run, args.n, args.n_slow)
        return
    print("no pipeline run under runs/: running the pipeline steps in a temporary directory")
    with tempfile.TemporaryDirectory(prefix="bench-inference-") as tmp:
        bench(make_run(Path(tmp)), args.n, args.n_slow)


if __name__ == "__main__":
    main()
