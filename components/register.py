"""register: publish the gated, converted model as an immutable registry version."""

from kfp import dsl
from kfp.dsl import Artifact, Input, Model, Output

from shopfloor.components.image import IMAGE


@dsl.component(base_image=IMAGE)
def register(
    model: Input[Model],
    edge_model: Input[Model],
    evaluation: Input[Artifact],
    equivalence: Input[Artifact],
    validation: Input[Artifact],
    registry: str,
    env: str,
    run_id: str,
    registration: Output[Artifact],
) -> str:
    """Returns the new version id; the env's ``candidate`` alias points at it."""
    import json
    from pathlib import Path

    from shopfloor.registry.steps import register_step

    result = register_step(
        Path(model.path),
        Path(edge_model.path),
        Path(evaluation.path),
        Path(equivalence.path),
        Path(validation.path),
        registry_uri=registry,
        run_id=run_id,
        env=env,
    )
    Path(registration.path).write_text(json.dumps(result, indent=2) + "\n")
    registration.metadata.update(result)
    return str(result["version"])
