"""ingest: source URI -> canonical table and stratified splits; returns the data version."""

from typing import NamedTuple

from kfp import dsl
from kfp.dsl import Dataset, Output

from shopfloor.components.image import IMAGE


@dsl.component(base_image=IMAGE, install_kfp_package=False)
def ingest(
    source: str,
    seed: int,
    validation_fraction: float,
    test_fraction: float,
    dataset: Output[Dataset],
) -> NamedTuple("IngestOutputs", [("data_version", str)]):  # type: ignore[valid-type]
    """Load sensor data, map it onto the canonical schema and split it, stratified and seeded.

    The run stops here when the data cannot be read at all, or when its failure label has a
    single class or a split would miss one (nothing is written then). Data whose content is
    wrong is written whole for validation to report.

    Args:
        source: Sensor table: a CSV/Parquet path, an s3://bucket/key URI, or embedded:ai4i2020.
        seed: Seed of the stratified split.
        validation_fraction: Share of rows for the validation split, in (0, 1).
        test_fraction: Share of rows for the test split, in (0, 1).

    Returns:
        dataset: The canonical table, its train/validation/test splits and a lineage manifest.
        data_version: Content hash of the canonical table (sha256:...), the same whatever
            format or location the rows were read from.
    """
    from collections import namedtuple
    from pathlib import Path

    from shopfloor.data.ingest import ingest as ingest_step
    from shopfloor.steps import recorded_failure

    with recorded_failure("ingest", dataset.path):
        result = ingest_step(
            source,
            Path(dataset.path),
            seed=seed,
            validation_fraction=validation_fraction,
            test_fraction=test_fraction,
        )
        result.raise_for_verdict()
    dataset.metadata["data_version"] = result.outputs["data_version"]
    dataset.metadata["rows"] = int(result.metrics["rows"])
    return namedtuple("IngestOutputs", ["data_version"])(result.outputs["data_version"])
