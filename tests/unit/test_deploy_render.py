"""Rendered objects: their content, and offline validation against the real schemas.

Every rendered InferenceService (plain and canary, several parameter sets) is validated with
jsonschema against the vendored KServe v0.20.0 CRD (strict: unknown fields are errors); every
core object with kubernetes-validate in strict mode for Kubernetes 1.35, where a missing schema
counts as a failure. Negative cases prove the validators are live.
"""

from __future__ import annotations

import logging
import warnings
from typing import Any

import jsonschema
import pytest
import yaml
from typer.testing import CliRunner

from shopfloor.commands.deploy import app
from shopfloor.deploy import validate
from shopfloor.deploy.render import (
    DATA_VERSION_ANNOTATION,
    S3_SECRET_KEYS,
    VERSION_LABEL,
    PredictorSpec,
    Resources,
    applicable,
    inference_service,
    render_objects,
)

URI = "s3://models/registry/ai4i-failure/v0007"
BASE = PredictorSpec(model_name="ai4i-failure", version="v0007", storage_uri=URI,
                     data_version="sha256:" + "0f" * 32)

CASES: dict[str, PredictorSpec] = {
    "plain": BASE,
    "raw-legacy-mode": PredictorSpec(model_name="ai4i-failure", version="v0001", storage_uri=URI,
                                     deployment_mode="RawDeployment"),
    "no-data-version": PredictorSpec(model_name="ai4i_failure", version="v0012", storage_uri=URI),
    "custom": PredictorSpec(model_name="press-7", version="v0123", storage_uri="s3://b/p/press-7/v0123",
                            namespace="plant-b", image="registry.local:5000/shopfloor/predictor@sha256:"
                            + "ab" * 32, model_format="float32", name="press7-predictor",
                            s3_secret="plant-b-s3", service_account="plant-b-predictor",
                            resources=Resources("250m", "128Mi", "2", "2Gi"), min_replicas=2, max_replicas=4),
    "canary-10": BASE.with_canary(10),
    "canary-0": BASE.with_canary(0),
    "canary-100": BASE.with_canary(100),
}


def _no_warnings_validate(objects: list[dict[str, Any]], caplog: pytest.LogCaptureFixture) -> list[str]:
    with warnings.catch_warnings(record=True) as caught, caplog.at_level(logging.WARNING):
        warnings.simplefilter("always")
        errors = validate.object_errors(objects)
    assert [str(w.message) for w in caught] == []
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING] == []
    return errors


@pytest.mark.parametrize("case", sorted(CASES))
def test_every_rendered_object_validates(case: str, caplog: pytest.LogCaptureFixture) -> None:
    objects = render_objects(CASES[case])
    assert [o["kind"] for o in objects] == ["ServiceAccount", "Secret", "NetworkPolicy", "InferenceService"]
    assert _no_warnings_validate(objects, caplog) == []


@pytest.mark.parametrize("case", sorted(CASES))
def test_core_objects_pass_kubernetes_validate_strict_without_schema_warnings(
        case: str, capsys: pytest.CaptureFixture[str]) -> None:
    """The CLI-style entry point prints WARN for a missing schema: assert it printed nothing bad."""
    from kubernetes_validate.utils import validate_resource

    for obj in render_objects(CASES[case])[:-1]:
        code = validate_resource(obj, "rendered", validate.KUBERNETES_VERSION, strict=True,
                                 quiet=False, no_warn=False)
        out = capsys.readouterr().out
        assert code == 0, out
        assert "WARN" not in out and "Couldn't find schema" not in out and "ERROR" not in out, out
        assert "passed" in out and "against version 1.35" in out


def test_missing_core_schema_is_an_error_not_a_warning() -> None:
    unknown = {"apiVersion": "v1", "kind": "InferenceServiceX", "metadata": {"name": "a"}}
    errors = validate.core_errors(unknown)
    assert errors and "Couldn't find schema" in errors[0]


def test_core_validator_is_strict() -> None:
    sa = render_objects(BASE)[0]
    sa["automountServiceAccountTokens"] = False  # typo: strict mode rejects unknown fields
    assert validate.core_errors(sa)


def _broken(mutate: Any) -> list[str]:
    obj = inference_service(BASE)
    mutate(obj)
    return validate.inference_service_errors(obj)


@pytest.mark.parametrize(("mutation", "expected"), [
    (lambda o: o["spec"]["predictor"].__setitem__("canaryTrafficPercent", "abc"),
     "'abc' is not of type 'integer'"),
    (lambda o: o["spec"]["predictor"].__setitem__("canaryTrafficPercents", 10),
     "'canaryTrafficPercents' was unexpected"),
    (lambda o: o["spec"]["predictor"]["containers"][0].pop("name"), "'name' is a required property"),
    (lambda o: o["spec"]["predictor"]["containers"][0]["ports"].append({"containerPort": 8080}),
     "duplicate map key"),
    (lambda o: o["spec"]["predictor"].__setitem__("minReplicas", 2**31), "out of range for int32"),
    (lambda o: o["spec"]["predictor"]["containers"][0]["resources"]["limits"].__setitem__("cpu", "lots"),
     "does not match"),
    (lambda o: o["spec"]["predictor"]["containers"][0]["readinessProbe"]["httpGet"].__setitem__("port", 1.5),
     "is not valid under any of the given schemas"),
    (lambda o: o["spec"].pop("predictor"), "'predictor' is a required property"),
])
def test_broken_inference_services_fail(mutation: Any, expected: str) -> None:
    errors = _broken(mutation)
    assert errors and any(expected in e for e in errors), errors


def test_int_or_string_accepts_both_forms() -> None:
    def named_port(o: dict[str, Any]) -> None:
        o["spec"]["predictor"]["containers"][0]["readinessProbe"]["httpGet"]["port"] = "http1"

    assert _broken(named_port) == []


def test_strictness_comes_from_the_rewrite_not_the_raw_crd() -> None:
    """The CRD alone prunes unknown fields silently; only the strict rewrite rejects them."""
    raw = next(v for v in validate.crd()["spec"]["versions"] if v["name"] == "v1beta1")
    obj = inference_service(BASE)
    obj["spec"]["predictor"]["bogus"] = True
    jsonschema.Draft7Validator(raw["schema"]["openAPIV3Schema"]).validate(obj)  # passes: pruned by k8s
    assert any("'bogus' was unexpected" in e for e in validate.inference_service_errors(obj))


def test_inference_service_content() -> None:
    isvc = inference_service(BASE)
    meta, predictor = isvc["metadata"], isvc["spec"]["predictor"]
    (container,) = predictor["containers"]
    assert isvc["apiVersion"] == "serving.kserve.io/v1beta1" and meta["name"] == "ai4i-failure"
    assert meta["annotations"]["serving.kserve.io/deploymentMode"] == "Standard"
    assert meta["labels"][VERSION_LABEL] == "v0007" and meta["labels"]["shopfloor.io/model"] == "ai4i-failure"
    assert meta["annotations"][DATA_VERSION_ANNOTATION] == BASE.data_version
    assert "canaryTrafficPercent" not in predictor
    assert container["args"] == ["--model-uri", URI, "--model-name", "ai4i-failure", "--format", "int8",
                                 "--http-port", "8080", "--grpc-port", "8081", "--host", "0.0.0.0"]
    assert [(p["name"], p["containerPort"]) for p in container["ports"]] == [("http1", 8080), ("h2c", 8081)]
    assert container["readinessProbe"]["httpGet"]["path"] == "/v2/models/ai4i-failure/ready"
    assert container["livenessProbe"]["httpGet"]["path"] == "/v2/health/live"
    sc = container["securityContext"]
    assert sc["runAsNonRoot"] and sc["readOnlyRootFilesystem"] and sc["allowPrivilegeEscalation"] is False
    assert sc["capabilities"] == {"drop": ["ALL"]} and sc["seccompProfile"] == {"type": "RuntimeDefault"}
    assert predictor["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    assert container["volumeMounts"] == [{"name": "tmp", "mountPath": "/tmp"}]
    assert predictor["volumes"][0]["name"] == "tmp" and "emptyDir" in predictor["volumes"][0]
    assert container["resources"] == {"requests": {"cpu": "100m", "memory": "256Mi"},
                                      "limits": {"cpu": "1", "memory": "1Gi"}}
    assert predictor["annotations"]["prometheus.io/scrape"] == "true"
    assert predictor["annotations"]["prometheus.io/port"] == "8080"
    assert predictor["annotations"]["prometheus.io/path"] == "/metrics"
    assert predictor["automountServiceAccountToken"] is False


def test_credentials_only_by_secret_reference() -> None:
    objects = render_objects(BASE)
    env = {e["name"]: e for e in objects[-1]["spec"]["predictor"]["containers"][0]["env"]}
    for key in S3_SECRET_KEYS:
        assert "value" not in env[key]
        assert env[key]["valueFrom"]["secretKeyRef"] == {
            "name": "shopfloor-s3", "key": key, "optional": key == "SHOPFLOOR_S3_ENDPOINT"}
    secret = objects[1]
    assert "data" not in secret and "stringData" not in secret
    assert secret not in applicable(objects)


def test_canary_form() -> None:
    isvc = inference_service(BASE.with_canary(10))
    predictor = isvc["spec"]["predictor"]
    assert predictor["canaryTrafficPercent"] == 10
    assert isvc["metadata"]["annotations"]["serving.kserve.io/deploymentMode"] == "Serverless"
    # Knative admits one container port: gRPC is only exposed in Standard mode
    assert [p["containerPort"] for p in predictor["containers"][0]["ports"]] == [8080]
    assert isvc["metadata"]["name"] == inference_service(BASE)["metadata"]["name"]  # rolls out in place


@pytest.mark.parametrize(("changes", "message"), [
    ({"version": "7"}, "must look like v0001"),
    ({"storage_uri": "/tmp/model"}, "s3:// URI"),
    ({"namespace": "Plant_A"}, "namespace"),
    ({"name": "x" * 46}, "DNS-1035"),
    ({"canary_percent": 101, "deployment_mode": "Serverless"}, "within 0..100"),
    ({"canary_percent": 10, "deployment_mode": "Standard"}, "only splits traffic in KServe Serverless"),
    ({"min_replicas": 3, "max_replicas": 2}, "replicas"),
    ({"image": "has space"}, "image"),
])
def test_bad_specs_are_refused_with_a_reason(changes: dict[str, Any], message: str) -> None:
    fields = {"model_name": "ai4i-failure", "version": "v0001", "storage_uri": URI, **changes}
    with pytest.raises(ValueError, match=message):
        render_objects(PredictorSpec(**fields))


def test_cli_render_prints_valid_yaml_without_a_cluster(caplog: pytest.LogCaptureFixture) -> None:
    result = CliRunner().invoke(app, ["cloud", "v0007", "--render", "--model-uri", URI,
                                      "--namespace", "plant-c", "--image", "example.org/p:1",
                                      "--canary-percent", "20"])
    assert result.exit_code == 0, result.output
    docs = list(yaml.safe_load_all(result.stdout))
    assert [d["kind"] for d in docs] == ["ServiceAccount", "Secret", "NetworkPolicy", "InferenceService"]
    assert {d["metadata"]["namespace"] for d in docs} == {"plant-c"}
    assert docs[-1]["spec"]["predictor"]["canaryTrafficPercent"] == 20
    assert docs[-1]["spec"]["predictor"]["containers"][0]["image"] == "example.org/p:1"
    assert _no_warnings_validate(docs, caplog) == []


def test_cli_render_reads_the_registry_and_refuses_filesystem_ones(tmp_path: Any) -> None:
    result = CliRunner().invoke(app, ["cloud", "v0001", "--render", "--registry", str(tmp_path)])
    assert result.exit_code == 2
    assert "not in S3" in result.output
