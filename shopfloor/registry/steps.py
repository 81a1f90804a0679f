"""Registry steps of the training pipeline as plain functions (the components wrap them)."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Any

from shopfloor.registry import open_registry
from shopfloor.registry.assemble import assemble_from_artifacts
from shopfloor.registry.core import CANDIDATE, CHAMPION


def fetch_champion(registry_uri: str | None, env: str, dest: Path) -> str | None:
    """Download the env's champion (checksums verified) to ``dest``; None when there is none,
    so the first model of a plant is judged against the baseline alone."""
    registry = open_registry(registry_uri or None)
    version = registry.resolve(CHAMPION, env)
    if version is None:
        return None
    registry.fetch(version, Path(dest))
    return version


def register_step(
    model_dir: Path,
    edge_dir: Path,
    evaluation_dir: Path,
    equivalence_path: Path,
    validation_path: Path,
    *,
    registry_uri: str | None,
    run_id: str,
    env: str = "cloud",
) -> dict[str, Any]:
    """Publish the gated, converted model as a new immutable version and point the env's
    ``candidate`` alias at it. The champion it was compared with is taken from the evaluation."""
    registry = open_registry(registry_uri or None)
    evaluation = json.loads((Path(evaluation_dir) / "evaluation.json").read_text())
    champion = (evaluation.get("champion") or {}).get("version")
    with tempfile.TemporaryDirectory(prefix="shopfloor-register-") as tmp:
        version_dir = assemble_from_artifacts(
            model_dir, edge_dir, evaluation_dir, equivalence_path, validation_path, Path(tmp) / "version"
        )
        manifest = registry.publish(version_dir, run_id=run_id, champion=champion)
    registry.set_alias(CANDIDATE, manifest["version"], env, reason=f"registered by run {run_id}")
    return {
        "version": manifest["version"],
        "model": manifest["model"],
        "registry": registry.backend.describe(),
        "env": env,
        "alias": CANDIDATE,
        "champion": champion,
        "data_version": manifest.get("data_version"),
    }
