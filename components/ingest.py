"""ingest: source URI -> canonical table and stratified splits; returns the data version."""

from typing import NamedTuple

from kfp import dsl
from kfp.dsl import Dataset, Output

from shopfloor.components.image import IMAGE


@dsl.component(base_image=IMAGE)
def ingest(
    source: str,
    seed: int,
    validation_fraction: float,
    test_fraction: float,
    dataset: Output[Dataset],
) -> NamedTuple("IngestOutputs", [("data_version", str)]):  # type: ignore[valid-type]
    """Load ``source`` (path, s3:// URI or ``embedded:ai4i2020``); output its data version."""
    from collections import namedtuple
    from pathlib import Path

    from shopfloor.data.ingest import ingest as ingest_step

    manifest = ingest_step(
        source,
        Path(dataset.path),
        seed=seed,
        validation_fraction=validation_fraction,
        test_fraction=test_fraction,
    )
    dataset.metadata["data_version"] = manifest["data_version"]
    dataset.metadata["rows"] = manifest["rows"]
    return namedtuple("IngestOutputs", ["data_version"])(manifest["data_version"])
