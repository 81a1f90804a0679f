"""The validate step as a plain function: the whole ingested table against the suite."""

from __future__ import annotations

from pathlib import Path

from shopfloor.data.ingest import read_table
from shopfloor.validation.report import ValidationReport, write_report
from shopfloor.validation.validate import validate


def validate_step(data_dir: Path, json_path: Path, html_path: Path, data_version: str) -> ValidationReport:
    """Validate the canonical table written by ingest; always write both reports, so a
    failure can be read by a person (HTML) and a machine (JSON)."""
    report = validate(read_table(data_dir), data_version=data_version)
    write_report(report, Path(json_path), Path(html_path))
    return report
