"""The release policy file: which gates a model must pass, read from a versioned YAML.

The policy's shape is :class:`shopfloor.contract.ReleasePolicy` (strict: a typo fails loudly,
never disables a gate silently); this module only finds and parses the YAML around it.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

import yaml

from shopfloor.contract import ReleasePolicy
from shopfloor.errors import InvalidInputError, NotFoundError, bounded

#: Largest policy accepted (file or pipeline parameter): a policy is a page of YAML.
MAX_POLICY_BYTES = 1 << 20


class PolicyError(InvalidInputError):
    """The policy cannot be read, is not YAML, or holds a missing field or impossible value."""


def default_policy_path() -> Path:
    return Path(str(resources.files("shopfloor.evaluation") / "policy.yaml"))


def parse_policy(text: str, source: str = "policy") -> ReleasePolicy:
    """Policy YAML text -> ReleasePolicy; :class:`PolicyError` naming ``source`` otherwise."""
    if len(text.encode("utf-8", "surrogatepass")) > MAX_POLICY_BYTES:
        raise PolicyError(f"policy {source} is larger than {MAX_POLICY_BYTES} bytes")
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise PolicyError(f"policy {source} is not valid YAML: {bounded(str(exc), 200)}") from None
    try:
        return ReleasePolicy.from_dict(data, source=source)
    except InvalidInputError as exc:
        raise PolicyError(str(exc)) from None


def read_policy_text(path: Path | str) -> str:
    """A policy file's text: NotFoundError when missing, PolicyError when not a readable,
    bounded, UTF-8 file."""
    source = Path(path)
    if not source.exists():
        raise NotFoundError(f"policy file not found: {source}")
    if not source.is_file():
        raise PolicyError(f"policy {source} is not a file")
    try:
        if source.stat().st_size > MAX_POLICY_BYTES:
            raise PolicyError(f"policy {source} is larger than {MAX_POLICY_BYTES} bytes")
        return source.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise PolicyError(f"cannot read policy {source}: {bounded(str(exc), 200)}") from None


def load_policy(path: Path | str | None = None) -> ReleasePolicy:
    """Read and check a policy file (the policy shipped with the code by default)."""
    source = Path(path) if path else default_policy_path()
    return parse_policy(read_policy_text(source), str(source))


def policy_from_text(policy_yaml: str) -> ReleasePolicy:
    """The pipeline's ``policy_yaml`` parameter -> ReleasePolicy: empty text means the
    policy shipped with the code."""
    if not policy_yaml.strip():
        return load_policy()
    return parse_policy(policy_yaml, "policy_yaml")
