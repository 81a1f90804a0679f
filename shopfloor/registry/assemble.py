"""Turn a training run's artifacts into a model-version directory (the registry CONTRACT).

Layout of a version (relative to ``<registry>/<model>/<version>/``)::

    manifest.json                     registry manifest (written by Registry.publish)
    saved_model/...                   TF SavedModel
    model_float32.tflite, model_int8.tflite
    feature_spec.json, decision.json  (decision.json holds "threshold")
    golden_float32.{json,npz}, golden_int8.{json,npz}
    evidence/evaluation.json, verdict.json, equivalence.json, validation.json

Only runs that passed validation, the evaluation gates and conversion equivalence can be
assembled: the registry is where deployable models come from, so a failed run is refused
here with the reason, not discovered later on an edge box.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

from shopfloor.lineage import MANIFEST, write_json_atomic
from shopfloor.registry.errors import AssemblyError

FORMATS = ("float32", "int8")
EVIDENCE = {
    "evaluation": "evidence/evaluation.json",
    "verdict": "evidence/verdict.json",
    "equivalence": "evidence/equivalence.json",
    "validation": "evidence/validation.json",
}
DRAFT_KIND = "shopfloor-model-draft"


def _load(path: Path, what: str) -> dict[str, Any]:
    if not path.is_file():
        raise AssemblyError(f"missing {what}: {path}")
    try:
        loaded = json.loads(path.read_text())
    except ValueError as exc:
        raise AssemblyError(f"{what} is not valid JSON: {path}: {exc}") from exc
    if not isinstance(loaded, dict):
        raise AssemblyError(f"{what} is not a JSON object: {path}")
    return loaded


def _manifest(directory: Path) -> dict[str, Any]:
    path = directory / MANIFEST
    try:
        return json.loads(path.read_text()) if path.is_file() else {}
    except ValueError:
        return {}


def _check_passed(verdict: dict[str, Any], equivalence: dict[str, Any], validation: dict[str, Any]) -> None:
    if not validation.get("success"):
        raise AssemblyError("refusing to register: data validation failed")
    if not verdict.get("passed"):
        raise AssemblyError(f"refusing to register: evaluation gates failed: {verdict.get('reason')}")
    if not equivalence.get("passed"):
        raise AssemblyError(
            f"refusing to register: conversion equivalence failed: {equivalence.get('reason')}")


def assemble_from_artifacts(
    model_dir: Path,
    edge_dir: Path,
    evaluation_dir: Path,
    equivalence_path: Path,
    validation_path: Path,
    dest: Path,
) -> Path:
    """Build the version layout in ``dest`` from step outputs (KFP artifact paths)."""
    model_dir, edge_dir, evaluation_dir = Path(model_dir), Path(edge_dir), Path(evaluation_dir)
    dest = Path(dest)
    if not (model_dir / "saved_model" / "saved_model.pb").is_file():
        raise AssemblyError(f"missing trained SavedModel: {model_dir / 'saved_model'}")
    if not edge_dir.is_dir() or not any((edge_dir / f"model_{f}.tflite").is_file() for f in FORMATS):
        raise AssemblyError(f"run has no converted edge model (no model_*.tflite in {edge_dir})")
    if not (edge_dir / "decision.json").is_file():
        raise AssemblyError(f"missing decision.json in edge model {edge_dir}")
    evaluation = _load(evaluation_dir / "evaluation.json", "evaluation report")
    verdict = _load(evaluation_dir / "verdict.json", "gate verdict")
    equivalence = _load(Path(equivalence_path), "conversion equivalence report")
    validation = _load(Path(validation_path), "data validation result")
    _check_passed(verdict, equivalence, validation)
    if dest.exists() and any(dest.iterdir()):
        raise AssemblyError(f"destination {dest} is not empty")

    dest.mkdir(parents=True, exist_ok=True)
    shutil.copytree(model_dir / "saved_model", dest / "saved_model", dirs_exist_ok=True)
    spec = edge_dir / "feature_spec.json"
    shutil.copy2(spec if spec.is_file() else model_dir / "feature_spec.json", dest / "feature_spec.json")
    shutil.copy2(edge_dir / "decision.json", dest / "decision.json")
    for fmt in FORMATS:
        for name in (f"model_{fmt}.tflite", f"golden_{fmt}.json", f"golden_{fmt}.npz"):
            if (edge_dir / name).is_file():
                shutil.copy2(edge_dir / name, dest / name)
    for key, payload in (("evaluation", evaluation), ("verdict", verdict),
                         ("equivalence", equivalence), ("validation", validation)):
        write_json_atomic(dest / EVIDENCE[key], payload)

    model_m, eval_m, edge_m = _manifest(model_dir), _manifest(evaluation_dir), _manifest(edge_dir)
    write_json_atomic(dest / MANIFEST, {
        "kind": DRAFT_KIND,
        "code_version": model_m.get("code_version") or edge_m.get("code_version"),
        "data_version": model_m.get("data_version") or verdict.get("data_version"),
        "evaluated_against": eval_m.get("champion"),
        "lineage": {
            name: {k: m.get(k) for k in ("kind", "data_version", "code_version", "created_at")}
            for name, m in (("model", model_m), ("evaluation", eval_m), ("edge_model", edge_m)) if m
        },
    })
    return dest


def assemble_version(run_dir: Path, dest: Path) -> Path:
    """Build the version layout from a local run directory (``shopfloor run`` output)."""
    run = Path(run_dir)
    if not run.is_dir():
        raise AssemblyError(f"run directory not found: {run}")
    return assemble_from_artifacts(
        model_dir=run / "train" / "model",
        edge_dir=run / "convert" / "edge_model",
        evaluation_dir=run / "evaluate" / "evaluation",
        equivalence_path=run / "convert" / "equivalence",
        validation_path=run / "validate" / "result",
        dest=dest,
    )


def _overall(block: dict[str, Any] | None) -> dict[str, Any] | None:
    return dict(block["overall"]) if block and "overall" in block else None


def describe_version(version_dir: Path) -> dict[str, Any]:
    """Manifest fields derived from a version directory's evidence (checked, not trusted)."""
    root = Path(version_dir)
    if not (root / "saved_model").is_dir():
        raise AssemblyError(f"version directory {root} has no saved_model/")
    formats = [f for f in FORMATS if (root / f"model_{f}.tflite").is_file()]
    if not formats:
        raise AssemblyError(f"version directory {root} has no model_*.tflite")
    if not (root / "feature_spec.json").is_file():
        raise AssemblyError(f"version directory {root} has no feature_spec.json")
    decision = _load(root / "decision.json", "decision.json")
    if "threshold" not in decision:
        raise AssemblyError(f"{root / 'decision.json'} has no threshold")
    ev = {k: _load(root / rel, rel) for k, rel in EVIDENCE.items()}
    _check_passed(ev["verdict"], ev["equivalence"], ev["validation"])
    draft = _manifest(root)
    # An assembly draft, or the registry manifest of a fetched version being re-published.
    draft = draft if draft.get("kind") in (DRAFT_KIND, "shopfloor-model-version") else {}

    models = ev["evaluation"].get("models", {})
    metrics = {name: _overall(models.get(name)) for name in ("keras", "baseline")}
    metrics["int8"] = _overall(ev["equivalence"].get("metrics", {}).get("int8"))
    golden = {
        f: {"json": f"golden_{f}.json", "npz": f"golden_{f}.npz"}
        for f in FORMATS if (root / f"golden_{f}.json").is_file() and (root / f"golden_{f}.npz").is_file()
    }
    return {
        "data_version": draft.get("data_version") or ev["verdict"].get("data_version")
        or ev["validation"].get("data_version"),
        "validation_suite": {
            "name": ev["validation"].get("suite_name"),
            "version": ev["validation"].get("suite_version"),
        },
        "code_version": draft.get("code_version"),
        "metrics": {k: v for k, v in metrics.items() if v is not None},
        "gates": {
            "passed": bool(ev["verdict"].get("passed")),
            "policy_version": ev["verdict"].get("policy_version"),
            "reason": ev["verdict"].get("reason"),
            "gates": [
                {k: g.get(k) for k in ("name", "metric", "passed", "value", "ci_low", "ci_high", "limit")}
                for g in ev["verdict"].get("gates", [])
            ],
            "equivalence": {
                "passed": bool(ev["equivalence"].get("passed")),
                "reason": ev["equivalence"].get("reason"),
                "formats": {
                    f: bool(r.get("passed")) for f, r in ev["equivalence"].get("equivalence", {}).items()
                },
            },
            "validation": bool(ev["validation"].get("success")),
        },
        "evaluated_against": draft.get("evaluated_against"),
        "formats": ["saved_model", *formats],
        "golden": golden,
        "threshold": float(decision["threshold"]),
        "lineage": draft.get("lineage", {}),
    }
