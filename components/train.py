"""train: Keras MLP + scikit-learn baseline on the training split -> SavedModel."""

from kfp import dsl
from kfp.dsl import Dataset, Input, Model, Output

from shopfloor.components.image import IMAGE


@dsl.component(base_image=IMAGE, install_kfp_package=False)
def train(dataset: Input[Dataset], data_version: str, train_params: dict, model: Output[Model]) -> None:
    """Fit the engineered features' standardisation, the Keras MLP and the baseline.

    Args:
        dataset: Splits written by ingest (train, and validation for the loss curve).
        data_version: Content hash of the data, recorded in the model's manifest.
        train_params: Training overrides by name (see shopfloor.training.params.TrainParams);
            empty keeps the defaults.

    Returns:
        model: SavedModel (serving_default and logits signatures), feature spec, baseline
            and a lineage manifest.
    """
    from pathlib import Path

    from shopfloor.steps import recorded_failure
    from shopfloor.training.params import params_from_dict
    from shopfloor.training.train import train_step

    with recorded_failure("train", model.path):
        params = params_from_dict(train_params)
        result = train_step(Path(dataset.path), Path(model.path), params, data_version)
        result.raise_for_verdict()
    model.metadata.update(
        {"data_version": data_version, "framework": "tensorflow", "parameters": params.to_dict()}
    )
