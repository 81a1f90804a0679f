"""Ingest: load, canonicalise, split, and record the data version (the pipeline's first step)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pyarrow as pa

from shopfloor import lineage
from shopfloor.data import loader, schema
from shopfloor.data.split import check_fractions, stratified_split
from shopfloor.errors import InvalidInputError, NotFoundError
from shopfloor.steps import StepResult, Verdict

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


def _classes_problem(
    frame: pd.DataFrame, parts: dict[str, pd.DataFrame], fractions: dict[str, float]
) -> str | None:
    """Why these splits cannot train and judge a failure model, or None.

    Every split needs both classes: train to learn from, validation to choose the threshold,
    test to bound the metrics. Seen here, the run stops in seconds at the step that can tell,
    instead of after training, in a later step.
    """
    counts = frame[schema.TARGET].value_counts()
    failures, ok = int(counts.get(1, 0)), int(counts.get(0, 0))
    if failures == 0 or ok == 0:
        only = "failure" if ok == 0 else "non-failure"
        return (f"{schema.TARGET} holds a single class ({len(frame)} rows, all {only}): a failure model "
                f"needs rows of both classes")
    for name, part in parts.items():
        present = set(part[schema.TARGET].unique())
        if present != {0, 1}:
            missing = "failure" if 1 not in present else "non-failure"
            share = f" at {name}_fraction {fractions[name]}" if name in fractions else ""
            return (f"the {name} split would hold no {missing} rows ({failures} failures and {ok} "
                    f"non-failures in {len(frame)} rows{share}): every split needs both classes")
    return None


def ingest(
    source: str,
    out_dir: Path,
    *,
    seed: int = 42,
    validation_fraction: float = 0.2,
    test_fraction: float = 0.2,
) -> StepResult:
    """Write the canonical table and its stratified splits to ``out_dir`` with a manifest.

    Data whose label cannot be stratified on is still written whole (validation must see it
    to report why), but without splits, so no training can start from it. A label of one
    class, or splits that would miss a class, stop here (InvalidInputError) with nothing written.
    """
    validation_fraction, test_fraction = check_fractions(validation_fraction, test_fraction)
    dataset = loader.load(source)
    parts: dict[str, pd.DataFrame] = {}
    if _splittable(dataset.frame):
        parts = stratified_split(
            dataset.frame, validation_fraction=validation_fraction, test_fraction=test_fraction, seed=seed
        )
        problem = _classes_problem(
            dataset.frame, parts, {"validation": validation_fraction, "test": test_fraction})
        if problem:
            raise InvalidInputError(f"cannot split {dataset.source}: {problem}")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    _write_parquet(dataset.frame, out / TABLE)
    for name, part in parts.items():
        _write_parquet(part, out / f"{name}.parquet")
    sizes = {name: len(part) for name, part in parts.items()}
    lineage.write_manifest(
        out,
        "dataset",
        data_version=dataset.version,
        source=dataset.source,
        rows=len(dataset.frame),
        splits=sizes,
        parameters={"seed": seed, "validation_fraction": validation_fraction, "test_fraction": test_fraction},
    )
    if sizes:
        reason = (f"{len(dataset.frame)} rows split {sizes['train']}/{sizes['validation']}/{sizes['test']} "
                  f"(train/validation/test)")
    else:
        reason = (f"{len(dataset.frame)} rows written unsplit: {schema.TARGET} is missing or not 0/1 "
                  f"(validation reports why)")
    return StepResult(
        step="ingest",
        verdict=Verdict.PASS,
        reason=reason,
        metrics={"rows": len(dataset.frame), **{f"{name}_rows": n for name, n in sizes.items()}},
        outputs={"data_version": dataset.version, "source": dataset.source, "dataset": str(out)},
    )


def read_split(data_dir: Path, name: str) -> pd.DataFrame:
    """One split written by :func:`ingest`; a missing split is a clear error."""
    path = Path(data_dir) / f"{name}.parquet"
    if not path.exists():
        raise NotFoundError(f"split {name!r} not found in {data_dir} (did validation fail?)")
    return pd.read_parquet(path)


def read_table(data_dir: Path) -> pd.DataFrame:
    return pd.read_parquet(Path(data_dir) / TABLE)
