"""evaluate: metrics with bootstrap intervals, policy gates, verdict (and KFP metrics)."""

from kfp import dsl
from kfp.dsl import HTML, Artifact, ClassificationMetrics, Dataset, Input, Markdown, Metrics, Model, Output

from shopfloor.components.image import IMAGE


@dsl.component(base_image=IMAGE, install_kfp_package=False)
def evaluate(
    dataset: Input[Dataset],
    model: Input[Model],
    data_version: str,
    policy_yaml: str,
    registry: str,
    env: str,
    evaluation: Output[Artifact],
    metrics: Output[Metrics],
    classification: Output[ClassificationMetrics],
    figures: Output[Artifact],
    report: Output[HTML],
    markdown: Output[Markdown],
) -> bool:
    """Gate every candidate family against the release policy, the logistic-regression
    yardstick and, when the registry has one, the environment's champion; choose the family
    that ships on the validation split by the policy's selection rule.

    A failed gate does not fail the task: the pipeline branches on the returned verdict, so
    nothing is converted or registered, and the reasons are in the evaluation artifact.

    Args:
        dataset: Validation and test splits written by ingest.
        model: The trained candidates (MLP SavedModel, tree ensemble), yardstick and feature spec.
        data_version: Content hash of the data, recorded in the reports.
        policy_yaml: Release policy as YAML text; empty applies the policy shipped in the image.
        registry: Model registry to fetch the champion from; empty means SHOPFLOOR_REGISTRY,
            else the embedded filesystem registry.
        env: Registry environment whose champion is the reference.

    Returns:
        evaluation: The evaluation report (metrics with 95 % intervals, overall and per
            product type) and the gate verdict (every gate and why it passed or failed).
        metrics: The candidate's metrics with interval bounds, for the KFP UI.
        classification: ROC curve and confusion matrix at the chosen threshold, for the KFP UI.
        figures: PNG and SVG figures: PR and ROC curves with bootstrap bands, calibration,
            confusion matrix, metrics per product type with the gate limits.
        report: Self-contained HTML page of the verdict with the figures, for the KFP UI.
        markdown: The verdict's metrics and gates as Markdown, for the KFP UI.
        Output: True when a candidate passed every gate (it is the one selected to ship).
    """
    import tempfile
    from pathlib import Path

    from shopfloor.evaluation.evaluate import evaluate_step
    from shopfloor.evaluation.policy import policy_from_text
    from shopfloor.registry.steps import fetch_champion
    from shopfloor.steps import recorded_failure

    with recorded_failure("evaluate", evaluation.path):
        policy = policy_from_text(policy_yaml)
        with tempfile.TemporaryDirectory() as tmp:
            champion_dir = Path(tmp) / "champion"
            champion = fetch_champion(registry, env, champion_dir)
            result = evaluate_step(
                Path(dataset.path),
                Path(model.path),
                Path(evaluation.path),
                data_version=data_version,
                policy=policy,
                champion_dir=champion_dir if champion else None,
                champion_version=champion,
            )
        # Pictures of the verdict, for the KFP UI and the run report (same data, same model).
        import json

        from shopfloor.contract import EVALUATION_REPORT, VERDICT
        from shopfloor.report import html
        from shopfloor.report.steps import evaluation_figures

        evaluation_figures(Path(evaluation.path), Path(figures.path))
        written = json.loads((Path(evaluation.path) / EVALUATION_REPORT).read_text())
        verdict = json.loads((Path(evaluation.path) / VERDICT).read_text())
        Path(report.path).write_text(html.evaluation_html(written, verdict, Path(figures.path)))
        Path(markdown.path).write_text(html.evaluation_markdown(written, verdict))
    for name, value in result.finite_metrics().items():
        metrics.log_metric(name, value)
    roc = result.roc_curve
    classification.log_roc_curve(list(roc.fpr), list(roc.tpr), list(roc.thresholds))
    classification.log_confusion_matrix(["ok", "failure"], [list(row) for row in result.confusion_matrix])
    evaluation.metadata.update({"passed": result.passed, "verdict": result.verdict.value,
                                "data_version": data_version})
    return result.passed
