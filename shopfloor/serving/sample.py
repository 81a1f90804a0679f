"""A model version directory for tests and benchmarks, on any checkout.

Copies the newest finished local pipeline run (``runs/shopfloor-training-*`` with a converted
edge model) into the registry's version layout, or, on a fresh clone without runs, trains a
tiny model (3 epochs) through the same training and conversion code. Either way the result is
a real model produced by ``shopfloor.training`` + ``shopfloor.conversion``, not a mock, and
every document is written through :mod:`shopfloor.contract`.
"""

from __future__ import annotations

import shutil
from datetime import UTC, datetime
from pathlib import Path

from shopfloor import contract, lineage
from shopfloor.data import schema
from shopfloor.settings import DEFAULT_MODEL_NAME

SAMPLE_VERSION = "v0001"


def newest_run(runs_dir: Path) -> Path | None:
    """The newest run that finished conversion (any LiteRT file: a tree ensemble ships only
    float32), or None."""
    edge = contract.run_output(Path("."), "edge_model")
    model = contract.run_output(Path("."), "model")
    candidates = sorted(
        run
        for run in runs_dir.glob("shopfloor-training-*")
        if any((run / edge / contract.litert_file(f)).is_file() for f in contract.LITERT_FORMATS)
        and any((run / out / contract.SAVED_MODEL_PB).is_file() for out in (edge, model))
    )
    return candidates[-1] if candidates else None


def write_manifest(dest: Path, *, run_id: str, data_version: str | None,
                   model_family: str = contract.KERAS_MLP) -> contract.VersionManifest:
    """A version manifest for the files in ``dest`` (checksums, formats, threshold, family)."""
    decision = contract.load_decision(dest)
    files = {
        rel: contract.FileEntry(sha, (dest / rel).stat().st_size)
        for rel, sha in lineage.file_hashes(dest).items()
    }
    formats = tuple(f for f in contract.SERVABLE_FORMATS if (dest / contract.model_artifact(f)).exists())
    manifest = contract.VersionManifest(
        model=DEFAULT_MODEL_NAME, version=dest.name if dest.name.startswith("v") else SAMPLE_VERSION,
        created_at=datetime.now(UTC).isoformat(timespec="seconds"), run_id=run_id, files=files,
        threshold=decision.threshold, formats=formats, data_version=data_version, model_family=model_family,
    )
    lineage.write_text_atomic(dest / contract.MANIFEST, contract.dumps(manifest.to_dict()))
    return manifest


def from_run(run: Path, dest: Path) -> Path:
    """Copy a run's shipped model into ``dest`` (registry version layout): the edge model's files
    and the shipped family's SavedModel (a tree ensemble's travels with the edge model; an MLP
    run before issue 10 kept it in the train step's output), family from the convert lineage."""
    dest.mkdir(parents=True, exist_ok=True)
    edge = contract.run_output(run, "edge_model")
    source = edge if (edge / contract.SAVED_MODEL_PB).is_file() else contract.run_output(run, "model")
    shutil.copytree(source / contract.SAVED_MODEL_DIR, dest / contract.SAVED_MODEL_DIR)
    for path in edge.iterdir():
        if path.is_file() and path.name != contract.MANIFEST:
            shutil.copy2(path, dest / path.name)
    base = lineage.read_manifest(edge)
    family = base.get("model_family")
    write_manifest(dest, run_id=run.name, data_version=base.get("data_version"),
                   model_family=family if family in contract.MODEL_FAMILIES else contract.KERAS_MLP)
    return dest


def train_tiny(dest: Path, epochs: int = 3) -> Path:
    """Train and convert a small model with the project's own code (~20-40 s on 2 cores)."""
    import numpy as np

    from shopfloor.conversion.convert import convert
    from shopfloor.data.loader import load
    from shopfloor.inference.features import Featurizer
    from shopfloor.training.model import TrainParams, export_saved_model, train

    dataset = load()
    frame = dataset.frame
    featurizer = Featurizer.fit(frame)
    x = featurizer.transform(frame)
    y = frame[schema.TARGET].to_numpy(dtype=np.int64)
    cut = int(len(x) * 0.8)
    model, _ = train(x[:cut], y[:cut], x[cut:], y[cut:], TrainParams(epochs=epochs))
    dest.mkdir(parents=True, exist_ok=True)
    export_saved_model(model, dest / contract.SAVED_MODEL_DIR)
    convert(dest / contract.SAVED_MODEL_DIR, x[:cut], dest)
    featurizer.save(dest / contract.FEATURE_SPEC)
    decision = contract.Decision(threshold=0.5, target=schema.TARGET, inputs=schema.INPUT_COLUMNS)
    lineage.write_text_atomic(dest / contract.DECISION, contract.dumps(decision.to_dict()))
    write_manifest(dest, run_id="train_tiny", data_version=dataset.version)
    return dest


def sample_version_dir(dest: Path, runs_dir: Path | None = None) -> Path:
    """A version directory at ``dest``: from the newest local run if any, else trained now."""
    run = newest_run(runs_dir) if runs_dir is not None and runs_dir.is_dir() else None
    return from_run(run, dest) if run is not None else train_tiny(dest)
