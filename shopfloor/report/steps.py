"""Figures of the evaluate and validate steps, drawn from what those steps wrote.

The evaluate step's figures draw the per-row test scores the evaluation judged (its
``scores.npz``): nothing is scored twice, and no model library is loaded to draw them.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from shopfloor.contract import EVALUATION_REPORT, EVALUATION_SCORES, FAMILY_KEYS, KERAS_MLP, VERDICT
from shopfloor.errors import NotFoundError
from shopfloor.report import figures as fig


def _json(path: Path) -> dict[str, Any]:
    try:
        loaded = json.loads(Path(path).read_text())
    except FileNotFoundError:
        raise NotFoundError(f"{path} not found: the step did not write its report") from None
    if not isinstance(loaded, dict):
        raise NotFoundError(f"{path} does not hold a JSON object")
    return loaded


def evaluation_figures(evaluation_dir: Path, out_dir: Path, *, resamples: int = 200) -> list[fig.Figure]:
    """PR and ROC curves with bootstrap bands, calibration, confusion matrix and per-product-type
    metrics with the gate limits, for every model the evaluation judged on the test split (the
    shown candidate's confusion matrix and gates)."""
    from shopfloor.evaluation.evaluate import read_scores

    evaluation = _json(Path(evaluation_dir) / EVALUATION_REPORT)
    verdict = _json(Path(evaluation_dir) / VERDICT)
    try:
        y, scores, _ = read_scores(Path(evaluation_dir))
    except FileNotFoundError:
        raise NotFoundError(f"{Path(evaluation_dir) / EVALUATION_SCORES} not found: the evaluate step did "
                            "not write its scores") from None
    focus = evaluation.get("focus") or KERAS_MLP
    key = FAMILY_KEYS.get(focus, FAMILY_KEYS[KERAS_MLP])
    pr_auc = {name: table["overall"]["pr_auc"] for name, table in evaluation["models"].items()}
    out = Path(out_dir)
    written = fig.curve_figures(y, scores, out, pr_auc=pr_auc, resamples=resamples)
    written.append(fig.calibration_figure(y, scores, out))
    written.append(fig.confusion_figure(evaluation["confusion_matrix"], float(evaluation["threshold"]), out))
    written.append(fig.per_product_type_figure(evaluation, verdict, out, model=key))
    fig.write_index(out, written)
    return written


def validation_figures(data_dir: Path, result_path: Path, out_dir: Path) -> list[fig.Figure]:
    """Each profiled sensor of the ingested table against the reference profile, the columns
    of failed expectations marked."""
    from shopfloor.data.ingest import read_table
    from shopfloor.validation.profile import load_reference_profile

    result = _json(result_path)
    written = [
        fig.sensor_figures(
            read_table(data_dir), load_reference_profile(), result.get("results", []), Path(out_dir)
        )
    ]
    fig.write_index(Path(out_dir), written)
    return written
