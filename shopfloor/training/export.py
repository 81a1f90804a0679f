"""Export a trained Keras model as the SavedModel every later step reads.

Two signatures: ``serving_default`` (the failure probability, what KServe's TensorFlow
runtime calls) and ``logits`` (the pre-sigmoid value, what int8 conversion quantises; see
:mod:`shopfloor.conversion.convert` for why an int8 sigmoid cannot represent the operating
threshold). Training owns the export and conversion reads it, never the other way round.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from shopfloor.errors import InvalidInputError

SERVING_SIGNATURE = "serving_default"
#: Optional SavedModel signature returning the pre-sigmoid logit; preferred for int8.
LOGITS_SIGNATURE = "logits"


def export_saved_model_with_logits(model: Any, directory: Path) -> Path:
    """Export a Keras model ending in a sigmoid Dense as a SavedModel with two signatures:
    ``serving_default`` (probability, what KServe calls) and ``logits`` (int8 conversion)."""
    import keras
    import tensorflow as tf

    last = model.layers[-1]
    if not isinstance(last, keras.layers.Dense) or last.activation is not keras.activations.sigmoid:
        raise InvalidInputError(f"last layer must be a sigmoid Dense, got {type(last).__name__}")
    hidden = keras.Model(model.inputs, last.input)

    def logits(x: Any) -> Any:
        return keras.ops.matmul(hidden(x, training=False), last.kernel) + last.bias

    n_features = int(model.inputs[0].shape[-1])
    name = getattr(model.inputs[0], "name", None) or "features"
    spec = [tf.TensorSpec([None, n_features], tf.float32, name=name.split(":")[0])]
    archive = keras.export.ExportArchive()
    archive.track(model)
    archive.add_endpoint(SERVING_SIGNATURE, lambda x: model(x, training=False), input_signature=spec)
    archive.add_endpoint(LOGITS_SIGNATURE, logits, input_signature=spec)
    archive.write_out(str(directory), verbose=False)
    return Path(directory)
