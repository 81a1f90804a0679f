"""convert: the winning family -> LiteRT (MLP: float32 and int8; trees: float32), checked for
equivalence; golden I/O."""

from kfp import dsl
from kfp.dsl import Artifact, Dataset, Input, Metrics, Model, Output

from shopfloor.components.image import IMAGE


@dsl.component(base_image=IMAGE, install_kfp_package=False)
def convert(
    dataset: Input[Dataset],
    model: Input[Model],
    evaluation: Input[Artifact],
    data_version: str,
    policy_yaml: str,
    edge_model: Output[Model],
    equivalence: Output[Artifact],
    metrics: Output[Metrics],
    figures: Output[Artifact],
) -> None:
    """Convert the family the evaluation selected to LiteRT and check each file against the
    model it came from: the Keras MLP's SavedModel to float32 and int8, the tree ensemble
    (compiled to tensor operations) to float32 only, judged against scikit-learn.

    The equivalence report is written either way, the edge model only when every format is
    equivalent under the policy; otherwise the task fails naming each failed limit.

    Args:
        dataset: Train split (int8 calibration) and test split (equivalence) from ingest.
        model: The trained candidates with their feature spec.
        evaluation: Evaluation artifact: the selected family, its decision threshold and the
            bootstrap seed.
        data_version: Content hash of the data, recorded in the reports.
        policy_yaml: Release policy as YAML text; empty applies the policy shipped in the image.

    Returns:
        edge_model: The shipped family's SavedModel and LiteRT files, golden inputs/outputs,
            feature spec, decision and reference statistics for the edge.
        equivalence: Equivalence report per format: agreement, probability differences,
            PR-AUC drop, size and single-row latency.
        metrics: Agreement, differences, sizes and latency per format, for the KFP UI.
        figures: The equivalence scatter (reference vs LiteRT probabilities per test row), PNG
            and SVG.
    """
    from pathlib import Path

    from shopfloor.conversion.step import convert_step
    from shopfloor.evaluation.policy import policy_from_text
    from shopfloor.steps import recorded_failure

    with recorded_failure("convert", equivalence.path):
        result = convert_step(
            Path(dataset.path),
            Path(model.path),
            Path(evaluation.path),
            Path(edge_model.path),
            Path(equivalence.path),
            data_version=data_version,
            policy=policy_from_text(policy_yaml),
            figures_dir=Path(figures.path),
        )
        for name, value in result.finite_metrics().items():
            metrics.log_metric(name, value)
        result.raise_for_verdict()
