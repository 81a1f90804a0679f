"""convert: SavedModel -> LiteRT float32 and int8, checked for equivalence; golden I/O."""

from kfp import dsl
from kfp.dsl import Artifact, Dataset, Input, Metrics, Model, Output

from shopfloor.components.image import IMAGE


@dsl.component(base_image=IMAGE)
def convert(
    dataset: Input[Dataset],
    model: Input[Model],
    evaluation: Input[Artifact],
    data_version: str,
    policy_yaml: str,
    edge_model: Output[Model],
    equivalence: Output[Artifact],
    metrics: Output[Metrics],
) -> None:
    """Fails the task when a converted model is not equivalent under the policy; the
    equivalence report is written either way, the edge model only when it passes."""
    from pathlib import Path

    from shopfloor.conversion.step import convert_step
    from shopfloor.evaluation.policy import policy_file

    with policy_file(policy_yaml) as policy_path:
        outcome = convert_step(
            Path(dataset.path),
            Path(model.path),
            Path(evaluation.path),
            Path(edge_model.path),
            Path(equivalence.path),
            data_version=data_version,
            policy_path=policy_path,
        )
    for fmt, report in outcome["equivalence"].items():
        metrics.log_metric(f"{fmt}_agreement", report["agreement"]["value"])
        metrics.log_metric(f"{fmt}_max_abs_diff", report["max_abs_probability_diff"])
    if not outcome["passed"]:
        raise RuntimeError(outcome["reason"])
