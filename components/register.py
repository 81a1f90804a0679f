"""register: publish the gated, converted model as an immutable registry version."""

from kfp import dsl
from kfp.dsl import Artifact, Input, Model, Output

from shopfloor.components.image import IMAGE


@dsl.component(base_image=IMAGE, install_kfp_package=False)
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
    """Publish the gated, converted model as a new immutable registry version.

    The registry refuses a version whose parts do not load (every JSON document is parsed,
    every LiteRT file opened) and one whose run did not pass validation, every gate and
    equivalence; the env's ``candidate`` alias then points at the new version.

    Args:
        model: The trained SavedModel and its feature spec.
        edge_model: The LiteRT files, decision threshold and golden inputs/outputs.
        evaluation: Evaluation report and gate verdict (names the champion compared with).
        equivalence: The conversion equivalence report.
        validation: The data validation result.
        registry: Registry location (s3://bucket/prefix or a path); empty for the default.
        env: Registry environment whose candidate alias moves, e.g. cloud or edge.
        run_id: The pipeline run id, recorded in the version's manifest.

    Returns:
        registration: The new version, its registry, alias, environment and data version (JSON).
        Output: The new version id, e.g. v0003.
    """
    import json
    from pathlib import Path

    from shopfloor.registry.steps import register_step
    from shopfloor.steps import recorded_failure

    with recorded_failure("register", registration.path):
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
    record = {k: v or None for k, v in result.outputs.items()}  # "" (no champion) -> null, as before
    Path(registration.path).write_text(json.dumps(record, indent=2) + "\n")
    registration.metadata.update(record)
    return result.outputs["version"]
