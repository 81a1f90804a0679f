"""validate: Great Expectations suite over the ingested table; stops the run on failure."""

from kfp import dsl
from kfp.dsl import HTML, Artifact, Dataset, Input, Output

from shopfloor.components.image import IMAGE


@dsl.component(base_image=IMAGE)
def validate(
    dataset: Input[Dataset],
    data_version: str,
    result: Output[Artifact],
    report: Output[HTML],
) -> None:
    """Write the JSON result and HTML report, then fail the task (naming every failed
    expectation, its column and example values) so nothing downstream runs."""
    from pathlib import Path

    from shopfloor.validation.step import validate_step

    outcome = validate_step(Path(dataset.path), Path(result.path), Path(report.path), data_version)
    result.metadata.update({"success": outcome.success, "suite_version": outcome.suite_version})
    if not outcome.success:
        raise RuntimeError(outcome.reason())
