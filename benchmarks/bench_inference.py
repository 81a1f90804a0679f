"""Single-row inference latency and model size: SavedModel vs LiteRT float32/int8 vs sklearn,
for both candidate families (the Keras MLP and the tree ensemble compiled to LiteRT float32).

Why single rows: the edge scores one machine reading at a time, so per-call overhead, not
throughput, decides what fits next to plant monitoring. Medians are quoted (robust to the
scheduler noise of a shared box), p90 beside them. The models are a pipeline run's own
artifacts (the newest under runs/, or --run-dir); with none, the pipeline's library steps are
run in a temporary directory first. The run ships one family's LiteRT files; the other family's
are built here from the run's training artifacts (the MLP's SavedModel, the pickled ensemble,
or an ensemble trained on the run's train split when the run has none).

    .venv/bin/python benchmarks/bench_inference.py [--run-dir runs/shopfloor-training-...]
"""

from __future__ import annotations

import argparse
import json
import os
import pickle
import tempfile
from pathlib import Path
from typing import Any

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from shopfloor import contract
from shopfloor.conversion.equivalence import measure_latency, model_size_bytes
from shopfloor.data import schema
from shopfloor.data.ingest import read_split
from shopfloor.inference.features import Featurizer
from shopfloor.inference.runtime import LiteRTModel
from shopfloor.training.train import TREES, load_baseline, load_trees, params_from_dict
from shopfloor.training.trees import train_trees


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


def shipped_family(edge: Path) -> str:
    """The family whose LiteRT files the run's edge model holds (runs before issue 10: the MLP)."""
    manifest = json.loads((edge / contract.MANIFEST).read_text())
    return str(manifest.get("model_family", contract.KERAS_MLP))


def mlp_files(run: Path, x_train: Any, work: Path) -> dict[str, Path]:
    """The MLP's float32 and int8 files: the run's own when it shipped the MLP, else converted
    here from its SavedModel."""
    edge = run / "convert/edge_model"
    if shipped_family(edge) == contract.KERAS_MLP:
        return {fmt: edge / contract.litert_file(fmt) for fmt in ("float32", "int8")}
    from shopfloor.conversion.convert import convert

    return convert(run / "train/model" / contract.SAVED_MODEL_DIR, x_train, work / "mlp")


def tree_model(run: Path, x_train: Any) -> tuple[Any, str]:
    """The run's pickled ensemble, or one trained here on the run's train split."""
    model_dir = run / "train/model"
    if (model_dir / TREES).is_file():
        return load_trees(model_dir), TREES
    train = read_split(run / "ingest/dataset", "train")
    return train_trees(x_train, train[schema.TARGET].to_numpy()), "trained here"


def tree_file(run: Path, ensemble: Any, x_train: Any, work: Path) -> Path:
    """The ensemble's LiteRT float32 file: the run's own when it shipped the trees, else
    compiled here."""
    edge = run / "convert/edge_model"
    if shipped_family(edge) == contract.HIST_GBT:
        return edge / contract.litert_file("float32")
    from shopfloor.conversion.trees import compile_and_convert

    _, files = compile_and_convert(ensemble, x_train.shape[1], work / "trees_saved_model", work / "trees",
                                   x_train)
    return files["float32"]


def bench(run: Path, n_fast: int, n_slow: int) -> None:
    import tensorflow as tf

    model_dir = run / "train/model"
    spec = Featurizer.load(model_dir / contract.FEATURE_SPEC)
    x = spec.transform(read_split(run / "ingest/dataset", "test"))
    x_train = spec.transform(read_split(run / "ingest/dataset", "train"))
    row = x[0].copy()
    rows: list[tuple[str, dict[str, float], int]] = []

    signature = tf.saved_model.load(str(model_dir / contract.SAVED_MODEL_DIR)).signatures["serving_default"]
    sm_latency = measure_latency(
        lambda r: signature(features=tf.constant(r[None, :])), row, n=n_slow, warmup=20
    )
    sm_size = model_size_bytes(model_dir / contract.SAVED_MODEL_DIR)
    rows.append(("SavedModel serving_default (MLP)", sm_latency, sm_size))
    ensemble, ensemble_source = tree_model(run, x_train)
    with tempfile.TemporaryDirectory(prefix="bench-inference-files-") as tmp:
        for fmt, path in mlp_files(run, x_train, Path(tmp)).items():
            model = LiteRTModel(path)
            rows.append(
                (f"LiteRT {fmt} MLP (quantisation incl.)", measure_latency(model, row, n=n_fast),
                 model.size_bytes)
            )
        trees = LiteRTModel(tree_file(run, ensemble, x_train, Path(tmp)))
        rows.append(("LiteRT float32 trees (hist-gbt)", measure_latency(trees, row, n=n_fast),
                     trees.size_bytes))
    from threadpoolctl import threadpool_limits

    # One OpenMP thread, like the LiteRT interpreters: on a shared 2-core box scikit-learn's
    # default thread team spends a single row waiting for the other core.
    with threadpool_limits(limits=1):
        sklearn_latency = measure_latency(lambda r: ensemble.predict_proba(r[None, :])[0, 1], row, n=n_slow,
                                          warmup=20)
    rows.append(("sklearn HistGradientBoosting predict_proba", sklearn_latency, len(pickle.dumps(ensemble))))
    yardstick = load_baseline(model_dir)
    rows.append(
        (
            f"sklearn {type(yardstick).__name__} (baseline)",
            measure_latency(lambda r: yardstick.predict_proba(r[None, :])[0, 1], row, n=n_slow, warmup=20),
            len(pickle.dumps(yardstick)),
        )
    )

    base = sm_latency["median_us"]
    print(
        f"\nrun: {run}\nsingle-row latency, median of per-call timings; {x.shape[1]} features; "
        f"LiteRT n={n_fast}, others n={n_slow}; tree ensemble: {ensemble_source}\n"
    )
    print(f"{'model':44} {'median µs':>10} {'p90 µs':>9} {'speed-up':>9} {'size bytes':>11} {'size/SM':>8}")
    for name, lat, size in rows:
        print(
            f"{name:44} {lat['median_us']:>10.1f} {lat['p90_us']:>9.1f} {base / lat['median_us']:>8.1f}x "
            f"{size:>11,} {size / sm_size:>8.3f}"
        )
    print(
        "\nspeed-up = MLP SavedModel median / model median; size/SM = model bytes / MLP SavedModel dir "
        "bytes (sklearn: pickled). Goals: int8 <= 10 µs, >= 75x, size <= 0.15."
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
