"""The run summary: one machine-readable JSON and one human table from a run's artifacts.

It reads only what the steps wrote (manifests, reports, verdicts), so the same summary can
be built from a local run directory or from artifacts downloaded from a cluster run.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

#: Task output directories of a run, by what they hold (KFP local layout: task/output-name).
STEP_OUTPUTS = {
    "dataset": ("ingest", "dataset"),
    "validation": ("validate", "result"),
    "validation_html": ("validate", "report"),
    "model": ("train", "model"),
    "evaluation": ("evaluate", "evaluation"),
    "equivalence": ("convert", "equivalence"),
    "edge_model": ("convert", "edge_model"),
    "registration": ("register", "registration"),
}
STEPS = ("ingest", "validate", "train", "evaluate", "convert", "register", "deploy-cloud")


def _json(path: Path) -> dict[str, Any] | None:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def _overall(table: dict[str, Any] | None) -> dict[str, Any]:
    return dict(table["overall"]) if table else {}


def build_summary(run_dir: Path, *, source: str, error: str | None = None) -> dict[str, Any]:
    """Assemble the summary from a run directory; ``error`` is the runner's failure text."""
    paths = {k: Path(run_dir) / task / out for k, (task, out) in STEP_OUTPUTS.items()}
    dataset = _json(paths["dataset"] / "manifest.json")
    validation = _json(paths["validation"])
    evaluation = _json(paths["evaluation"] / "evaluation.json")
    verdict = _json(paths["evaluation"] / "verdict.json")
    equivalence = _json(paths["equivalence"])
    registration = _json(paths["registration"])
    edge = paths["edge_model"]
    saved_model = paths["model"] / "saved_model"

    summary: dict[str, Any] = {
        "source": source,
        "run_dir": str(run_dir),
        "data_version": dataset["data_version"] if dataset else None,
        "rows": dataset["rows"] if dataset else None,
        "validation": {
            "success": bool(validation and validation.get("success")),
            "suite_version": validation.get("suite_version") if validation else None,
            "failures": validation.get("failures", []) if validation else [],
            "report_html": str(paths["validation_html"]) if paths["validation_html"].exists() else None,
        },
        "gates": {
            "passed": bool(verdict and verdict.get("passed")),
            "reason": verdict.get("reason") if verdict else None,
            "policy_version": verdict.get("policy_version") if verdict else None,
            "gates": verdict.get("gates", []) if verdict else [],
        },
        "equivalence": {
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
            "litert_float32": str(edge / "model_float32.tflite")
            if (edge / "model_float32.tflite").exists()
            else None,
            "litert_int8": str(edge / "model_int8.tflite") if (edge / "model_int8.tflite").exists() else None,
            "validation_report": str(paths["validation"]) if paths["validation"].exists() else None,
            "validation_html": str(paths["validation_html"]) if paths["validation_html"].exists() else None,
            "evaluation": str(paths["evaluation"]) if paths["evaluation"].exists() else None,
        },
    }
    if evaluation:
        models = evaluation["models"]
        summary["metrics"] = {
            "keras": _overall(models.get("keras")),
            "baseline": _overall(models.get("baseline")),
        }
        summary["per_product_type"] = {k: v.get("per_product_type", {}) for k, v in models.items()}
    if equivalence:
        summary["metrics"]["int8"] = _overall(equivalence["metrics"]["int8"])
        summary["per_product_type"]["int8"] = equivalence["metrics"]["int8"].get("per_product_type", {})
        summary["size"] = {
            "saved_model_bytes": equivalence.get("saved_model_size_bytes"),
            "int8_bytes": equivalence["equivalence"]["int8"]["size_bytes"],
            "int8_size_ratio": equivalence.get("int8_size_ratio"),
        }
    summary["status"], summary["reason"] = _outcome(summary, error)
    return summary


def _outcome(summary: dict[str, Any], error: str | None) -> tuple[str, str]:
    """passed only when validation, gates and equivalence all passed; else one line why."""
    if not summary["validation"]["success"]:
        failures = summary["validation"]["failures"]
        if failures:
            names = "; ".join(_failure_text(f) for f in failures[:6])
            more = f" and {len(failures) - 6} more" if len(failures) > 6 else ""
            return "failed", f"validation failed: {names}{more}"
        return "failed", f"run failed before validation: {_first_line(error)}"
    if not summary["gates"]["passed"]:
        return "failed", summary["gates"]["reason"] or f"evaluation did not finish: {_first_line(error)}"
    if not summary["equivalence"]["passed"]:
        return "failed", summary["equivalence"][
            "reason"
        ] or f"conversion did not finish: {_first_line(error)}"
    if error:
        return "failed", _first_line(error)
    registered = summary.get("registry")
    if registered:
        return "passed", (
            f"validation, gates and equivalence passed; registered {registered['model']} "
            f"{registered['version']} as {registered['alias']} ({registered['env']})"
        )
    return "passed", "validation, gates and equivalence passed"


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
    for model in ("keras", "int8", "baseline"):
        m = summary["metrics"].get(model)
        if not m:
            continue
        cells = [
            f"{m[k]['value']:.3f} [{m[k]['ci_low']:.3f}, {m[k]['ci_high']:.3f}]"
            for k in ("pr_auc", "roc_auc", "recall_at_precision", "f1")
        ]
        rows.append((model, *cells))
    return rows  # type: ignore[return-value]
