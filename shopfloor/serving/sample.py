"""A model version directory for tests and benchmarks, on any checkout.

Copies the newest finished local pipeline run (``runs/shopfloor-training-*`` with a converted
edge model) into the registry's version layout, or, on a fresh clone without runs, trains a
tiny model (3 epochs) through the same training and conversion code. Either way the result is
a real model produced by ``shopfloor.training`` + ``shopfloor.conversion``, not a mock.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from shopfloor.data import schema

SAMPLE_VERSION = "v0001"


def newest_run(runs_dir: Path) -> Path | None:
    """The newest run that finished conversion, or None."""
    candidates = sorted(
        run
        for run in runs_dir.glob("shopfloor-training-*")
        if (run / "convert" / "edge_model" / "model_int8.tflite").is_file()
        and (run / "train" / "model" / "saved_model" / "saved_model.pb").is_file()
    )
    return candidates[-1] if candidates else None


def _write_manifest(dest: Path, base: dict[str, object], source: str) -> None:
    manifest = {**base, "version": SAMPLE_VERSION, "model": "ai4i-failure", "source": source}
    (dest / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")


def from_run(run: Path, dest: Path) -> Path:
    """Copy a run's SavedModel and edge model into ``dest`` (registry version layout)."""
    dest.mkdir(parents=True, exist_ok=True)
    shutil.copytree(run / "train" / "model" / "saved_model", dest / "saved_model")
    for path in (run / "convert" / "edge_model").iterdir():
        if path.is_file() and path.name != "manifest.json":
            shutil.copy2(path, dest / path.name)
    base = json.loads((run / "convert" / "edge_model" / "manifest.json").read_text())
    _write_manifest(dest, {"data_version": base.get("data_version")}, f"run {run.name}")
    return dest


def train_tiny(dest: Path, epochs: int = 3) -> Path:
    """Train and convert a small model with the project's own code (~20-40 s on 2 cores)."""
    import numpy as np

    from shopfloor.conversion.convert import convert
    from shopfloor.data.loader import load
    from shopfloor.training.features import FeatureSpec
    from shopfloor.training.model import TrainParams, export_saved_model, train

    dataset = load()
    frame = dataset.frame
    spec = FeatureSpec.fit(frame)
    x = spec.transform(frame)
    y = frame[schema.TARGET].to_numpy(dtype=np.int64)
    cut = int(len(x) * 0.8)
    model, _ = train(x[:cut], y[:cut], x[cut:], y[cut:], TrainParams(epochs=epochs))
    dest.mkdir(parents=True, exist_ok=True)
    export_saved_model(model, dest / "saved_model")
    convert(dest / "saved_model", x[:cut], dest)
    spec.save(dest / "feature_spec.json")
    decision = {"threshold": 0.5, "target": schema.TARGET, "inputs": list(schema.INPUT_COLUMNS)}
    (dest / "decision.json").write_text(json.dumps(decision) + "\n")
    _write_manifest(dest, {"data_version": dataset.version}, "train_tiny")
    return dest


def sample_version_dir(dest: Path, runs_dir: Path | None = None) -> Path:
    """A version directory at ``dest``: from the newest local run if any, else trained now."""
    run = newest_run(runs_dir) if runs_dir is not None and runs_dir.is_dir() else None
    return from_run(run, dest) if run is not None else train_tiny(dest)
