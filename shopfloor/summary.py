"""The run summary: one machine-readable JSON and one human table from a run's artifacts.

It reads only what the steps wrote (manifests, reports, verdicts), so the same summary can
be built from a local run directory or from artifacts downloaded from a cluster run.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from shopfloor import contract
from shopfloor.contract import RUN_STEPS, run_output
from shopfloor.errors import InvalidInputError
from shopfloor.steps import StepFailure, read_failure

#: Status of one check in the summary: it ran and passed, ran and failed, or never ran
#: (an earlier step stopped the run).
PASSED, FAILED, NOT_RUN = "passed", "failed", "not_run"
#: The checks a run reports, with the pipeline task that performs each.
CHECKS: dict[str, str] = {"validation": "validate", "gates": "evaluate", "equivalence": "convert"}
#: Models of the evaluation shown in a summary, in table order (candidates, yardstick,
#: champion); the shipped LiteRT file follows as ``edge``.
MODEL_ROWS: tuple[str, ...] = (*contract.FAMILY_KEYS.values(), contract.YARDSTICK_KEY, "champion")


def _json(path: Path) -> dict[str, Any] | None:
    try:
        loaded = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return loaded if isinstance(loaded, dict) else None


def _status(document: dict[str, Any] | None, passed: bool, task: str, failure: StepFailure | None) -> str:
    """passed / failed from the check's own report; failed when its task recorded an error
    before writing one; not_run otherwise."""
    if document is not None:
        return PASSED if passed else FAILED
    return FAILED if failure is not None and failure.step == task else NOT_RUN


def _overall(table: dict[str, Any] | None) -> dict[str, Any]:
    return dict(table["overall"]) if table else {}


def build_summary(
    run_dir: Path, *, source: str, error: str | None = None, failure: StepFailure | None = None
) -> dict[str, Any]:
    """Assemble the summary from a run directory; ``error`` is the runner's failure text and
    ``failure`` what the failed task recorded (read from the run directory when not given).

    ``checks`` gives each check's status (passed, failed or not_run); ``failure`` names the
    step that stopped the run, the error's category and its reason.
    """
    paths = {key: run_output(run_dir, key) for key in contract.RUN_OUTPUTS}
    failure = failure or read_failure(run_dir, RUN_STEPS)
    dataset = _json(paths["dataset"] / contract.MANIFEST)
    validation = _json(paths["validation"])
    evaluation = _json(paths["evaluation"] / contract.EVALUATION_REPORT)
    verdict = _json(paths["evaluation"] / contract.VERDICT)
    equivalence = _json(paths["equivalence"])
    registration = _json(paths["registration"])
    edge = paths["edge_model"]
    saved_model = edge / contract.SAVED_MODEL_DIR  # the shipped family's; before issue 10 only in train
    saved_model = saved_model if saved_model.exists() else paths["model"] / contract.SAVED_MODEL_DIR
    litert = {fmt: edge / contract.litert_file(fmt) for fmt in contract.LITERT_FORMATS}
    reports = {"validation": (validation, "success"), "gates": (verdict, "passed"),
               "equivalence": (equivalence, "passed")}
    checks = {name: _status(doc, bool(doc and doc.get(key)), CHECKS[name], failure)
              for name, (doc, key) in reports.items()}

    summary: dict[str, Any] = {
        "source": source,
        "run_dir": str(run_dir),
        "data_version": dataset["data_version"] if dataset else None,
        "rows": dataset["rows"] if dataset else None,
        "checks": checks,
        "failure": failure.to_dict() if failure else None,
        "validation": {
            "status": checks["validation"],
            "success": bool(validation and validation.get("success")),
            "suite_version": validation.get("suite_version") if validation else None,
            "failures": validation.get("failures", []) if validation else [],
            "report_html": str(paths["validation_html"]) if paths["validation_html"].exists() else None,
        },
        "gates": {
            "status": checks["gates"],
            "passed": bool(verdict and verdict.get("passed")),
            "reason": verdict.get("reason") if verdict else None,
            "policy_version": verdict.get("policy_version") if verdict else None,
            "gates": verdict.get("gates", []) if verdict else [],
        },
        "equivalence": {
            "status": checks["equivalence"],
            "passed": bool(equivalence and equivalence.get("passed")),
            "reason": equivalence.get("reason") if equivalence else None,
            "formats": equivalence.get("equivalence", {}) if equivalence else {},
        },
        "registry": registration,
        "champion": (evaluation or {}).get("champion"),
        "metrics": {},
        "per_product_type": {},
        "threshold": evaluation.get("threshold") if evaluation else None,
        "test_rows": evaluation.get("test_rows") if evaluation else None,
        "artifacts": {
            "saved_model": str(saved_model) if saved_model.exists() else None,
            **{f"litert_{fmt}": str(path) if path.exists() else None for fmt, path in litert.items()},
            "validation_report": str(paths["validation"]) if paths["validation"].exists() else None,
            "validation_html": str(paths["validation_html"]) if paths["validation_html"].exists() else None,
            "evaluation": str(paths["evaluation"]) if paths["evaluation"].exists() else None,
        },
    }
    summary["selection"] = None
    summary["shipped"] = None
    if evaluation:
        models = evaluation["models"]
        summary["metrics"] = {name: _overall(models[name]) for name in MODEL_ROWS if models.get(name)}
        summary["per_product_type"] = {k: v.get("per_product_type", {}) for k, v in models.items()}
        selection = evaluation.get("selection") or {}
        summary["selection"] = {"winner": evaluation.get("selected"), "reason": selection.get("reason"),
                                "validation": selection.get("values", {})}
    if equivalence:
        edge_table = equivalence["metrics"].get(contract.EDGE_KEY) or equivalence["metrics"].get("int8")
        summary["metrics"][contract.EDGE_KEY] = _overall(edge_table)
        summary["per_product_type"][contract.EDGE_KEY] = edge_table.get("per_product_type", {})
        family = equivalence.get("family", contract.KERAS_MLP)
        fmt = equivalence.get("edge_format") or contract.choose_format(equivalence["equivalence"])
        summary["size"] = {
            "saved_model_bytes": equivalence.get("saved_model_size_bytes"),
            "edge_bytes": equivalence["equivalence"][fmt]["size_bytes"] if fmt else None,
            "edge_size_ratio": equivalence.get("edge_size_ratio", equivalence.get("int8_size_ratio")),
        }
        if fmt is not None and litert[fmt].exists():
            pr_auc = summary["metrics"][contract.EDGE_KEY]["pr_auc"]
            summary["shipped"] = {
                "family": family,
                "format": fmt,
                "path": str(litert[fmt]),
                "pr_auc": {k: pr_auc[k] for k in ("value", "ci_low", "ci_high")},
                "size_bytes": summary["size"]["edge_bytes"],
            }
    summary["status"], summary["reason"] = _outcome(summary, error, failure)
    return summary


def _outcome(summary: dict[str, Any], error: str | None, failure: StepFailure | None) -> tuple[str, str]:
    """passed only when validation, gates and equivalence all passed; else one line why,
    naming the step that stopped the run."""
    def stopped(fallback: str) -> str:
        if failure is not None:
            return f"{failure.step} failed: {failure.reason}"
        return f"{fallback}: {_first_line(error)}"

    if not summary["validation"]["success"]:
        failures = summary["validation"]["failures"]
        if failures:
            names = "; ".join(_failure_text(f) for f in failures[:6])
            more = f" and {len(failures) - 6} more" if len(failures) > 6 else ""
            return "failed", f"validation failed: {names}{more}"
        return "failed", stopped("run failed before validation")
    if not summary["gates"]["passed"]:
        return "failed", summary["gates"]["reason"] or stopped("evaluation did not finish")
    if not summary["equivalence"]["passed"]:
        return "failed", summary["equivalence"]["reason"] or stopped("conversion did not finish")
    if failure is not None or error:
        return "failed", stopped("run failed")
    registered = summary.get("registry")
    if registered:
        return "passed", (
            f"validation, gates and equivalence passed; registered {registered['model']} "
            f"{registered['version']} as {registered['alias']} ({registered['env']})"
        )
    return "passed", "validation, gates and equivalence passed"


def check_status(summary: dict[str, Any], check: str) -> str:
    """passed / failed / not_run of one check (``validation``, ``gates``, ``equivalence``)."""
    if check not in CHECKS:
        raise InvalidInputError(f"unknown check {check!r}; expected one of {list(CHECKS)}")
    status = (summary.get("checks") or {}).get(check)
    if status in (PASSED, FAILED, NOT_RUN):
        return str(status)
    block = summary.get(check) or {}  # a summary written before per-check statuses
    return PASSED if block.get("success" if check == "validation" else "passed") else FAILED


def _failure_text(failure: dict[str, Any]) -> str:
    """expectation(column) e.g. [offending values]: what to fix, on one line."""
    text = f"{failure['expectation']}({failure.get('column') or '-'})"
    examples = failure.get("examples") or []
    if examples:
        text += " e.g. " + ", ".join(str(v) for v in examples[:3])
    return text


def _first_line(text: str | None) -> str:
    return (text or "unknown error").strip().splitlines()[0][:300] if text else "unknown error"


def metric_rows(summary: dict[str, Any]) -> list[tuple[str, str, str, str, str]]:
    """(model, pr_auc, roc_auc, recall@precision, f1) cells with intervals, for a table."""
    rows = []
    for model in (*MODEL_ROWS, contract.EDGE_KEY):
        m = summary["metrics"].get(model)
        if not m:
            continue
        cells = [
            f"{m[k]['value']:.3f} [{m[k]['ci_low']:.3f}, {m[k]['ci_high']:.3f}]"
            for k in ("pr_auc", "roc_auc", "recall_at_precision", "f1")
        ]
        rows.append((model, *cells))
    return rows  # type: ignore[return-value]
