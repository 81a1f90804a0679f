"""train: Keras MLP + scikit-learn baseline on the training split -> SavedModel."""

from kfp import dsl
from kfp.dsl import Dataset, Input, Model, Output

from shopfloor.components.image import IMAGE


@dsl.component(base_image=IMAGE)
def train(dataset: Input[Dataset], data_version: str, train_params: dict, model: Output[Model]) -> None:
    """Train with ``train_params`` (names of shopfloor.training.model.TrainParams)."""
    from pathlib import Path

    from shopfloor.training.train import params_from_dict, train_step

    manifest = train_step(Path(dataset.path), Path(model.path), params_from_dict(train_params), data_version)
    model.metadata.update(
        {"data_version": data_version, "framework": "tensorflow", "parameters": manifest["parameters"]}
    )
