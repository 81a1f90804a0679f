"""Offline validation of rendered objects, stricter than a plain JSON-schema check.

InferenceServices are checked against the vendored KServe CRD (``schemas/``) the way an API
server with ``fieldValidation=Strict`` would: unknown fields are errors (a structural schema would
otherwise prune them silently), ``x-kubernetes-int-or-string`` admits only integers and strings,
list-type ``map``/``set`` entries must be unique, and int32/int64 formats are range-checked.
Core objects go through ``kubernetes-validate`` in strict mode; a missing schema is an error,
never a warning, so an object can't pass by being unknown.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable, Iterator
from functools import lru_cache
from importlib import resources
from typing import Any

import jsonschema
import yaml
from jsonschema import validators

from shopfloor.deploy.render import KSERVE_API_VERSION
from shopfloor.errors import IntegrityError

Obj = dict[str, Any]
CRD_FILE = "serving.kserve.io_inferenceservices.yaml"
#: Newest Kubernetes minor the project targets; kubernetes-validate ships schemas up to it.
KUBERNETES_VERSION = "1.35"
_INT_RANGES = {"int32": (-(2**31), 2**31 - 1), "int64": (-(2**63), 2**63 - 1)}


def _strict(schema: Any) -> Any:
    """Rewrite an OpenAPI v3 CRD schema so jsonschema enforces what the API server enforces."""
    if isinstance(schema, list):
        return [_strict(s) for s in schema]
    if not isinstance(schema, dict):
        return schema
    out = {k: (v if k in ("enum", "default", "required", "example") else _strict(v))
           for k, v in schema.items()}
    if out.get("x-kubernetes-int-or-string") and "type" not in out and "anyOf" not in out:
        out["anyOf"] = [{"type": "integer"}, {"type": "string"}]
    if ("properties" in out and "additionalProperties" not in out
            and not out.get("x-kubernetes-preserve-unknown-fields")):
        out["additionalProperties"] = False
    return out


@lru_cache(maxsize=1)
def crd() -> Obj:
    """The vendored InferenceService CRD (parsed once per process)."""
    text = resources.files("shopfloor.deploy").joinpath("schemas", CRD_FILE).read_text()
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    return yaml.load(text, Loader=loader)  # a safe loader; the C one parses the 2 MB CRD ~10x faster


@lru_cache(maxsize=1)
def inference_service_schema() -> Obj:
    """``spec.versions[name=v1beta1].schema.openAPIV3Schema``, rewritten by :func:`_strict`."""
    for version in crd()["spec"]["versions"]:
        if version["name"] == KSERVE_API_VERSION.split("/")[1]:
            return _strict(version["schema"]["openAPIV3Schema"])
    raise IntegrityError(f"{CRD_FILE} has no {KSERVE_API_VERSION} version", CRD_FILE)


def _list_type(
    validator: Any, list_type: str, instance: Any, schema: Obj
) -> Iterator[jsonschema.ValidationError]:
    if not isinstance(instance, list) or list_type not in ("map", "set"):
        return
    if list_type == "set":
        seen_set: list[Any] = []
        for item in instance:
            if item in seen_set:
                yield jsonschema.ValidationError(f"duplicate entry {item!r} in a list of type set")
            seen_set.append(item)
        return
    keys = schema.get("x-kubernetes-list-map-keys", [])
    defaults = {k: (schema.get("items", {}).get("properties", {}).get(k, {})).get("default") for k in keys}
    seen: set[tuple[Any, ...]] = set()
    for item in instance:
        if not isinstance(item, dict):
            continue
        key = tuple(item.get(k, defaults[k]) for k in keys)
        if key in seen:
            yield jsonschema.ValidationError(f"duplicate map key {dict(zip(keys, key, strict=True))} "
                                             "in a list of type map")
        seen.add(key)


def _int_format(
    validator: Any, fmt: str, instance: Any, schema: Obj
) -> Iterator[jsonschema.ValidationError]:
    bounds = _INT_RANGES.get(fmt)
    if bounds and isinstance(instance, int) and not isinstance(instance, bool):
        low, high = bounds
        if not low <= instance <= high:
            yield jsonschema.ValidationError(f"{instance} is out of range for {fmt}")


_CRDValidator = validators.extend(
    jsonschema.Draft7Validator,
    {"x-kubernetes-list-type": _list_type, "format": _int_format},
)


def inference_service_errors(obj: Obj) -> list[str]:
    """Every way ``obj`` breaks the vendored v1beta1 schema ([] when valid)."""
    validator = _CRDValidator(inference_service_schema())
    return [f"{'.'.join(str(p) for p in err.absolute_path) or '<root>'}: {err.message}"
            for err in sorted(validator.iter_errors(obj), key=lambda e: list(map(str, e.absolute_path)))]


def core_errors(obj: Obj, kubernetes_version: str = KUBERNETES_VERSION) -> list[str]:
    """Strict kubernetes-validate errors for a core object; an unknown schema is an error."""
    import kubernetes_validate
    from kubernetes_validate.utils import SchemaNotFoundError, ValidationError

    try:
        kubernetes_validate.validate(copy.deepcopy(obj), kubernetes_version, strict=True)
    except ValidationError as err:
        return [f"{'.'.join(str(p) for p in err.path) or '<root>'}: {err.message}"]
    except SchemaNotFoundError as err:
        return [err.message]
    return []


def object_errors(objects: Iterable[Obj]) -> list[str]:
    """Validate each object with the right checker; errors are prefixed with kind/name."""
    problems: list[str] = []
    for obj in objects:
        where = f"{obj.get('kind')}/{obj.get('metadata', {}).get('name')}"
        if obj.get("apiVersion") == KSERVE_API_VERSION:
            errors = inference_service_errors(obj)
        else:
            errors = core_errors(obj)
        problems.extend(f"{where}: {e}" for e in errors)
    return problems
