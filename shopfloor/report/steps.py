"""Figures of the evaluate and validate steps, drawn from what those steps wrote.

The evaluate step's figures re-score the test split with the same shipped SavedModel and
baseline the evaluation judged (the evaluation report keeps summaries, not per-row scores).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from shopfloor.contract import EVALUATION_REPORT, FEATURE_SPEC, VERDICT
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


def evaluation_figures(
    data_dir: Path, model_dir: Path, evaluation_dir: Path, out_dir: Path, *, resamples: int = 200
) -> list[fig.Figure]:
    """PR and ROC curves with bootstrap bands, calibration, confusion matrix and per-product-type
    metrics with the gate limits, for the candidate and the baseline on the test split."""
    from threadpoolctl import threadpool_limits

    from shopfloor.data import schema
    from shopfloor.data.ingest import read_split
    from shopfloor.inference.features import Featurizer
    from shopfloor.training import baseline as baseline_model
    from shopfloor.training.train import load_baseline, saved_model_scorer

    evaluation = _json(Path(evaluation_dir) / EVALUATION_REPORT)
    verdict = _json(Path(evaluation_dir) / VERDICT)
    test = read_split(data_dir, "test")
    x_test = Featurizer.load(Path(model_dir) / FEATURE_SPEC).transform(test)
    y = test[schema.TARGET].to_numpy()
    with threadpool_limits(1):  # 2,000 rows: OpenMP threads would only contend with the scoring
        baseline_scores = baseline_model.predict_baseline(load_baseline(model_dir), x_test)
    scores = {"keras": saved_model_scorer(model_dir)(x_test), "baseline": baseline_scores}
    pr_auc = {name: table["overall"]["pr_auc"] for name, table in evaluation["models"].items()}
    out = Path(out_dir)
    written = fig.curve_figures(y, scores, out, pr_auc=pr_auc, resamples=resamples)
    written.append(fig.calibration_figure(y, scores, out))
    written.append(fig.confusion_figure(evaluation["confusion_matrix"], float(evaluation["threshold"]), out))
    written.append(fig.per_product_type_figure(evaluation, verdict, out))
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
