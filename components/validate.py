"""validate: Great Expectations suite over the ingested table; stops the run on failure."""

from kfp import dsl
from kfp.dsl import HTML, Artifact, Dataset, Input, Markdown, Output

from shopfloor.components.image import IMAGE


@dsl.component(base_image=IMAGE, install_kfp_package=False)
def validate(
    dataset: Input[Dataset],
    data_version: str,
    result: Output[Artifact],
    report: Output[HTML],
    figures: Output[Artifact],
    markdown: Output[Markdown],
) -> None:
    """Check the ingested table against the versioned Great Expectations suite.

    Both reports are written either way; on failure the task then fails, naming every failed
    expectation, its column and example values, so nothing downstream runs.

    Args:
        dataset: The canonical table written by ingest.
        data_version: Content hash of the table, recorded in the reports.

    Returns:
        result: JSON result: every expectation's outcome, the failures and the suite version.
        report: Self-contained HTML report for a person: every expectation, then the figures.
        figures: PNG and SVG of each sensor's distribution against the reference profile, the
            columns of failed expectations marked.
        markdown: The outcome and every failed expectation as Markdown, for the KFP UI.
    """
    from pathlib import Path

    from shopfloor.steps import recorded_failure
    from shopfloor.validation.step import validate_step

    with recorded_failure("validate", result.path):
        outcome = validate_step(Path(dataset.path), Path(result.path), Path(report.path), data_version)
        result.metadata.update({"success": outcome.passed, "suite_version": outcome.outputs["suite_version"]})
        # Pictures first: a failed suite is when a person most needs to see the data.
        import json

        from shopfloor.report import html
        from shopfloor.report.steps import validation_figures

        try:
            validation_figures(Path(dataset.path), Path(result.path), Path(figures.path))
            page = Path(report.path)
            page.write_text(html.with_figures(page.read_text(), Path(figures.path)))
            Path(markdown.path).write_text(html.validation_markdown(json.loads(Path(result.path).read_text())))
        finally:  # a failed suite stays the reason, even if a picture could not be drawn
            outcome.raise_for_verdict()
