"""Builders shared by the registry tests: a minimal training-run layout in tmp (no TF needed).

Collected by pytest as a module without tests; imported by test_registry*.py.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

DATA_VERSION = "sha256:" + "ab" * 32


def _interval(value: float) -> dict[str, float]:
    return {"value": value, "ci_low": value - 0.05, "ci_high": min(value + 0.05, 1.0)}


def _overall(pr_auc: float) -> dict[str, Any]:
    return {"overall": {m: _interval(pr_auc) for m in ("pr_auc", "roc_auc", "recall_at_precision", "f1")},
            "per_product_type": {}}


def _write(path: Path, payload: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(payload, bytes):
        path.write_bytes(payload)
    else:
        path.write_text(json.dumps(payload, indent=2))


def make_run_dir(root: Path, *, gates: bool = True, edge: bool = True, seed: int = 0) -> Path:
    """The artifact layout of a finished local run, with tiny stand-in model files."""
    run = root / f"shopfloor-training-test-{seed}"
    model = run / "train" / "model"
    _write(model / "saved_model" / "saved_model.pb", b"pb" * 50 + bytes([seed]))
    _write(model / "saved_model" / "variables" / "variables.index", b"idx" + bytes([seed]))
    _write(model / "saved_model" / "variables" / "variables.data-00000-of-00001", bytes(range(256)) * 4)
    _write(model / "feature_spec.json", {"features": ["torque_nm", "tool_wear_min"]})
    _write(model / "baseline.pkl", b"not registered")
    _write(model / "manifest.json", {"kind": "model", "data_version": DATA_VERSION, "code_version": "abc123"})
    evaluation = run / "evaluate" / "evaluation"
    _write(evaluation / "evaluation.json", {
        "data_version": DATA_VERSION, "threshold": 0.42,
        "models": {"keras": _overall(0.84), "baseline": _overall(0.8)},
    })
    _write(evaluation / "verdict.json", {
        "data_version": DATA_VERSION, "passed": gates, "policy_version": "test-1",
        "reason": "all 1 gates passed" if gates else "min_pr_auc: lower bound 0.1 below 0.6",
        "gates": [{"name": "min_pr_auc", "metric": "pr_auc", "passed": gates, "value": 0.84,
                   "ci_low": 0.79, "ci_high": 0.89, "limit": 0.6, "reason": "..."}],
    })
    _write(evaluation / "manifest.json", {"kind": "evaluation", "champion": None, "code_version": "abc123"})
    _write(run / "validate" / "result", {"success": True, "suite_name": "shopfloor_sensor_suite",
                                         "suite_version": "1.0.0", "data_version": DATA_VERSION,
                                         "failures": []})
    if edge:
        convert = run / "convert"
        _write(convert / "equivalence", {
            "passed": True, "reason": "equivalent", "data_version": DATA_VERSION,
            "equivalence": {"float32": {"passed": True}, "int8": {"passed": True}},
            "metrics": {"int8": _overall(0.83)},
        })
        em = convert / "edge_model"
        _write(em / "model_float32.tflite", b"TFL3" + b"f" * 300)
        _write(em / "model_int8.tflite", b"TFL3" + b"i" * 120)
        _write(em / "feature_spec.json", {"features": ["torque_nm", "tool_wear_min"]})
        _write(em / "decision.json", {"threshold": 0.42, "target": "machine_failure"})
        for fmt in ("float32", "int8"):
            _write(em / f"golden_{fmt}.json", {"n": 4, "tolerance": 0.005})
            _write(em / f"golden_{fmt}.npz", b"PK" + fmt.encode() * 10)
        _write(em / "manifest.json", {"kind": "edge_model", "code_version": "abc123"})
    return run


def make_version_dir(root: Path, *, seed: int = 0) -> Path:
    """A tiny assembled version directory (the registry CONTRACT layout)."""
    from shopfloor.registry import assemble_version

    return assemble_version(make_run_dir(root / "runs", seed=seed), root / f"version-{seed}")
