"""One self-contained HTML report per run (figures embedded as data URIs, no network), and the
same content for KFP's HTML and Markdown output artifacts.

Everything shown is read from the run summary (:func:`shopfloor.summary.build_summary`) and the
figure directories the steps wrote; every value is escaped, every embedded image is bounded.
"""

from __future__ import annotations

import base64
import html
from collections.abc import Collection, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from shopfloor.contract import run_output
from shopfloor.lineage import write_text_atomic
from shopfloor.report.figures import read_index

#: File name of a run's report, inside the run directory.
REPORT_FILE = "report.html"
#: Largest PNG embedded; a bigger file is left out with a note (a report must stay openable).
MAX_IMAGE_BYTES = 2 << 20
#: Run outputs holding figure directories, in the order the report shows them.
FIGURE_OUTPUTS = ("evaluation_figures", "conversion_figures", "validation_figures")

_CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",sans-serif;margin:1.5rem auto;max-width:72rem;
color:#1d232a;padding:0 1rem}
h1{font-size:1.5rem;margin-bottom:.2rem}h2{font-size:1.15rem;margin-top:1.8rem;border-bottom:1px solid #ddd}
table{border-collapse:collapse;margin:.5rem 0}td,th{border:1px solid #ddd;padding:.25rem .6rem;
text-align:left;font-size:.9rem}th{background:#f4f6f8}
.status{display:inline-block;padding:.2rem .7rem;border-radius:.3rem;
font-weight:600;color:#fff}.passed{background:#1f7a3a}.failed{background:#b3261e}.not_run{background:#777}
.pass{color:#1f7a3a;font-weight:600}.fail{color:#b3261e;font-weight:600}.muted{color:#666}
figure{display:inline-block;margin:.5rem 1rem .5rem 0;vertical-align:top;max-width:100%}
figure img{max-width:100%;height:auto;border:1px solid #eee}
figcaption{font-size:.8rem;color:#555;max-width:27rem}
code{font-size:.85rem}td{white-space:nowrap}td:last-child{white-space:normal}
"""


def _e(value: Any) -> str:
    return html.escape(str(value), quote=True)


def interval(estimate: Mapping[str, Any] | None) -> str:
    """``0.842 [0.759, 0.903]``; ``-`` when missing."""
    if not estimate or estimate.get("value") is None:
        return "-"
    low, high = estimate.get("ci_low"), estimate.get("ci_high")
    bounds = f" [{low:.3f}, {high:.3f}]" if low is not None and high is not None else ""
    return f"{estimate['value']:.3f}{bounds}"


def _table(headers: Sequence[str], rows: Iterable[Sequence[Any]], *, raw: bool = False) -> str:
    head = "".join(f"<th>{_e(h)}</th>" for h in headers)
    body = "".join("<tr>" + "".join(f"<td>{c if raw else _e(c)}</td>" for c in row) + "</tr>" for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _found(failure: Mapping[str, Any]) -> str:
    """What a failed expectation found: its message, else its observed value."""
    return str(failure.get("message") or failure.get("observed_value") or "")


def _number(value: Any, spec: str, unit: str = "") -> str:
    return f"{value:{spec}}{unit}" if isinstance(value, (int, float)) else "-"


def _count(value: Any) -> str:
    return f"{int(value):,}" if isinstance(value, (int, float)) else "-"


def _verdict(status: str) -> str:
    text = {"passed": "pass", "pass": "pass", "failed": "FAIL", "fail": "FAIL"}.get(status, status)
    css = "pass" if text == "pass" else "fail" if text == "FAIL" else "muted"
    return f'<span class="{css}">{_e(text)}</span>'


def figures_html(directory: Path, names: Collection[str] | None = None) -> str:
    """The figures listed in a directory's index (only ``names`` when given), each PNG inline
    as a data URI."""
    parts = []
    for figure in read_index(directory):
        if names is not None and figure.name not in names:
            continue
        png = figure.png(directory)
        if png.stat().st_size > MAX_IMAGE_BYTES:
            parts.append(
                f'<p class="muted">{_e(figure.title)}: image larger than {MAX_IMAGE_BYTES} bytes, '
                f"see {_e(png)}</p>"
            )
            continue
        data = base64.b64encode(png.read_bytes()).decode("ascii")
        parts.append(
            f'<figure><img alt="{_e(figure.title)}" src="data:image/png;base64,{data}">'
            f"<figcaption><b>{_e(figure.title)}</b>. {_e(figure.caption)}</figcaption></figure>"
        )
    return "".join(parts)


def _page(title: str, body: str) -> str:
    return (
        f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
        f'<meta name="viewport" content="width=device-width,initial-scale=1">'
        f"<title>{_e(title)}</title><style>{_CSS}</style></head><body>{body}</body></html>"
    )


def gates_rows(gates: Sequence[Mapping[str, Any]]) -> list[list[str]]:
    """(gate, verdict, value [interval], limit, reason) cells, escaped, verdict coloured."""
    rows = []
    for g in gates:
        status = str(g.get("verdict") or ("pass" if g.get("passed") else "fail"))
        limit = g.get("limit")
        rows.append(
            [
                _e(g.get("name", "?")),
                _verdict(status),
                _e(interval(g)),
                _e(f"{limit:g}" if isinstance(limit, (int, float)) else "-"),
                _e(g.get("reason", "")),
            ]
        )
    return rows


def _metric_table(metrics: Mapping[str, Mapping[str, Any]]) -> str:
    rows = [
        [model, *(interval(m.get(k)) for k in ("pr_auc", "roc_auc", "recall_at_precision", "f1"))]
        for model, m in metrics.items()
        if m
    ]
    return _table(
        [
            "model",
            "PR-AUC [95% CI]",
            "ROC-AUC [95% CI]",
            "recall@precision [95% CI]",
            "F1 at threshold [95% CI]",
        ],
        rows,
    )


def run_report_html(summary: Mapping[str, Any], run_dir: Path | None = None) -> str:
    """The whole run on one page: outcome, data version, metrics with intervals, every check and
    gate with its verdict, validation failures, equivalence, the registered version, figures."""
    run_dir = Path(run_dir or summary.get("run_dir") or ".")
    status = str(summary.get("status", "failed"))
    return _page(f"shopfloor run {run_dir.name}: {status}", _run_body(summary, run_dir, None))


def run_fragment_html(summary: Mapping[str, Any], run_dir: Path, figures: Collection[str]) -> str:
    """The run as an HTML fragment for a notebook cell: the same tables, only ``figures``."""
    return f'<div class="shopfloor-run">{_run_body(summary, Path(run_dir), figures)}</div>'


def _shipped(shipped: Mapping[str, Any] | None) -> str:
    if not shipped:
        return "none"
    pr = shipped.get("pr_auc") or {}
    return (f"{shipped.get('family')} (LiteRT {shipped.get('format')}), test PR-AUC {interval(pr)}")


def _run_body(summary: Mapping[str, Any], run_dir: Path, names: Collection[str] | None) -> str:
    status = str(summary.get("status", "failed"))
    parts = [
        f"<h1>shopfloor run <code>{_e(run_dir.name)}</code></h1>",
        f'<p><span class="status {_e(status)}" id="status">{_e(status)}</span> '
        f'<span id="reason">{_e(summary.get("reason", ""))}</span></p>',
    ]
    registered = summary.get("registry") or {}
    facts = [
        ("data version", summary.get("data_version") or "-"),
        ("source", summary.get("source") or "-"),
        ("rows", summary.get("rows") or "-"),
        ("test rows", summary.get("test_rows") or "-"),
        (
            "decision threshold",
            f"{summary['threshold']:.4f}" if summary.get("threshold") is not None else "-",
        ),
        ("policy version", (summary.get("gates") or {}).get("policy_version") or "-"),
        ("shipped to the edge", _shipped(summary.get("shipped"))),
        ("why this family", (summary.get("selection") or {}).get("reason") or "-"),
        ("champion compared", (summary.get("champion") or {}).get("version") or "none"),
        (
            "registered version",
            f"{registered.get('model')} {registered.get('version')} "
            f"({registered.get('alias')}, {registered.get('env')})"
            if registered
            else "none",
        ),
        ("wall time", f"{summary['wall_time_s']:.1f} s" if summary.get("wall_time_s") is not None else "-"),
    ]
    parts.append(_table(["", ""], facts))
    if summary.get("failure"):
        failure = summary["failure"]
        parts.append(
            f'<p class="fail">step {_e(failure.get("step"))} failed ({_e(failure.get("category"))}): '
            f"{_e(failure.get('reason'))}</p>"
        )
    parts.append("<h2>Checks</h2>")
    checks = summary.get("checks") or {}
    parts.append(
        _table(["check", "result"], [[_e(c), _verdict(str(s))] for c, s in checks.items()], raw=True)
    )
    if summary.get("metrics"):
        parts.append("<h2>Metrics on the test split</h2>")
        parts.append(_metric_table(summary["metrics"]))
    gates = (summary.get("gates") or {}).get("gates") or []
    if gates:
        parts.append("<h2>Release gates</h2>")
        parts.append(
            _table(["gate", "verdict", "value [95% CI]", "limit", "why"], gates_rows(gates), raw=True)
        )
    validation = summary.get("validation") or {}
    if validation.get("failures"):
        parts.append("<h2>Failed expectations</h2>")
        parts.append(
            _table(
                ["expectation", "column", "found", "examples"],
                [
                    [
                        f.get("expectation"),
                        f.get("column") or "-",
                        _found(f),
                        ", ".join(str(v) for v in (f.get("examples") or [])[:5]),
                    ]
                    for f in validation["failures"]
                ],
            )
        )
    formats = (summary.get("equivalence") or {}).get("formats") or {}
    if formats:
        parts.append("<h2>Edge equivalence (the model it came from vs LiteRT)</h2>")
        parts.append(
            _table(
                [
                    "format",
                    "passed",
                    "decision agreement [95% CI]",
                    "max |p diff|",
                    "size bytes",
                    "median latency",
                ],
                [
                    [
                        _e(fmt),
                        _verdict("pass" if rep.get("passed") else "fail"),
                        _e(interval(rep.get("agreement"))),
                        _e(_number(rep.get("max_abs_probability_diff"), ".2e")),
                        _e(_count((rep.get("latency") or {}).get("size_bytes"))),
                        _e(_number((rep.get("latency") or {}).get("median_us"), ".1f", " µs")),
                    ]
                    for fmt, rep in formats.items()
                ],
                raw=True,
            )
        )
    figure_parts = [figures_html(run_output(run_dir, key), names) for key in FIGURE_OUTPUTS]
    if any(figure_parts):
        parts.append("<h2>Figures</h2>" + "".join(figure_parts))
    artifacts = [(k, v) for k, v in (summary.get("artifacts") or {}).items() if v]
    if artifacts:
        parts.append("<h2>Artifacts</h2>" + _table(["artifact", "path"], artifacts))
    return "".join(parts)


def write_run_report(run_dir: Path, summary: Mapping[str, Any]) -> Path:
    """Write ``<run>/report.html`` (atomically) and return its path."""
    path = Path(run_dir) / REPORT_FILE
    write_text_atomic(path, run_report_html(summary, run_dir))
    return path


def evaluation_html(evaluation: Mapping[str, Any], verdict: Mapping[str, Any], figures_dir: Path) -> str:
    """The evaluate step's page for the KFP UI: verdict, metrics with intervals, gates, figures."""
    passed = bool(verdict.get("passed"))
    metrics = {name: table.get("overall", {}) for name, table in (evaluation.get("models") or {}).items()}
    body = (
        f'<h1>Evaluation</h1><p><span class="status {"passed" if passed else "failed"}">'
        f"{'passed' if passed else 'failed'}</span> {_e(verdict.get('reason', ''))}</p>"
        f"<p>data version <code>{_e(evaluation.get('data_version'))}</code>, policy "
        f"{_e(evaluation.get('policy_version'))}, {_e(evaluation.get('test_rows'))} test rows</p>"
        + _metric_table(metrics)
        + _table(
            ["gate", "verdict", "value [95% CI]", "limit", "why"],
            gates_rows(verdict.get("gates", [])),
            raw=True,
        )
        + figures_html(figures_dir)
    )
    return _page("shopfloor evaluation", body)


def evaluation_markdown(evaluation: Mapping[str, Any], verdict: Mapping[str, Any]) -> str:
    """The same verdict as Markdown (KFP's Markdown viewer): metrics and gates as tables."""
    lines = [
        f"# Evaluation: {'passed' if verdict.get('passed') else 'failed'}",
        "",
        str(verdict.get("reason", "")),
        "",
        f"data version `{evaluation.get('data_version')}`, {evaluation.get('test_rows')} test rows",
        "",
        "| model | PR-AUC [95% CI] | ROC-AUC [95% CI] |",
        "|---|---|---|",
    ]
    for name, table in (evaluation.get("models") or {}).items():
        overall = table.get("overall", {})
        lines.append(f"| {name} | {interval(overall.get('pr_auc'))} | {interval(overall.get('roc_auc'))} |")
    lines += ["", "| gate | verdict | value [95% CI] | limit |", "|---|---|---|---|"]
    for g in verdict.get("gates", []):
        lines.append(f"| {g.get('name')} | {g.get('verdict')} | {interval(g)} | {g.get('limit')} |")
    return "\n".join(lines) + "\n"


def validation_markdown(result: Mapping[str, Any]) -> str:
    """The validation outcome as Markdown: suite, data version and each failed expectation."""
    failures = result.get("failures") or []
    lines = [
        f"# Validation: {'passed' if result.get('success') else 'failed'}",
        "",
        f"suite {result.get('suite_name')} {result.get('suite_version')}, data version "
        f"`{result.get('data_version')}`, {result.get('n_rows')} rows",
        "",
    ]
    if failures:
        lines += ["| expectation | column | found | examples |", "|---|---|---|---|"]
        for f in failures:
            examples = ", ".join(str(v) for v in (f.get("examples") or [])[:5]).replace("|", "/")
            lines.append(
                f"| {f.get('expectation')} | {str(f.get('column') or '-').replace('|', '/')} | "
                f"{_found(f).replace('|', '/')} | {examples} |"
            )
    else:
        lines.append("Every expectation passed.")
    return "\n".join(lines) + "\n"


def with_figures(page: str, figures_dir: Path) -> str:
    """A step's own HTML page with the figures of ``figures_dir`` appended before ``</body>``
    (the validate step's report, for the KFP UI: one page, tables and pictures)."""
    figures = figures_html(figures_dir)
    if not figures:
        return page
    section = f"<h2>Figures</h2>{figures}"
    head, marker, tail = page.rpartition("</body>")
    return f"{head}{section}{marker}{tail}" if marker else page + section
