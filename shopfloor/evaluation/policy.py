"""The release policy file: which gates a model must pass, read from a versioned YAML."""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from shopfloor.evaluation.metrics import METRICS


class PolicyError(ValueError):
    """The policy file is missing a field or holds an impossible value."""


def default_policy_path() -> Path:
    return Path(str(resources.files("shopfloor.evaluation") / "policy.yaml"))


def load_policy(path: Path | str | None = None) -> dict[str, Any]:
    """Read and check a policy; a typo must fail loudly, never disable a gate silently."""
    source = Path(path) if path else default_policy_path()
    try:
        policy = yaml.safe_load(source.read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise PolicyError(f"cannot read policy {source}: {exc}") from exc
    if not isinstance(policy, dict):
        raise PolicyError(f"{source}: policy must be a mapping")
    for key in ("policy_version", "gates", "non_inferiority", "equivalence", "threshold"):
        if key not in policy:
            raise PolicyError(f"{source}: missing '{key}'")
    for gate in policy["gates"]:
        if gate.get("metric") not in METRICS or not isinstance(gate.get("min_ci_low"), int | float):
            raise PolicyError(
                f"{source}: bad gate {gate!r}; metric must be one of {list(METRICS)} "
                "with a numeric min_ci_low"
            )
    ni = policy["non_inferiority"]
    if ni.get("metric") not in METRICS or not isinstance(ni.get("margin"), int | float):
        raise PolicyError(f"{source}: non_inferiority needs a metric from {list(METRICS)} and a margin")
    for fmt in ("float32", "int8"):
        if fmt not in policy["equivalence"]:
            raise PolicyError(f"{source}: equivalence has no limits for {fmt}")
    policy.setdefault("confidence", 0.95)
    policy.setdefault("bootstrap_resamples", 1000)
    policy["source"] = str(source)
    return policy


@contextmanager
def policy_file(policy_yaml: str) -> Iterator[str | None]:
    """Pipeline parameter -> policy path: empty text means the shipped policy; otherwise
    the YAML is written to a temporary file for the duration of the step."""
    if not policy_yaml.strip():
        yield None
        return
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "policy.yaml"
        path.write_text(policy_yaml)
        load_policy(path)  # fail early with a clear error
        yield str(path)
