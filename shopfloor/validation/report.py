"""Validation report: the pipeline's gate decision plus the evidence a person reads.

The JSON form is what components pass along and archive; the HTML form is a single
self-contained page (no scripts, no external assets) so it opens from a pipeline artifact store.
"""

from __future__ import annotations

import html
import json
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from shopfloor.lineage import write_text_atomic


@dataclass
class Failure:
    """One failed expectation, with up to five offending values (or names) as examples."""

    expectation: str
    column: str | None
    message: str
    examples: list[Any] = field(default_factory=list)


@dataclass
class ValidationReport:
    """Outcome of validating one table against the versioned suite."""

    success: bool
    suite_name: str
    suite_version: str
    data_version: str
    n_rows: int
    failures: list[Failure]
    results: list[dict[str, Any]]

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe dict (numpy scalars become Python, NaN/inf become None)."""
        return jsonable(asdict(self))

    def reason(self) -> str:
        """One line naming each failed expectation, its column and examples (for logs and errors)."""
        if self.success:
            suite = f"{self.suite_name} {self.suite_version}"
            return f"validation passed: {len(self.results)} expectations of {suite}"
        parts = []
        for failure in self.failures:
            part = failure.expectation + (f"({failure.column})" if failure.column else "")
            if failure.message:
                part += f": {failure.message}"
            if failure.examples:
                part += f" e.g. {_short(failure.examples)}"
            parts.append(part)
        return "validation failed: " + "; ".join(parts)


def jsonable(value: Any) -> Any:
    """Convert numpy/pandas leftovers into plain JSON values (strict JSON: no NaN)."""
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set):
        return [jsonable(v) for v in value]
    if isinstance(value, np.ndarray):
        return [jsonable(v) for v in value.tolist()]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if value is None or isinstance(value, bool | int | float | str):
        return value
    return str(value)


def _short(values: list[Any]) -> str:
    """Examples as one compact, bounded string."""
    shown = [
        repr(v) if isinstance(v, str) else f"{v:.6g}" if isinstance(v, float) else str(v)
        for v in jsonable(values)
    ]
    text = "[" + ", ".join(shown) + "]"
    return text if len(text) <= 200 else text[:197] + "..."


def _cell(value: Any) -> str:
    if value is None:
        return ""
    text = value if isinstance(value, str) else json.dumps(jsonable(value))
    if len(text) > 300:
        text = text[:297] + "..."
    return html.escape(text)


_CSS = """
body{font-family:system-ui,sans-serif;margin:2em;color:#222}
table{border-collapse:collapse;width:100%;font-size:13px}
th,td{border:1px solid #ccc;padding:4px 6px;text-align:left;vertical-align:top}
th{background:#f2f2f2}.pass{color:#17692a}.fail{color:#b00020;font-weight:bold}.skip{color:#8a6d00}
code{font-size:12px}.why{color:#666;font-size:11px;margin-top:2px}
"""


def render_html(report: ValidationReport) -> str:
    """Self-contained HTML page: summary plus one row per expectation."""
    verdict = "PASSED" if report.success else "FAILED"
    rows = []
    for result in report.results:
        if result.get("skipped"):
            status, css = "SKIPPED", "skip"
        elif result.get("success"):
            status, css = "PASS", "pass"
        else:
            status, css = "FAIL", "fail"
        rows.append(
            "<tr>"
            f"<td><code>{html.escape(str(result['expectation']))}</code>"
            f"<div class='why'>{_cell(result.get('why'))}</div></td>"
            f"<td>{_cell(result.get('column'))}</td>"
            f'<td class="{css}">{status}</td>'
            f"<td>{_cell(result.get('observed_value'))}</td>"
            f"<td>{_cell(result.get('examples') or None)}</td>"
            f"<td>{_cell(result.get('message'))}</td>"
            "</tr>"
        )
    failures = "".join(
        f"<li><code>{html.escape(f.expectation)}</code> {_cell(f.column)}: {_cell(f.message)}</li>"
        for f in report.failures
    )
    return (
        "<!DOCTYPE html>\n<html><head><meta charset='utf-8'>"
        f"<title>Data validation {verdict}</title><style>{_CSS}</style></head><body>"
        f"<h1>Data validation: <span class='{'pass' if report.success else 'fail'}'>{verdict}</span></h1>"
        f"<p>Suite <b>{html.escape(report.suite_name)}</b> version {html.escape(report.suite_version)} · "
        f"data version <code>{html.escape(report.data_version or 'n/a')}</code> · {report.n_rows:,} rows · "
        f"{len(report.failures)} failed of {len(report.results)} expectations</p>"
        + (f"<h2>Failures</h2><ul>{failures}</ul>" if failures else "")
        + "<h2>All expectations</h2><table><tr><th>Expectation</th><th>Column</th><th>Result</th>"
        "<th>Observed</th><th>Examples</th><th>Details</th></tr>" + "".join(rows) + "</table></body></html>\n"
    )


def write_report(report: ValidationReport, json_path: Path, html_path: Path) -> None:
    """Write the JSON result and the HTML report, each atomically."""
    write_text_atomic(Path(json_path), json.dumps(report.to_dict(), indent=2, allow_nan=False) + "\n")
    write_text_atomic(Path(html_path), render_html(report))
