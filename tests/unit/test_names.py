"""shopfloor.names: Kubernetes and S3 name rules, and the chart's values.schema.json spelling them.

:data:`CHART_EXAMPLES` is the one list of accepted and refused values per chart field. Here each
goes through the Python side (``render.check_spec``, built on shopfloor.names) and through
values.schema.json with the ``jsonschema`` library; tests/unit/test_helm_chart.py runs the same
list through the real ``helm`` (Go's regexp engine, plus the chart's template checks). All must
give the expected verdict, so the schema, the chart and the module cannot drift apart.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from shopfloor import names
from shopfloor.deploy.render import PredictorSpec, render_objects
from shopfloor.errors import InvalidInputError

CHART = Path(__file__).resolve().parents[2] / "helm" / "shopfloor-predictor"
MODEL, VERSION = "ai4i-failure", "v0007"
URI = f"s3://models/registry/{MODEL}/{VERSION}"
TAIL = f"{MODEL}/{VERSION}"
BASE = PredictorSpec(model_name=MODEL, version=VERSION, storage_uri=URI)
#: Required chart values matching BASE.
REQUIRED: dict[str, Any] = {"modelName": MODEL, "modelVersion": VERSION, "modelUri": URI}


@dataclass(frozen=True)
class Field:
    """Where a value goes on each side: the PredictorSpec field and the chart values."""

    spec_field: str
    #: Values path ("a.b"); None: the release namespace (helm --namespace).
    values_path: str | None
    #: How the Python refusal starts naming the field (so a refusal for another reason fails).
    python_what: str
    #: Decided by values.schema.json alone (else by the chart's template checks too).
    schema_decides: bool = True
    #: Other spec fields / chart values set with it.
    spec_extra: tuple[tuple[str, Any], ...] = ()
    values_extra: tuple[tuple[str, Any], ...] = ()


FIELDS: dict[str, Field] = {
    "namespace": Field("namespace", None, "namespace ", schema_decides=False),
    "name": Field("name", "name", "InferenceService name "),
    # a label value; an explicit InferenceService name keeps the name rule out of it
    "modelName": Field("model_name", "modelName", "model name ",
                       spec_extra=(("storage_uri", None), ("name", "predictor")),
                       values_extra=(("name", "predictor"),)),
    # the model name as the InferenceService name (no explicit name): the chart's template decides
    "modelName-as-name": Field("model_name", "modelName", "model name ", schema_decides=False,
                               spec_extra=(("storage_uri", None),)),
    "modelVersion": Field("version", "modelVersion", "version ", spec_extra=(("storage_uri", None),)),
    "modelUri": Field("storage_uri", "modelUri", "storage URI "),
    "s3Secret": Field("s3_secret", "s3Secret", "S3 Secret name "),
    "serviceAccount.name": Field("service_account", "serviceAccount.name", "ServiceAccount name ",
                                 values_extra=(("serviceAccount.create", True),)),
}

OK, NO = True, False
#: (field, value, accepted). Boundaries on both sides of each limit, the characters each rule
#: allows and refuses, and the trailing newline that ``$`` lets through in Python.
CHART_EXAMPLES: list[tuple[str, str, bool]] = [
    ("namespace", "shopfloor", OK), ("namespace", "plant-b", OK), ("namespace", "1plant", OK),
    ("namespace", "a" * 63, OK), ("namespace", "a" * 64, NO), ("namespace", "a" * 300, NO),
    ("namespace", "Plant_A", NO), ("namespace", "plant-", NO), ("namespace", "-plant", NO),
    ("namespace", "plant.b", NO), ("namespace", "plant\n", NO), ("namespace", "pl ant", NO),
    ("namespace", "plänt", NO),
    ("name", "ai4i-failure", OK), ("name", "a", OK), ("name", "p" * 45, OK), ("name", "p" * 46, NO),
    ("name", "press7-predictor", OK), ("name", "7press", NO), ("name", "Press", NO), ("name", "press_7", NO),
    ("name", "press-", NO), ("name", "press.7", NO), ("name", "press\n", NO),
    ("modelName", "ai4i-failure", OK), ("modelName", "AI4I_failure", OK), ("modelName", "9press.Line_2", OK),
    ("modelName", "m" * 63, OK), ("modelName", "m" * 64, NO), ("modelName", "-bad", NO),
    ("modelName", "bad-", NO), ("modelName", "bad name", NO), ("modelName", "ai4i\n", NO),
    ("modelName", "ai4i/failure", NO), ("modelName", "", NO),
    ("modelName-as-name", "ai4i-failure", OK), ("modelName-as-name", "m" * 45, OK),
    ("modelName-as-name", "m" * 46, NO), ("modelName-as-name", "AI4I_failure", NO),
    ("modelName-as-name", "ai4i_failure", NO), ("modelName-as-name", "Ai4i-failure", NO),
    ("modelName-as-name", "9press", NO), ("modelName-as-name", "press.line", NO),
    ("modelVersion", "v0001", OK), ("modelVersion", "v12345", OK), ("modelVersion", "v" + "9" * 62, OK),
    ("modelVersion", "v" + "9" * 63, NO), ("modelVersion", "v001", NO), ("modelVersion", "7", NO),
    ("modelVersion", "V0001", NO), ("modelVersion", "v0001\n", NO), ("modelVersion", "v0001 ", NO),
    ("modelUri", URI, OK), ("modelUri", f"s3://abc/{TAIL}", OK),
    ("modelUri", f"s3://my.bucket-1/p/{TAIL}", OK),
    ("modelUri", f"s3://{'b' * 63}/{TAIL}", OK), ("modelUri", f"s3://{'b' * 64}/{TAIL}", NO),
    ("modelUri", f"s3://192.168.5.4x/{TAIL}", OK),
    ("modelUri", f"s3://bucket/{'k' * (1024 - len('s3://bucket//') - len(TAIL))}/{TAIL}", OK),
    ("modelUri", f"s3://bucket/{'k' * (1025 - len('s3://bucket//') - len(TAIL))}/{TAIL}", NO),
    ("modelUri", "s3://", NO), ("modelUri", f"s3:///{TAIL}", NO), ("modelUri", "s3://bucket", NO),
    ("modelUri", "s3://bucket/", NO), ("modelUri", f"s3://ab/{TAIL}", NO),
    ("modelUri", f"s3://bucket/a b/{TAIL}", NO), ("modelUri", f"s3://bucket/a\nb/{TAIL}", NO),
    ("modelUri", f"s3://bucket/{TAIL}\n", NO), ("modelUri", f"s3://bucket/a\tb/{TAIL}", NO),
    ("modelUri", f"s3://bucket/a\x7fb/{TAIL}", NO), ("modelUri", f"s3://bucket/a\u00a0b/{TAIL}", NO),
    ("modelUri", f"s3://bucket/ä/{TAIL}", NO), ("modelUri", f"s3://Bucket/{TAIL}", NO),
    ("modelUri", f"s3://my..bucket/{TAIL}", NO), ("modelUri", f"s3://my.-bucket/{TAIL}", NO),
    ("modelUri", f"s3://my-.bucket/{TAIL}", NO), ("modelUri", f"s3://-bucket/{TAIL}", NO),
    ("modelUri", f"s3://bucket-/{TAIL}", NO), ("modelUri", f"s3://b_ucket/{TAIL}", NO),
    ("modelUri", f"s3://192.168.5.4/{TAIL}", NO), ("modelUri", f"s3://xn--bucket/{TAIL}", NO),
    ("modelUri", f"s3://sthree-bucket/{TAIL}", NO), ("modelUri", f"s3://bucket-s3alias/{TAIL}", NO),
    ("modelUri", f"s3://bucket--ol-s3/{TAIL}", NO), ("modelUri", f"/tmp/{TAIL}", NO),
    ("modelUri", f"S3://bucket/{TAIL}", NO),
    ("s3Secret", "shopfloor-s3", OK), ("s3Secret", "plant-b.s3", OK), ("s3Secret", "s" * 253, OK),
    ("s3Secret", "s" * 254, NO), ("s3Secret", "Shopfloor-s3", NO), ("s3Secret", "s3..x", NO),
    ("s3Secret", "s3_x", NO), ("s3Secret", "s3\n", NO), ("s3Secret", "", NO), ("s3Secret", "s3.", NO),
    ("serviceAccount.name", "shopfloor-predictor", OK), ("serviceAccount.name", "sa.plant-b", OK),
    ("serviceAccount.name", "SA", NO), ("serviceAccount.name", "sa\n", NO),
    ("serviceAccount.name", "-sa", NO),
]


def spec_for(field: str, value: str) -> PredictorSpec:
    """BASE with ``value`` in ``field``; the storage URI follows a changed model name or version."""
    f = FIELDS[field]
    changes: dict[str, Any] = dict(f.spec_extra)
    changes[f.spec_field] = value
    if changes.get("storage_uri", "") is None:
        model, version = changes.get("model_name", MODEL), changes.get("version", VERSION)
        changes["storage_uri"] = f"s3://models/registry/{model}/{version}"
    return replace(BASE, **changes)


def _put(values: dict[str, Any], path: str, value: Any) -> None:
    *parents, leaf = path.split(".")
    for key in parents:
        values = values.setdefault(key, {})
    values[leaf] = value


def values_for(field: str, value: str) -> tuple[dict[str, Any], str]:
    """(chart values, release namespace) for ``value`` in ``field``."""
    f = FIELDS[field]
    values: dict[str, Any] = dict(REQUIRED)
    for path, extra in f.values_extra:
        _put(values, path, extra)
    if f.values_path is None:
        return values, value
    _put(values, f.values_path, value)
    if f.values_path in ("modelName", "modelVersion"):
        values["modelUri"] = f"s3://models/registry/{values['modelName']}/{values['modelVersion']}"
    return values, "shopfloor"


def python_verdict(field: str, value: str) -> bool:
    """Whether the renderer accepts ``value`` in ``field``; a refusal must name that field."""
    try:
        render_objects(spec_for(field, value))
    except InvalidInputError as exc:
        problems = str(exc).split("; ")
        assert any(p.startswith(FIELDS[field].python_what) for p in problems), str(exc)
        return False
    return True


def example_id(example: tuple[str, str, bool]) -> str:
    field, value, ok = example
    shown = value if len(value) <= 24 else f"{value[:12]}...{len(value)}"
    return f"{field}={shown!r}-{'ok' if ok else 'refused'}"


@pytest.fixture(scope="module")
def schema_validator() -> jsonschema.protocols.Validator:
    schema = json.loads((CHART / "values.schema.json").read_text())
    jsonschema.Draft7Validator.check_schema(schema)
    return jsonschema.Draft7Validator(schema)


@pytest.mark.parametrize("example", CHART_EXAMPLES, ids=example_id)
def test_python_and_values_schema_agree_on_each_example(
        example: tuple[str, str, bool], schema_validator: jsonschema.protocols.Validator) -> None:
    field, value, expected = example
    assert python_verdict(field, value) is expected
    path = FIELDS[field].values_path
    if FIELDS[field].schema_decides and path:
        values, _namespace = values_for(field, value)
        errors = list(schema_validator.iter_errors(values))
        assert (errors == []) is expected, errors
        if not expected:  # refused for this field, not for another
            assert path.split(".") in [list(e.absolute_path) for e in errors], errors


def test_every_field_has_accepted_and_refused_examples() -> None:
    for field in FIELDS:
        verdicts = {ok for f, _v, ok in CHART_EXAMPLES if f == field}
        assert verdicts == {True, False}, field


# -- the rules themselves ------------------------------------------------------------------------

@pytest.mark.parametrize(("rule", "value", "expected"), [
    (names.DNS1123_LABEL, "a" * 63, True), (names.DNS1123_LABEL, "a" * 64, False),
    (names.DNS1123_LABEL, "0abc", True), (names.DNS1123_LABEL, "edge\n", False),
    (names.DNS1123_LABEL, "", False), (names.DNS1123_LABEL, "a.b", False),
    (names.DNS1123_SUBDOMAIN, "a.b-c.d", True), (names.DNS1123_SUBDOMAIN, "a" * 253, True),
    (names.DNS1123_SUBDOMAIN, "a" * 254, False), (names.DNS1123_SUBDOMAIN, "a..b", False),
    (names.DNS1123_SUBDOMAIN, ".a", False), (names.DNS1123_SUBDOMAIN, "a.b\n", False),
    (names.DNS1035_LABEL, "abc-1", True), (names.DNS1035_LABEL, "1abc", False),
    (names.DNS1035_LABEL, "a" * 63, True), (names.DNS1035_LABEL, "a" * 64, False),
    (names.INFERENCE_SERVICE_NAME, "a" * 45, True), (names.INFERENCE_SERVICE_NAME, "a" * 46, False),
    (names.LABEL_VALUE, "", True), (names.LABEL_VALUE, "A.b_c-D", True), (names.LABEL_VALUE, "x" * 64, False),
    (names.LABEL_VALUE, "_a", False), (names.LABEL_VALUE, "a\n", False), (names.LABEL_VALUE, 7, False),
])
def test_name_rules(rule: names.NameRule, value: Any, expected: bool) -> None:
    assert rule.matches(value) is expected


def test_a_refusal_names_the_thing_the_rule_and_a_bounded_excerpt() -> None:
    with pytest.raises(InvalidInputError) as caught:
        names.DNS1123_LABEL.check("n" * 300, "namespace")
    message = str(caught.value)
    assert message.startswith("namespace 'nnnn") and "(302 chars)" in message
    assert message.endswith("must be a DNS-1123 label (lowercase letters, digits and '-', starting and "
                            "ending with a letter or digit, at most 63 characters)")
    assert len(message) < 200
    assert names.DNS1123_LABEL.check("plant-b", "namespace") == "plant-b"


@pytest.mark.parametrize(("uri", "message"), [
    ("s3://", "model URI 's3://' has no bucket (expected s3://bucket/key)"),
    ("s3:///a/b", "model URI 's3:///a/b' has no bucket (expected s3://bucket/key)"),
    ("s3://bucket", "model URI 's3://bucket' has no object key (expected s3://bucket/key)"),
    ("s3://bucket/a b", "model URI 's3://bucket/a b': the key may hold only printable ASCII characters "
                        "(no whitespace or control characters)"),
    ("s3://bucket/a\nb", "model URI 's3://bucket/a\\nb': the key may hold only printable ASCII characters "
                         "(no whitespace or control characters)"),
    ("s3://ab/k", "model URI 's3://ab/k': bucket 'ab' must be 3-63 characters"),
    ("s3://10.0.0.1/k",
     "model URI 's3://10.0.0.1/k': bucket '10.0.0.1' must not be formatted as an IP address"),
    ("s3://a..b/k", "model URI 's3://a..b/k': bucket 'a..b' must be lowercase letters, digits, '-' and '.', "
                    "starting and ending with a letter or digit, with no '..', '.-' or '-.'"),
    ("s3://xn--abc/k",
     "model URI 's3://xn--abc/k': bucket 'xn--abc' must not start with 'xn--' (reserved by S3)"),
    ("s3://abc--ol-s3/k",
     "model URI 's3://abc--ol-s3/k': bucket 'abc--ol-s3' must not end with '--ol-s3' (reserved by S3)"),
    ("http://bucket/k", "model URI 'http://bucket/k' must be an s3://bucket/key URI"),
    ("s3://bucket/" + "k" * 1100, "is longer than 1024 characters"),
])
def test_s3_uri_refusals_say_why(uri: str, message: str) -> None:
    with pytest.raises(InvalidInputError) as caught:
        names.check_s3_uri(uri)
    assert message in str(caught.value)
    assert not names.is_s3_uri(uri)


def test_s3_uri_parts() -> None:
    assert names.check_s3_uri("s3://models.plant-b/registry/ai4i-failure/v0001") == (
        "models.plant-b", "registry/ai4i-failure/v0001")
    assert names.is_s3_uri("s3://abc/" + "k" * (1024 - len("s3://abc/")))


def test_every_control_and_whitespace_character_is_refused_in_a_key_by_both_sides(
        schema_validator: jsonschema.protocols.Validator) -> None:
    """Exhaustive over the first 0x3100 code points: Python and the schema agree on each."""
    for code in range(0x3100):
        char = chr(code)
        uri = f"s3://bucket/a{char}b/{TAIL}"
        python = names.is_s3_uri(uri)
        assert python is ("!" <= char <= "~"), hex(code)
        assert schema_validator.is_valid({**REQUIRED, "modelUri": uri}) is python, hex(code)
