"""Fixtures of the serving integration tests: one real model version per session."""

from __future__ import annotations

from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session")
def version_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A model version made by the project's own training and conversion code (see serving.sample)."""
    from shopfloor.serving.sample import sample_version_dir

    return sample_version_dir(tmp_path_factory.mktemp("model") / "v0001", REPO / "runs")
