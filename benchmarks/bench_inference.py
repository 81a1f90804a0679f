"""Single-row inference latency and model size: SavedModel vs LiteRT float32/int8 vs sklearn.

Why single rows: the edge scores one machine reading at a time, so per-call overhead, not
throughput, decides what fits next to plant monitoring. Medians are quoted (robust to the
scheduler noise of a shared box), p90 beside them.

    .venv/bin/python benchmarks/bench_inference.py                 # trains a stand-in model
    .venv/bin/python benchmarks/bench_inference.py --model-dir runs/<run>/model
    .venv/bin/python benchmarks/bench_inference.py --saved-model D --tflite-int8 F \\
        --tflite-float32 F --features-npz F   # npz: x (or x_test) [, x_train, y_train]
"""

from __future__ import annotations

import argparse
import os
import pickle
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from shopfloor.conversion.convert import (
    FLOAT32_FILE,
    INT8_FILE,
    convert,
    export_saved_model_with_logits,
)
from shopfloor.conversion.equivalence import measure_latency, model_size_bytes
from shopfloor.conversion.runtime import LiteRTModel

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # TF is imported lazily, below


def stand_in_features(frame: Any) -> tuple[np.ndarray, np.ndarray]:
    """Simple physical features, z-scored (on all rows: a benchmark, not an evaluation)."""
    air = frame["air_temperature_k"].to_numpy(float)
    proc = frame["process_temperature_k"].to_numpy(float)
    speed = frame["rotational_speed_rpm"].to_numpy(float)
    torque = frame["torque_nm"].to_numpy(float)
    wear = frame["tool_wear_min"].to_numpy(float)
    numeric = np.column_stack([air, proc, speed, torque, wear, proc - air, torque * speed, wear * torque])
    numeric = (numeric - numeric.mean(axis=0)) / numeric.std(axis=0)
    types = np.column_stack([(frame["product_type"] == t).to_numpy(float) for t in ("L", "M", "H")])
    return np.hstack([numeric, types]).astype(np.float32), frame["machine_failure"].to_numpy(int)


def train_stand_in(workdir: Path) -> dict[str, Any]:
    """Quick MLP on the embedded AI4I data, exported and converted like the pipeline does."""
    import keras

    from shopfloor.data import loader

    x, y = stand_in_features(loader.load().frame)
    keras.utils.set_random_seed(0)
    inputs = keras.Input((x.shape[1],), name="features")
    h = keras.layers.Dense(64, activation="relu")(inputs)
    h = keras.layers.Dense(32, activation="relu")(h)
    model = keras.Model(inputs, keras.layers.Dense(1, activation="sigmoid")(h))
    model.compile(optimizer=keras.optimizers.Adam(3e-3), loss="binary_crossentropy")
    n_train = int(0.8 * len(x))
    pos = max(int(y[:n_train].sum()), 1)
    model.fit(x[:n_train], y[:n_train].astype(np.float32), epochs=15, batch_size=128, verbose=0,
              class_weight={0: 1.0, 1: (n_train - pos) / pos})
    export_saved_model_with_logits(model, workdir / "saved_model")
    files = convert(workdir / "saved_model", x[:n_train], workdir / "tflite")
    return {"saved_model": workdir / "saved_model", "int8": files["int8"], "float32": files["float32"],
            "x": x[n_train:], "x_train": x[:n_train], "y_train": y[:n_train]}


def from_model_dir(model_dir: Path) -> dict[str, Any]:
    """Find the SavedModel and .tflite files anywhere under a pipeline output directory."""
    found: dict[str, Any] = {}
    saved = sorted(p.parent for p in model_dir.rglob("saved_model.pb"))
    if saved:
        found["saved_model"] = saved[0]
    for key, name in (("int8", INT8_FILE), ("float32", FLOAT32_FILE)):
        hits = sorted(model_dir.rglob(name))
        if hits:
            found[key] = hits[0]
    npz = sorted(model_dir.rglob("*.npz"))
    if npz:
        found["features_npz"] = npz[0]
    return found


def load_features(path: Path) -> dict[str, np.ndarray]:
    with np.load(path) as data:
        out = {k: data[k] for k in data.files}
    if "x" not in out:
        out["x"] = out.get("x_test", next(iter(out.values())))
    return out


def bench(paths: dict[str, Any], n_fast: int, n_slow: int) -> None:
    import tensorflow as tf

    x = np.asarray(paths["x"], dtype=np.float32)
    row = x[0].copy()
    rows: list[tuple[str, dict[str, float], int | None]] = []

    signature = tf.saved_model.load(str(paths["saved_model"])).signatures["serving_default"]
    key = next(iter(signature.structured_input_signature[1]))
    sm_latency = measure_latency(lambda r: signature(**{key: tf.constant(r[None, :])}), row, n=n_slow,
                                 warmup=20)
    sm_size = model_size_bytes(paths["saved_model"])
    rows.append(("SavedModel serving_default", sm_latency, sm_size))
    for fmt in ("float32", "int8"):
        if paths.get(fmt):
            model = LiteRTModel(paths[fmt])
            rows.append((f"LiteRT {fmt} (quantisation incl.)", measure_latency(model, row, n=n_fast),
                         model.size_bytes))
    if "x_train" in paths and "y_train" in paths:
        from sklearn.ensemble import HistGradientBoostingClassifier

        hgb = HistGradientBoostingClassifier(max_iter=300, max_leaf_nodes=15, random_state=0)
        hgb.fit(paths["x_train"], np.asarray(paths["y_train"]).astype(int))
        rows.append(("sklearn HistGradientBoosting", measure_latency(
            lambda r: hgb.predict_proba(r[None, :])[0, 1], row, n=n_slow, warmup=20),
            len(pickle.dumps(hgb))))
    else:
        print("(no x_train/y_train in the features file: sklearn baseline skipped)")

    base = sm_latency["median_us"]
    print(f"\nsingle-row latency, median of per-call timings; {x.shape[1]} features; "
          f"LiteRT n={n_fast}, others n={n_slow}\n")
    print(f"{'model':38} {'median µs':>10} {'p90 µs':>9} {'vs SavedModel':>14} "
          f"{'size bytes':>11} {'size ratio':>11}")
    for name, lat, size in rows:
        size_txt = f"{size:>11,}" if size is not None else f"{'-':>11}"
        ratio_txt = f"{sm_size / size:>10.1f}x" if size else f"{'-':>11}"
        print(f"{name:38} {lat['median_us']:>10.1f} {lat['p90_us']:>9.1f} "
              f"{base / lat['median_us']:>13.1f}x {size_txt} {ratio_txt}")
    print("\nvs SavedModel = how many times faster; size ratio = SavedModel dir bytes / model bytes "
          "(sklearn: pickled)")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model-dir", type=Path)
    parser.add_argument("--saved-model", type=Path)
    parser.add_argument("--tflite-int8", type=Path)
    parser.add_argument("--tflite-float32", type=Path)
    parser.add_argument("--features-npz", type=Path)
    parser.add_argument("--n", type=int, default=20000, help="timed calls for the LiteRT models")
    parser.add_argument("--n-slow", type=int, default=500, help="timed calls for SavedModel and sklearn")
    args = parser.parse_args()

    paths: dict[str, Any] = from_model_dir(args.model_dir) if args.model_dir else {}
    for key, value in (("saved_model", args.saved_model), ("int8", args.tflite_int8),
                       ("float32", args.tflite_float32), ("features_npz", args.features_npz)):
        if value is not None:
            paths[key] = value
    with tempfile.TemporaryDirectory(prefix="bench-inference-") as tmp:
        if "saved_model" not in paths:
            print("no --saved-model / --model-dir: training a stand-in model on the embedded AI4I data")
            paths = train_stand_in(Path(tmp))
        elif "features_npz" in paths:
            paths.update(load_features(paths["features_npz"]))
        else:
            parser.error("give --features-npz (or a --model-dir holding one) with the model's input rows")
        bench(paths, args.n, args.n_slow)


if __name__ == "__main__":
    main()
