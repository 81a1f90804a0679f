"""Check a run's pipeline parameters before the pipeline starts.

A bad value must cost one clear line naming the parameter, not a traceback from inside a
task minutes later. :func:`check_arguments` checks every parameter of
:func:`~shopfloor.pipelines.training.training_pipeline` (names and types from its signature)
without reading the data: the source is parsed once, by the ingest step.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from shopfloor.errors import InvalidInputError, excerpt
from shopfloor.names import DNS1123_LABEL

#: The one key a parameters file may hold that is not a pipeline parameter: a policy file,
#: read into ``policy_yaml`` (relative paths from ``base``).
POLICY_FILE_KEY = "policy"
#: Longest text parameter accepted (a path, URI or image reference); the policy has its own limit.
MAX_TEXT_CHARS = 4096
#: Largest seed: training seeds NumPy, whose legacy seed is 32-bit.
MAX_SEED = 2**32 - 1

#: KFP input types of the pipeline's parameters, as Python types.
_KFP_TYPES: dict[str, type] = {"String": str, "Integer": int, "Float": float, "Boolean": bool}


def pipeline_parameters() -> dict[str, Any]:
    """Name -> default of every parameter of the training pipeline (its signature)."""
    from shopfloor.pipelines.training import training_pipeline

    inputs = training_pipeline.component_spec.inputs or {}
    return {name: spec.default for name, spec in inputs.items()}


def _parameter_types() -> dict[str, str]:
    from shopfloor.pipelines.training import training_pipeline

    return {name: str(spec.type) for name, spec in (training_pipeline.component_spec.inputs or {}).items()}


def _check_type(name: str, value: Any, kfp_type: str) -> Any:
    """The value as the pipeline's declared type; refuses bools for numbers and vice versa."""
    expected = _KFP_TYPES.get(kfp_type)
    if expected is None:  # dict/list parameters are checked by their own rules
        return value
    if expected is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if not isinstance(value, expected) or (expected is not bool and isinstance(value, bool)):
        article = "an" if kfp_type[0] in "AEIOU" else "a"
        raise InvalidInputError(f"{name} must be {article} {kfp_type.lower()}, got {excerpt(value)}")
    return value


def _check_text(name: str, value: str, *, allow_empty: bool = True) -> str:
    if not value and not allow_empty:
        raise InvalidInputError(f"{name} must not be empty")
    if len(value) > MAX_TEXT_CHARS:
        raise InvalidInputError(f"{name} is longer than {MAX_TEXT_CHARS} characters: {excerpt(value)}")
    if any(c in value for c in "\n\r\x00"):
        raise InvalidInputError(
            f"{name} must be one line without control characters, got {excerpt(value)}")
    return value


def _read_policy(value: Any, base: Path | None) -> str:
    """The text of the policy file a parameters file names (checked as a release policy)."""
    from shopfloor.evaluation.policy import parse_policy, read_policy_text

    if not isinstance(value, str | Path) or not str(value).strip():
        raise InvalidInputError(
            f"{POLICY_FILE_KEY} must be the path of a policy file, got {excerpt(value)}")
    path = Path(_check_text(POLICY_FILE_KEY, str(value)))
    if base is not None and not path.is_absolute():
        path = Path(base) / path
    text = read_policy_text(path)
    parse_policy(text, str(path))
    return text


def check_arguments(arguments: Mapping[str, Any], *, base: Path | None = None) -> dict[str, Any]:
    """Check every pipeline parameter in ``arguments``; return them ready for the pipeline.

    Unknown names, wrong types, seeds and fractions out of range, unknown or bad
    ``train_params``, a release policy that does not parse, and names Kubernetes would refuse
    are an :class:`~shopfloor.errors.InvalidInputError` naming the parameter (a policy file
    that does not exist, a :class:`~shopfloor.errors.NotFoundError`). ``policy`` (a policy
    file path, relative to ``base``) is read into ``policy_yaml``. Numbers are normalised
    (an integer fraction becomes a float) and ``train_params`` keeps only valid overrides.
    The data source is checked for form only: reading it is ingest's job.
    """
    from shopfloor.data.split import check_fractions
    from shopfloor.evaluation.policy import parse_policy
    from shopfloor.training.params import params_from_dict

    if not isinstance(arguments, Mapping):
        raise InvalidInputError(f"pipeline parameters must be a mapping, got {excerpt(arguments)}")
    types = _parameter_types()
    unknown = sorted((k for k in arguments if k not in types and k != POLICY_FILE_KEY), key=str)
    if unknown:
        names = "[" + ", ".join(excerpt(k, 40) for k in unknown[:10]) + (", …]" if len(unknown) > 10 else "]")
        raise InvalidInputError(f"unknown pipeline parameters {names}; known: {sorted(types)} "
                                f"(+ {POLICY_FILE_KEY}: a policy file path)")
    if POLICY_FILE_KEY in arguments and "policy_yaml" in arguments:
        raise InvalidInputError(
            f"give either {POLICY_FILE_KEY} (a file) or policy_yaml (its text), not both")

    checked: dict[str, Any] = {}
    for name, value in arguments.items():
        if name == POLICY_FILE_KEY:
            checked["policy_yaml"] = _read_policy(value, base)
            continue
        value = _check_type(name, value, types[name])
        if isinstance(value, str) and name != "policy_yaml":
            value = _check_text(name, value, allow_empty=name not in ("source", "env", "deploy_namespace"))
        checked[name] = value

    if "seed" in checked and not 0 <= checked["seed"] <= MAX_SEED:
        seed = checked["seed"]
        raise InvalidInputError(f"seed must be an integer in [0, {MAX_SEED}], got {excerpt(seed)}")
    if "validation_fraction" in checked or "test_fraction" in checked:
        defaults = pipeline_parameters()
        check_fractions(checked.get("validation_fraction", defaults["validation_fraction"]),
                        checked.get("test_fraction", defaults["test_fraction"]))
    if "train_params" in checked:
        raw = checked["train_params"]
        if not isinstance(raw, Mapping):
            raise InvalidInputError(f"train_params must be a mapping of training parameters, "
                                    f"got {excerpt(raw)}")
        params_from_dict(raw)  # raises naming train_params.<name>
        checked["train_params"] = {k: list(v) if isinstance(v, tuple) else v for k, v in raw.items()}
    if checked.get("policy_yaml", "").strip() and POLICY_FILE_KEY not in arguments:
        parse_policy(checked["policy_yaml"], "policy_yaml")
    if "env" in checked:
        from shopfloor.registry.core import _check_name  # the registry's own rule for environments

        _check_name(checked["env"], "env")
    if "deploy_namespace" in checked:
        DNS1123_LABEL.check(checked["deploy_namespace"], "deploy_namespace")
    if "predictor_image" in checked and any(c.isspace() for c in checked["predictor_image"]):
        image = checked["predictor_image"]
        raise InvalidInputError(f"predictor_image must not contain spaces, got {excerpt(image)}")
    return checked
