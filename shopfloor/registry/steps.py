"""Registry steps of the training pipeline as plain functions (the components wrap them)."""

from __future__ import annotations

import tempfile
from pathlib import Path

from shopfloor import contract
from shopfloor.registry.assemble import MAX_JSON_BYTES, assemble_from_artifacts, read_regular
from shopfloor.registry.core import CANDIDATE, CHAMPION, open_registry
from shopfloor.settings import CLOUD_ENV
from shopfloor.steps import StepResult, Verdict


def fetch_champion(registry_uri: str | None, env: str, dest: Path) -> str | None:
    """Download the env's champion (checksums verified) to ``dest``; None when there is none,
    so the first model of a plant is judged against the baseline alone."""
    registry = open_registry(registry_uri or None)
    version = registry.resolve(CHAMPION, env)
    if version is None:
        return None
    registry.fetch(version, Path(dest))
    return version


def _evaluated_champion(evaluation_dir: Path) -> str | None:
    """The champion version the evaluation compared against, if any."""
    import json

    name = contract.EVALUATION_REPORT
    try:
        evaluation = json.loads(read_regular(Path(evaluation_dir) / name, name, MAX_JSON_BYTES))
    except ValueError:
        return None  # assembly reads the same file strictly and names the problem
    champion = evaluation.get("champion") if isinstance(evaluation, dict) else None
    version = champion.get("version") if isinstance(champion, dict) else None
    return version if isinstance(version, str) else None


def register_step(
    model_dir: Path,
    edge_dir: Path,
    evaluation_dir: Path,
    equivalence_path: Path,
    validation_path: Path,
    *,
    registry_uri: str | None,
    run_id: str,
    env: str = CLOUD_ENV,
) -> StepResult:
    """Publish the gated, converted model as a new immutable version and point the env's
    ``candidate`` alias at it. The champion it was compared with is taken from the evaluation.

    Outputs: version, model, registry, env, alias, champion ("" when none), data_version.
    """
    registry = open_registry(registry_uri or None)
    with tempfile.TemporaryDirectory(prefix="shopfloor-register-") as tmp:
        version_dir = assemble_from_artifacts(
            model_dir, edge_dir, evaluation_dir, equivalence_path, validation_path, Path(tmp) / "version"
        )
        champion = _evaluated_champion(evaluation_dir)
        manifest = registry.publish(version_dir, run_id=run_id, champion=champion)
    registry.set_alias(CANDIDATE, manifest.version, env, reason=f"registered by run {run_id}")
    return StepResult(
        step="register",
        verdict=Verdict.PASS,
        reason=f"registered {manifest.model} {manifest.version} as {CANDIDATE} ({env})",
        metrics={"files": len(manifest.files), "bytes": manifest.total_bytes,
                 "threshold": manifest.threshold},
        outputs={
            "version": manifest.version,
            "model": manifest.model,
            "registry": registry.backend.describe(),
            "env": env,
            "alias": CANDIDATE,
            "champion": champion or "",
            "data_version": manifest.data_version or "",
        },
    )
