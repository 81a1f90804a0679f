"""evaluate: metrics with bootstrap intervals, policy gates, verdict (and KFP metrics)."""

from kfp import dsl
from kfp.dsl import Artifact, ClassificationMetrics, Dataset, Input, Metrics, Model, Output

from shopfloor.components.image import IMAGE


@dsl.component(base_image=IMAGE)
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
) -> bool:
    """Gate the candidate against the baseline and, when the registry has one, the env's
    champion; returns whether every gate passed (the reasons are in the ``evaluation``
    artifact). ``policy_yaml`` empty means the policy shipped in the image; ``registry``
    empty means the default registry (SHOPFLOOR_REGISTRY or the embedded one)."""
    import tempfile
    from pathlib import Path

    from shopfloor.evaluation.evaluate import evaluate_step
    from shopfloor.evaluation.policy import policy_file
    from shopfloor.registry.steps import fetch_champion

    with tempfile.TemporaryDirectory() as tmp, policy_file(policy_yaml) as policy_path:
        champion_dir = Path(tmp) / "champion"
        champion = fetch_champion(registry, env, champion_dir)
        outcome = evaluate_step(
            Path(dataset.path),
            Path(model.path),
            Path(evaluation.path),
            data_version=data_version,
            policy_path=policy_path,
            champion_dir=champion_dir if champion else None,
            champion_version=champion,
        )
    figures = outcome["evaluation"]
    for name, estimate in figures["models"]["keras"]["overall"].items():
        for part in ("value", "ci_low", "ci_high"):
            metrics.log_metric(f"{name}_{part}", estimate[part])
    roc = figures["roc_curve"]
    classification.log_roc_curve(roc["fpr"], roc["tpr"], roc["thresholds"])
    classification.log_confusion_matrix(["ok", "failure"], figures["confusion_matrix"])
    evaluation.metadata.update({"passed": outcome["passed"], "data_version": data_version})
    return bool(outcome["passed"])
