"""Ingest: load, canonicalise, split, and record the data version (the pipeline's first step)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa

from shopfloor import lineage
from shopfloor.data import loader, schema
from shopfloor.data.split import stratified_split

TABLE = "table.parquet"
SPLITS = ("train", "validation", "test")


def _write_parquet(frame: pd.DataFrame, path: Path) -> None:
    """Parquet, keeping bad content (e.g. text in a numeric column) for validation to report."""
    try:
        frame.to_parquet(path, index=False)
    except (pa.ArrowInvalid, pa.ArrowTypeError):
        mixed = {c: "string" for c in frame.columns if frame[c].dtype == object}
        frame.astype(mixed).to_parquet(path, index=False)


def _splittable(frame: pd.DataFrame) -> bool:
    target = frame.get(schema.TARGET)
    return target is not None and bool(target.notna().all()) and set(target.unique()) <= {0, 1}


def ingest(
    source: str,
    out_dir: Path,
    *,
    seed: int = 42,
    validation_fraction: float = 0.2,
    test_fraction: float = 0.2,
) -> dict[str, Any]:
    """Write the canonical table and its stratified splits to ``out_dir`` with a manifest.

    Data whose label cannot be stratified on is still written whole (validation must see it
    to report why), but without splits, so no training can start from it.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    dataset = loader.load(source)
    _write_parquet(dataset.frame, out / TABLE)
    sizes: dict[str, int] = {}
    if _splittable(dataset.frame):
        parts = stratified_split(
            dataset.frame, validation_fraction=validation_fraction, test_fraction=test_fraction, seed=seed
        )
        for name, part in parts.items():
            _write_parquet(part, out / f"{name}.parquet")
            sizes[name] = len(part)
    manifest = lineage.write_manifest(
        out,
        "dataset",
        data_version=dataset.version,
        source=dataset.source,
        rows=len(dataset.frame),
        splits=sizes,
        parameters={"seed": seed, "validation_fraction": validation_fraction, "test_fraction": test_fraction},
    )
    return manifest


def read_split(data_dir: Path, name: str) -> pd.DataFrame:
    """One split written by :func:`ingest`; a missing split is a clear error."""
    path = Path(data_dir) / f"{name}.parquet"
    if not path.exists():
        raise FileNotFoundError(f"split {name!r} not found in {data_dir} (did validation fail?)")
    return pd.read_parquet(path)


def read_table(data_dir: Path) -> pd.DataFrame:
    return pd.read_parquet(Path(data_dir) / TABLE)
