"""The Helm chart helm/shopfloor-predictor renders what shopfloor.deploy.render renders.

Uses the pinned helm from ``.tools/bin`` (installed by scripts/install-tools.sh, run here when
missing; failing to install is a test failure, never a skip). Proves:

* ``helm lint --strict`` passes for every ``ci/*-values.yaml``;
* every object ``helm template`` renders for several value sets passes shopfloor.deploy.validate
  (strict CRD schema for the InferenceService, kubernetes-validate strict for core objects) with
  no warnings, so a missing schema can't slip through;
* for the same inputs, each chart object equals the renderer's, up to :data:`DIFFERENCES` only;
* values.schema.json (and the chart's cross-field checks) refuse what ``render.check_spec``
  refuses, with helm's error naming the field; for names, the one example list of
  tests/unit/test_names.py gets the same verdict from helm as from shopfloor.names;
* the chart's defaults are shopfloor.settings', and the arguments it gives the predictor are
  accepted by the predictor's own parser.
"""

from __future__ import annotations

import copy
import json
import logging
import os
import subprocess
import warnings
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pytest
import yaml

from shopfloor import __version__, contract, settings
from shopfloor.deploy import validate
from shopfloor.deploy.render import (
    MODEL_FORMATS,
    UNDERIVABLE_NAME,
    PredictorSpec,
    Resources,
    applicable,
    render_objects,
)
from shopfloor.errors import InvalidInputError
from tests.unit.test_names import CHART_EXAMPLES, FIELDS, example_id, values_for

REPO = Path(__file__).resolve().parents[2]
CHART = REPO / "helm" / "shopfloor-predictor"
HELM = REPO / ".tools" / "bin" / "helm"
INSTALL_TOOLS = REPO / "scripts" / "install-tools.sh"
CHART_LABEL = "shopfloor-predictor-0.1.0"
Obj = dict[str, Any]
Run = Callable[..., subprocess.CompletedProcess[str]]

#: Every way a chart object may differ from the renderer's; nothing else is normalised.
#: 1. ``app.kubernetes.io/managed-by`` is ``Helm`` (the release service), not ``shopfloor``,
#:    wherever the renderer writes it (object and pod labels).
#: 2. Object metadata (never pod labels) also carries ``helm.sh/chart: shopfloor-predictor-<ver>``.
#: 3. The namespace is the release namespace (``helm --namespace``), not a value.
#: 4. The Secret template is rendered only with ``secretTemplate.enabled=true`` (the renderer always
#:    renders it, annotated template-only, and its deploy path never applies it).
DIFFERENCES = (
    "managed-by: Helm",
    "helm.sh/chart label on object metadata",
    "namespace from helm --namespace",
    "Secret template opt-in",
)


@pytest.fixture(scope="session")
def helm(tmp_path_factory: pytest.TempPathFactory) -> Run:
    """Run the pinned helm with its cache/config/data kept out of $HOME."""
    if not os.access(HELM, os.X_OK):
        done = subprocess.run(["bash", str(INSTALL_TOOLS)], capture_output=True, text=True, timeout=600,
                              check=False)
        if done.returncode != 0 or not os.access(HELM, os.X_OK):
            pytest.fail(f"helm missing at {HELM} and scripts/install-tools.sh could not install it "
                        f"(exit {done.returncode}): {done.stderr.strip() or done.stdout.strip()}")
    home = tmp_path_factory.mktemp("helm-home")
    env = {**os.environ,
           **{f"HELM_{kind}_HOME": str(home / kind.lower()) for kind in ("CACHE", "CONFIG", "DATA")}}

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([str(HELM), *args], capture_output=True, text=True, timeout=60, env=env,
                              check=False)

    version = run("version", "--short")
    assert version.returncode == 0 and version.stdout.startswith("v4.1.4"), version
    return run


@pytest.fixture(scope="session")
def template(helm: Run, tmp_path_factory: pytest.TempPathFactory) -> Run:
    """``helm template`` with ``values`` given as a values file (YAML types, as users write them)."""
    folder = tmp_path_factory.mktemp("values")
    count = 0

    def run(values: Obj, namespace: str = "shopfloor") -> subprocess.CompletedProcess[str]:
        nonlocal count
        count += 1
        path = folder / f"values-{count}.yaml"
        path.write_text(yaml.safe_dump(values))
        return helm("template", "release-1", str(CHART), "--namespace", namespace, "--values", str(path))

    return run


def _objects(done: subprocess.CompletedProcess[str]) -> list[Obj]:
    assert done.returncode == 0, done.stderr
    return [d for d in yaml.safe_load_all(done.stdout) if d]


@dataclass(frozen=True)
class Case:
    values: Obj
    spec: PredictorSpec
    namespace: str = "shopfloor"


URI = "s3://models/registry/ai4i-failure/v0007"
DATA_VERSION = "sha256:" + "0f" * 32
REQUIRED = {"modelName": "ai4i-failure", "modelVersion": "v0007", "modelUri": URI}
BASE = PredictorSpec(model_name="ai4i-failure", version="v0007", storage_uri=URI)
CUSTOM_IMAGE = "registry.local:5000/shopfloor/predictor@sha256:" + "ab" * 32
CUSTOM_URI = "s3://plant-b-models/p/press-7/v0123"
#: How helm reports a ``fail`` in the chart's template checks.
TEMPLATE_FAILURE = "Error: execution error at (shopfloor-predictor/templates/"

#: Same inputs on both sides. "minimal" sets only the required values, so it also proves the
#: chart's defaults are the renderer's.
CASES: dict[str, Case] = {
    "minimal": Case(REQUIRED, BASE),
    "data-version": Case({**REQUIRED, "dataVersion": DATA_VERSION},
                         replace(BASE, data_version=DATA_VERSION)),
    "canary-10": Case({**REQUIRED, "dataVersion": DATA_VERSION, "canaryTrafficPercent": 10},
                      replace(BASE, data_version=DATA_VERSION).with_canary(10)),
    "canary-0": Case({**REQUIRED, "canaryTrafficPercent": 0}, BASE.with_canary(0)),
    "canary-100-explicit-mode": Case(
        {**REQUIRED, "canaryTrafficPercent": 100, "deploymentMode": "Serverless"},
        replace(BASE, deployment_mode="Serverless", canary_percent=100)),
    "serverless-no-canary": Case({**REQUIRED, "deploymentMode": "Serverless"},
                                 replace(BASE, deployment_mode="Serverless")),
    "raw-legacy-mode": Case({**REQUIRED, "deploymentMode": "RawDeployment"},
                            replace(BASE, deployment_mode="RawDeployment")),
    "other-namespace": Case(REQUIRED, replace(BASE, namespace="plant-c"), "plant-c"),
    "custom": Case(
        {"modelName": "press-7", "modelVersion": "v0123", "modelUri": CUSTOM_URI,
         "image": CUSTOM_IMAGE, "modelFormat": "float32", "name": "press7-predictor",
         "s3Secret": "plant-b-s3", "ports": {"http": 9000, "grpc": 9001},
         "serviceAccount": {"name": "plant-b-predictor"},
         "resources": {"requests": {"cpu": "250m", "memory": "128Mi"}, "limits": {"cpu": 2, "memory": "2Gi"}},
         "minReplicas": 2, "maxReplicas": 4},
        PredictorSpec(model_name="press-7", version="v0123", storage_uri=CUSTOM_URI,
                      namespace="plant-b", image=CUSTOM_IMAGE, model_format="float32",
                      name="press7-predictor", http_port=9000, grpc_port=9001,
                      s3_secret="plant-b-s3", service_account="plant-b-predictor",
                      resources=Resources("250m", "128Mi", "2", "2Gi"), min_replicas=2, max_replicas=4),
        "plant-b"),
    # equal requests and limits, in other spellings of the same amounts
    "resources-equal": Case(
        {**REQUIRED, "resources": {"requests": {"cpu": 0.5, "memory": "1024Mi"},
                                   "limits": {"cpu": "500m", "memory": "1Gi"}}},
        replace(BASE, resources=Resources("0.5", "1024Mi", "500m", "1Gi"))),
    # a model name that cannot be an InferenceService name is served under an explicit one
    "explicit-name": Case({"modelName": "AI4I_failure", "modelVersion": "v0007", "name": "ai4i-upper",
                           "modelUri": "s3://models/registry/AI4I_failure/v0007"},
                          PredictorSpec(model_name="AI4I_failure", version="v0007", name="ai4i-upper",
                                        storage_uri="s3://models/registry/AI4I_failure/v0007")),
}


def _helm_form(expected: Obj) -> Obj:
    """The renderer's object with :data:`DIFFERENCES` 1 and 2 applied, and nothing else."""
    obj = copy.deepcopy(expected)
    label_sets = [obj["metadata"]["labels"]]
    if obj["kind"] == "InferenceService":
        label_sets.append(obj["spec"]["predictor"]["labels"])
    for labels in label_sets:
        assert labels["app.kubernetes.io/managed-by"] == "shopfloor"
        labels["app.kubernetes.io/managed-by"] = "Helm"
    obj["metadata"]["labels"]["helm.sh/chart"] = CHART_LABEL
    return obj


def _key(obj: Obj) -> tuple[str, str]:
    return obj["kind"], obj["metadata"]["name"]


@pytest.mark.parametrize("case", sorted(CASES))
def test_chart_objects_equal_the_renderers(case: str, template: Run) -> None:
    c = CASES[case]
    chart = {_key(o): o for o in _objects(template({**c.values, "secretTemplate": {"enabled": True}},
                                                   c.namespace))}
    python = {_key(o): _helm_form(o) for o in render_objects(c.spec)}
    assert sorted(chart) == sorted(python)
    for key, obj in python.items():
        assert chart[key] == obj, key


@pytest.mark.parametrize("case", sorted(CASES))
def test_default_release_is_what_the_deploy_path_applies(case: str, template: Run) -> None:
    """Without opting in, the chart renders exactly ``applicable(render_objects(spec))``: no Secret."""
    c = CASES[case]
    chart = {_key(o): o for o in _objects(template(c.values, c.namespace))}
    python = {_key(o): _helm_form(o) for o in applicable(render_objects(c.spec))}
    assert "Secret" not in {kind for kind, _ in chart}
    assert chart == python


def test_optional_objects_can_be_left_out(template: Run) -> None:
    objects = _objects(template({**REQUIRED, "serviceAccount": {"create": False, "name": "existing-sa"},
                                 "networkPolicy": {"enabled": False}}))
    assert [o["kind"] for o in objects] == ["InferenceService"]
    assert objects[0]["spec"]["predictor"]["serviceAccountName"] == "existing-sa"


VALIDATION_SETS: dict[str, tuple[Obj, str]] = {
    "defaults": (REQUIRED, "shopfloor"),
    "canary-10": ({**REQUIRED, "canaryTrafficPercent": 10, "dataVersion": DATA_VERSION}, "shopfloor"),
    "custom-resources": ({**REQUIRED, "resources": {"requests": {"cpu": 0.5, "memory": "512Mi"},
                                                    "limits": {"cpu": "4", "memory": "4Gi"}},
                          "minReplicas": 2, "maxReplicas": 3}, "shopfloor"),
    "other-namespace": (REQUIRED, "plant-b"),
    "secret-template": ({**REQUIRED, "secretTemplate": {"enabled": True}}, "plant-b"),
}


@pytest.mark.parametrize("name", sorted(VALIDATION_SETS))
def test_rendered_objects_pass_strict_validation(name: str, template: Run,
                                                 caplog: pytest.LogCaptureFixture) -> None:
    values, namespace = VALIDATION_SETS[name]
    objects = _objects(template(values, namespace))
    assert {o["kind"] for o in objects} >= {"InferenceService", "ServiceAccount", "NetworkPolicy"}
    assert {o["metadata"]["namespace"] for o in objects} == {namespace}
    with warnings.catch_warnings(record=True) as caught, caplog.at_level(logging.WARNING):
        warnings.simplefilter("always")
        errors = validate.object_errors(objects)
    assert errors == []
    assert [str(w.message) for w in caught] == []
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING] == []


def test_core_objects_have_schemas_no_warning(template: Run,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    """kubernetes-validate's CLI-style entry point prints WARN for a missing schema: it must not."""
    from kubernetes_validate.utils import validate_resource

    objects = _objects(template({**REQUIRED, "secretTemplate": {"enabled": True}}))
    core = [o for o in objects if o["kind"] != "InferenceService"]
    assert sorted(o["kind"] for o in core) == ["NetworkPolicy", "Secret", "ServiceAccount"]
    for obj in core:
        code = validate_resource(obj, "helm", validate.KUBERNETES_VERSION, strict=True, quiet=False,
                                 no_warn=False)
        out = capsys.readouterr().out
        assert code == 0, out
        assert "WARN" not in out and "Couldn't find schema" not in out and "ERROR" not in out, out


@pytest.mark.parametrize("values_file", sorted((CHART / "ci").glob("*-values.yaml")), ids=lambda p: p.name)
def test_helm_lint_strict(values_file: Path, helm: Run) -> None:
    done = helm("lint", "--strict", str(CHART), "--values", str(values_file))
    assert done.returncode == 0, done.stdout + done.stderr
    assert "0 chart(s) failed" in done.stdout


def test_lint_without_the_required_values_fails(helm: Run) -> None:
    done = helm("lint", "--strict", str(CHART))
    assert done.returncode != 0
    assert "missing properties 'modelName', 'modelVersion', 'modelUri'" in done.stdout + done.stderr


SCHEMA_REJECTS: list[tuple[Obj, tuple[str, ...]]] = [
    ({**REQUIRED, "canaryTrafficPercent": 150}, ("at '/canaryTrafficPercent'", "maximum")),
    ({**REQUIRED, "canaryTrafficPercent": -1}, ("at '/canaryTrafficPercent'", "minimum")),
    ({**REQUIRED, "canaryTrafficPercent": "10"}, ("at '/canaryTrafficPercent'", "want null or integer")),
    ({**REQUIRED, "canaryTrafficPercent": 12.5}, ("at '/canaryTrafficPercent'",)),
    ({"modelName": "ai4i-failure", "modelVersion": "v0001"}, ("missing property 'modelUri'",)),
    ({**REQUIRED, "modelVersion": "7"}, ("at '/modelVersion'", "does not match pattern")),
    ({**REQUIRED, "modelUri": "/tmp/model"}, ("at '/modelUri'", "does not match pattern")),
    ({**REQUIRED, "modelName": "-bad-"}, ("at '/modelName'",)),
    ({**REQUIRED, "name": "x" * 46}, ("at '/name'", "maxLength")),
    ({**REQUIRED, "name": "Press_7"}, ("at '/name'", "does not match pattern")),
    ({**REQUIRED, "image": "has space"}, ("at '/image'",)),
    ({**REQUIRED, "deploymentMode": "Knative"}, ("at '/deploymentMode'",)),
    ({**REQUIRED, "modelFormat": "onnx"}, ("at '/modelFormat'",)),
    ({**REQUIRED, "minReplicas": 0}, ("at '/minReplicas'", "minimum")),
    ({**REQUIRED, "resources": {"requests": {"cpu": "lots", "memory": "1Gi"},
                                "limits": {"cpu": "1", "memory": "1Gi"}}}, ("at '/resources/requests/cpu'",)),
    ({**REQUIRED, "canaryPercent": 10}, ("additional properties 'canaryPercent' not allowed",)),
]


@pytest.mark.parametrize(("values", "expected"), SCHEMA_REJECTS,
                         ids=[next(iter(e)).split("'")[1] or "root" for _, e in SCHEMA_REJECTS])
def test_values_schema_rejects_bad_values(values: Obj, expected: tuple[str, ...],
                                          template: Run) -> None:
    done = template(values)
    assert done.returncode != 0 and done.stdout == ""
    assert "values don't meet the specifications of the schema" in done.stderr, done.stderr
    for fragment in expected:
        assert fragment in done.stderr, done.stderr


#: Cross-field rules: the chart fails the render with render.check_spec's reason, and the renderer
#: refuses the same inputs with InvalidInputError: (values, namespace, spec changes, the words both
#: messages contain).
CROSS_FIELD_REJECTS: dict[str, tuple[Obj, str, Obj, str]] = {
    "canary-standard": ({**REQUIRED, "canaryTrafficPercent": 10, "deploymentMode": "Standard"}, "shopfloor",
                        {"canary_percent": 10, "deployment_mode": "Standard"},
                        "canaryTrafficPercent only splits traffic in KServe Serverless (Knative) mode; "),
    "canary-raw": ({**REQUIRED, "canaryTrafficPercent": 0, "deploymentMode": "RawDeployment"}, "shopfloor",
                   {"canary_percent": 0, "deployment_mode": "RawDeployment"},
                   "RawDeployment\" would silently send 100% to the new version"),
    "replicas": ({**REQUIRED, "minReplicas": 3, "maxReplicas": 2}, "shopfloor",
                 {"min_replicas": 3, "max_replicas": 2}, "replicas must satisfy 1 <= min"),
    "namespace": (REQUIRED, "Plant_A", {"namespace": "Plant_A"},
                  "Plant_A\" must be a DNS-1123 label (lowercase letters, digits and '-', starting and "
                  "ending with a letter or digit, at most 63 characters)"),
    "namespace-300": (REQUIRED, "n" * 300, {"namespace": "n" * 300}, "chars) must be a DNS-1123 label ("),
    "model-name-as-name": ({**REQUIRED, "modelName": "a" * 50, "modelUri": f"s3://models/{'a' * 50}/v0007"},
                           "shopfloor",
                           {"model_name": "a" * 50, "storage_uri": f"s3://models/{'a' * 50}/v0007"},
                           f"{UNDERIVABLE_NAME}: it must be a DNS-1035 label"),
    "memory-limit-below-request": (
        {**REQUIRED, "resources": {"requests": {"cpu": "100m", "memory": "2Gi"},
                                   "limits": {"cpu": "1", "memory": "1Gi"}}},
        "shopfloor", {"resources": Resources("100m", "2Gi", "1", "1Gi")},
        "memory limit 1Gi is below its request 2Gi"),
    "cpu-limit-below-request": (
        {**REQUIRED, "resources": {"requests": {"cpu": 0.5, "memory": "256Mi"},
                                   "limits": {"cpu": "499m", "memory": "256Mi"}}},
        "shopfloor", {"resources": Resources("0.5", "256Mi", "499m", "256Mi")},
        "cpu limit 499m is below its request 0.5"),
    "same-ports": ({**REQUIRED, "ports": {"http": 8080, "grpc": 8080}}, "shopfloor",
                   {"grpc_port": 8080}, "HTTP and gRPC ports must differ (both 8080)"),
    "uri-of-another-version": ({**REQUIRED, "modelUri": f"{URI[:-1]}1"}, "shopfloor",
                               {"storage_uri": f"{URI[:-1]}1"},
                               'ai4i-failure/v0001" must end with /ai4i-failure/v0007: the predictor'),
}


@pytest.mark.parametrize("case", sorted(CROSS_FIELD_REJECTS))
def test_cross_field_rules_match_check_spec(case: str, template: Run) -> None:
    values, namespace, spec_changes, words = CROSS_FIELD_REJECTS[case]
    done = template(values, namespace)
    assert done.returncode != 0 and done.stdout == ""
    assert done.stderr.startswith(TEMPLATE_FAILURE), done.stderr
    assert words in done.stderr, done.stderr
    with pytest.raises(InvalidInputError) as caught:
        render_objects(replace(BASE, **spec_changes))
    python_words = words.replace('"', "'")  # helm quotes values with %q, Python with repr
    assert python_words in str(caught.value)
    assert "\n" not in str(caught.value) and len(str(caught.value)) < 500


def test_chart_files_are_complete() -> None:
    chart = yaml.safe_load((CHART / "Chart.yaml").read_text())
    assert chart["apiVersion"] == "v2" and chart["name"] == "shopfloor-predictor"
    assert f"{chart['name']}-{chart['version']}" == CHART_LABEL
    for name in ("values.yaml", "values.schema.json", "README.md", "templates/NOTES.txt",
                 "templates/_helpers.tpl", ".helmignore"):
        assert (CHART / name).is_file(), name
    readme = (CHART / "README.md").read_text()
    for value in ("modelName", "modelVersion", "modelUri", "canaryTrafficPercent", "secretTemplate.enabled"):
        assert f"`{value}`" in readme, value
    assert len(DIFFERENCES) == 4 and "helm.sh/chart" in readme and "managed-by" in readme


@pytest.mark.parametrize("model_name", ["AI4I_failure", "ai4i_failure", "Ai4i-failure"])
def test_model_names_are_never_rewritten_into_another_models_name(model_name: str, template: Run) -> None:
    """Only ``ai4i-failure`` itself names the InferenceService ``ai4i-failure``: look-alikes are refused."""
    uri = f"s3://models/registry/{model_name}/v0007"
    done = template({**REQUIRED, "modelName": model_name, "modelUri": uri})
    assert done.returncode != 0
    assert f'model name "{model_name}" {UNDERIVABLE_NAME}' in done.stderr, done.stderr
    with pytest.raises(InvalidInputError, match=f"model name '{model_name}' cannot be the InferenceService"):
        render_objects(replace(BASE, model_name=model_name, storage_uri=uri))
    (isvc,) = [o for o in _objects(template(REQUIRED)) if o["kind"] == "InferenceService"]
    assert isvc["metadata"]["name"] == "ai4i-failure"


@pytest.mark.parametrize("example", CHART_EXAMPLES, ids=example_id)
def test_chart_agrees_with_shopfloor_names(example: tuple[str, str, bool], template: Run) -> None:
    """The example list of test_names.py through the real helm: schema (Go regexp) and template checks."""
    field, value, expected = example
    values, namespace = values_for(field, value)
    done = template(values, namespace)
    assert (done.returncode == 0) is expected, done.stderr
    path = FIELDS[field].values_path
    if not expected and FIELDS[field].schema_decides and path:
        assert f"at '/{path.replace('.', '/')}'" in done.stderr, done.stderr
    elif not expected:
        assert done.stderr.startswith(TEMPLATE_FAILURE), done.stderr
        assert f"{FIELDS[field].python_what}" in done.stderr, done.stderr


def test_chart_defaults_are_the_settings() -> None:
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    chart = yaml.safe_load((CHART / "Chart.yaml").read_text())
    repository, _, tag = values["image"].rpartition(":")
    assert repository == f"{settings.IMAGE_REPOSITORY}/{settings.PREDICTOR_IMAGE_NAME}"
    assert tag == __version__ == chart["appVersion"]
    assert values["image"] == settings.image_ref(settings.PREDICTOR_IMAGE_NAME)
    assert values["ports"] == {"http": settings.HTTP_PORT, "grpc": settings.GRPC_PORT}
    assert values["s3Secret"] == settings.S3_SECRET_NAME
    schema = json.loads((CHART / "values.schema.json").read_text())
    assert schema["properties"]["modelFormat"]["enum"] == list(MODEL_FORMATS)
    assert values["modelFormat"] == PredictorSpec.model_format == contract.AUTO_FORMAT


def test_chart_secret_keys_and_uid_are_the_settings(template: Run) -> None:
    objects = {o["kind"]: o for o in _objects(template({**REQUIRED, "secretTemplate": {"enabled": True}}))}
    predictor = objects["InferenceService"]["spec"]["predictor"]
    (container,) = predictor["containers"]
    from_secret = {e["name"]: e["valueFrom"]["secretKeyRef"] for e in container["env"] if "valueFrom" in e}
    assert list(from_secret) == list(settings.S3_SECRET_KEYS)
    assert {k for k, ref in from_secret.items() if ref["optional"]} == settings.OPTIONAL_SECRET_KEYS
    assert {ref["name"] for ref in from_secret.values()} == {settings.S3_SECRET_NAME}
    notes = objects["Secret"]["metadata"]["annotations"]
    assert notes["shopfloor.io/optional-keys"] == ",".join(sorted(settings.OPTIONAL_SECRET_KEYS))
    assert predictor["securityContext"]["runAsUser"] == container["securityContext"]["runAsUser"] \
        == settings.RUN_AS_USER


@pytest.mark.parametrize("case", sorted(CASES))
def test_chart_arguments_are_accepted_by_the_predictor(case: str, template: Run) -> None:
    c = CASES[case]
    (isvc,) = [o for o in _objects(template(c.values, c.namespace)) if o["kind"] == "InferenceService"]
    (container,) = isvc["spec"]["predictor"]["containers"]
    assert container["command"] == ["python", "-m", "shopfloor.serving"]
    from shopfloor.serving.__main__ import parser as predictor_parser

    args, unknown = predictor_parser().parse_known_args(container["args"])
    assert unknown == []
    assert (args.model_uri, args.model_name, args.format) == (c.spec.storage_uri, c.spec.model_name,
                                                              c.spec.model_format)
    assert (args.http_port, args.grpc_port) == (c.spec.http_port, c.spec.grpc_port)
