"""train: every candidate family (Keras MLP, tree ensemble) and the yardstick on the training split."""

from kfp import dsl
from kfp.dsl import Dataset, Input, Model, Output

from shopfloor.components.image import IMAGE


@dsl.component(base_image=IMAGE, install_kfp_package=False)
def train(
    dataset: Input[Dataset], data_version: str, train_params: dict, policy_yaml: str, model: Output[Model]
) -> None:
    """Fit the engineered features' standardisation, each candidate family of the release
    policy (the Keras MLP, the gradient-boosted tree ensemble) and the logistic-regression
    yardstick every candidate must be non-inferior to.

    Args:
        dataset: Splits written by ingest (train, and validation for the loss curve).
        data_version: Content hash of the data, recorded in the model's manifest.
        train_params: Training overrides by name (see shopfloor.training.params.TrainParams);
            empty keeps the defaults.
        policy_yaml: Release policy as YAML text (its candidates are trained); empty applies
            the policy shipped in the image.

    Returns:
        model: The MLP's SavedModel (serving_default and logits signatures), the tree
            ensemble, the yardstick, the feature spec and a lineage manifest.
    """
    from pathlib import Path

    from shopfloor.evaluation.policy import policy_from_text
    from shopfloor.steps import recorded_failure
    from shopfloor.training.params import params_from_dict
    from shopfloor.training.train import train_step

    with recorded_failure("train", model.path):
        params = params_from_dict(train_params)
        families = policy_from_text(policy_yaml).candidates
        result = train_step(Path(dataset.path), Path(model.path), params, data_version, families)
        result.raise_for_verdict()
    model.metadata.update(
        {"data_version": data_version, "framework": "tensorflow", "parameters": params.to_dict()}
    )
