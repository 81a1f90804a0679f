"""The validate step as a plain function: the whole ingested table against the suite."""

from __future__ import annotations

from pathlib import Path

from shopfloor.data.ingest import read_table
from shopfloor.steps import StepResult, Verdict
from shopfloor.validation.report import write_report
from shopfloor.validation.validate import validate


def validate_step(data_dir: Path, json_path: Path, html_path: Path, data_version: str) -> StepResult:
    """Validate the canonical table written by ingest; always write both reports, so a
    failure can be read by a person (HTML) and a machine (JSON).

    The verdict fails when any expectation failed; the reason names each one, its column and
    example values.
    """
    report = validate(read_table(data_dir), data_version=data_version)
    write_report(report, Path(json_path), Path(html_path))
    skipped = sum(1 for r in report.results if r.get("skipped"))
    return StepResult(
        step="validate",
        verdict=Verdict.PASS if report.success else Verdict.FAIL,
        reason=report.reason(),
        metrics={
            "rows": report.n_rows,
            "expectations": len(report.results),
            "failed_expectations": len(report.failures),
            "skipped_expectations": skipped,
        },
        outputs={"result": str(json_path), "report": str(html_path), "suite_version": report.suite_version},
    )
