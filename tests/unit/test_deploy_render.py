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

from shopfloor import contract, settings
from shopfloor.cli import app
from shopfloor.contract import SERVABLE_FORMATS
from shopfloor.deploy import validate
from shopfloor.deploy.render import (
    DATA_VERSION_ANNOTATION,
    MODEL_FORMATS,
    VERSION_LABEL,
    PredictorSpec,
    Resources,
    applicable,
    inference_service,
    quantity,
    render_objects,
)
from shopfloor.errors import InvalidInputError
from shopfloor.settings import S3_SECRET_KEYS

URI = "s3://models/registry/ai4i-failure/v0007"
BASE = PredictorSpec(model_name="ai4i-failure", version="v0007", storage_uri=URI,
                     data_version="sha256:" + "0f" * 32)

CASES: dict[str, PredictorSpec] = {
    "plain": BASE,
    "raw-legacy-mode": PredictorSpec(model_name="ai4i-failure", version="v0001",
                                     deployment_mode="RawDeployment",
                                     storage_uri="s3://models/registry/ai4i-failure/v0001"),
    "no-data-version-explicit-name": PredictorSpec(model_name="ai4i_failure", version="v0012", name="ai4i-u",
                                                   storage_uri="s3://models/registry/ai4i_failure/v0012"),
    "custom": PredictorSpec(model_name="press-7", version="v0123", storage_uri="s3://plant-b/p/press-7/v0123",
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
    # no format given and no version read: the predictor serves the version's own edge format
    assert container["args"] == ["--model-uri", URI, "--model-name", "ai4i-failure", "--format", "auto",
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


NAMESPACE_RULE = ("must be a DNS-1123 label (lowercase letters, digits and '-', starting and ending with a "
                  "letter or digit, at most 63 characters)")
NAME_RULE = ("must be a DNS-1035 label (lowercase letters, digits and '-', starting with a letter, ending "
             "with a letter or digit, at most 45 characters)")
LONG_NAMESPACE = f"namespace '{'n' * 45}…(302 chars) {NAMESPACE_RULE}"
KEY_CHARS = "the key may hold only printable ASCII characters (no whitespace or control characters)"


@pytest.mark.parametrize(("changes", "message"), [
    ({"version": "7"}, "version '7' must look like v0001"),
    ({"version": "v0001\n"}, "version 'v0001\\n' must look like v0001"),
    ({"storage_uri": "/tmp/model"}, "storage URI '/tmp/model' must be an s3://bucket/key URI"),
    ({"storage_uri": "s3://"}, "storage URI 's3://' has no bucket (expected s3://bucket/key)"),
    ({"storage_uri": "s3:///ai4i-failure/v0001"},
     "storage URI 's3:///ai4i-failure/v0001' has no bucket (expected s3://bucket/key)"),
    ({"storage_uri": "s3://models/a b/ai4i-failure/v0001"},
     f"storage URI 's3://models/a b/ai4i-failure/v0001': {KEY_CHARS}"),
    ({"storage_uri": "s3://models/ai4i-failure/v0001\n"},
     f"storage URI 's3://models/ai4i-failure/v0001\\n': {KEY_CHARS}"),
    ({"storage_uri": "s3://models/ai4i-failure/v0002"},
     "storage URI 's3://models/ai4i-failure/v0002' must end with /ai4i-failure/v0001: the predictor loads "
     "<registry root>/<model>/<version>, and the labels name what it serves"),
    ({"namespace": "Plant_A"}, f"namespace 'Plant_A' {NAMESPACE_RULE}"),
    ({"namespace": "plant\n"}, f"namespace 'plant\\n' {NAMESPACE_RULE}"),
    ({"namespace": "n" * 300}, LONG_NAMESPACE),
    ({"name": "x" * 46}, f"InferenceService name '{'x' * 46}' {NAME_RULE}"),
    ({"model_name": "AI4I_failure", "storage_uri": "s3://models/AI4I_failure/v0001"},
     "model name 'AI4I_failure' cannot be the InferenceService name as it is; give one explicitly "
     f"(--name, Helm value name): it {NAME_RULE}"),
    ({"s3_secret": "S3"}, "S3 Secret name 'S3' must be a DNS-1123 subdomain (dot-separated DNS-1123 labels, "
                          "at most 253 characters)"),
    ({"model_format": "onnx"}, f"model format 'onnx' is not one of {list(MODEL_FORMATS)}"),
    ({"canary_percent": 101, "deployment_mode": "Serverless"}, "canary percent 101 must be within 0..100"),
    ({"canary_percent": 10, "deployment_mode": "Standard"},
     "canaryTrafficPercent only splits traffic in KServe Serverless (Knative) mode; deployment mode "
     "'Standard' would silently send 100% to the new version"),
    ({"min_replicas": 3, "max_replicas": 2}, "replicas must satisfy 1 <= min (3) <= max (2)"),
    ({"image": "has space"}, "image 'has space' is not an image reference"),
    ({"resources": Resources(memory_request="2Gi", memory_limit="2000Mi")},
     "memory limit 2000Mi is below its request 2Gi"),
    ({"resources": Resources(cpu_request="1", cpu_limit="999m")}, "cpu limit 999m is below its request 1"),
    ({"resources": Resources(cpu_limit="lots")},
     "cpu resources: 'lots' is not a Kubernetes quantity (e.g. 250m, 1, 512Mi)"),
    ({"http_port": 70000}, "HTTP port 70000 must be within 1..65535"),
    ({"grpc_port": 8080}, "HTTP and gRPC ports must differ (both 8080)"),
])
def test_bad_specs_are_refused_with_a_reason(changes: dict[str, Any], message: str) -> None:
    """Exactly one refusal, of the invalid-input category, with exactly this message."""
    fields = {"model_name": "ai4i-failure", "version": "v0001",
              "storage_uri": "s3://models/ai4i-failure/v0001", **changes}
    with pytest.raises(InvalidInputError) as caught:
        render_objects(PredictorSpec(**fields))
    assert str(caught.value) == message


def test_every_problem_is_reported_at_once() -> None:
    with pytest.raises(InvalidInputError) as caught:
        render_objects(PredictorSpec(model_name="ai4i-failure", version="7", storage_uri="s3://",
                                     namespace="Plant_A"))
    assert [p.split(" ")[0] for p in str(caught.value).split("; ")] == ["namespace", "version", "storage"]


@pytest.mark.parametrize(("text", "amount"), [
    ("100m", "0.1"), ("1", "1"), ("0.5", "0.5"), ("1Gi", "1073741824"), ("1024Mi", "1073741824"),
    ("1G", "1000000000"), ("1e3", "1000"), ("1E", "1000000000000000000"), ("2Ki", "2048"), (".5", "0.5"),
])
def test_quantities(text: str, amount: str) -> None:
    from decimal import Decimal

    assert quantity(text) == Decimal(amount)


@pytest.mark.parametrize("bad", ["", "lots", "1 Gi", "1Gi\n", "1gi", "--1"])
def test_bad_quantities(bad: str) -> None:
    with pytest.raises(InvalidInputError, match="is not a Kubernetes quantity"):
        quantity(bad)


@pytest.mark.parametrize("case", sorted(CASES))
def test_rendered_arguments_are_accepted_by_the_predictor(case: str) -> None:
    """The predictor's own parser reads what the renderer writes, with the same meaning."""
    from shopfloor.serving.__main__ import parser

    spec = CASES[case]
    (container,) = inference_service(spec)["spec"]["predictor"]["containers"]
    assert container["command"] == ["python", "-m", "shopfloor.serving"]
    args, unknown = parser().parse_known_args(container["args"])
    assert unknown == []
    assert (args.model_uri, args.model_name, args.format) == (spec.storage_uri, spec.model_name,
                                                              spec.model_format)
    assert (args.http_port, args.grpc_port, args.host) == (spec.http_port, spec.grpc_port, "0.0.0.0")
    # every flag the renderer writes is one the parser declares (not swallowed as a value)
    declared = {flag for action in parser()._actions for flag in action.option_strings}
    assert {a for a in container["args"] if a.startswith("--")} <= declared


def test_every_servable_format_is_one_the_predictor_accepts() -> None:
    from shopfloor.serving.__main__ import parser

    assert (contract.AUTO_FORMAT, *SERVABLE_FORMATS) == MODEL_FORMATS
    for fmt in MODEL_FORMATS:
        spec = PredictorSpec(model_name="ai4i-failure", version="v0007", storage_uri=URI, model_format=fmt)
        (container,) = inference_service(spec)["spec"]["predictor"]["containers"]
        assert parser().parse_known_args(container["args"])[0].format == fmt
    _args, unknown = parser().parse_known_args(["--model-uri", URI, "--no-such-flag", "1"])
    assert unknown == ["--no-such-flag", "1"]  # the check above would see an unknown flag


def _cli(*args: str) -> Any:
    return CliRunner().invoke(app, ["deploy", "cloud", *args])


def test_cli_render_prints_valid_yaml_without_a_cluster(caplog: pytest.LogCaptureFixture) -> None:
    result = _cli("v0007", "--render", "--model-uri", URI, "--namespace", "plant-c", "--image",
                  "example.org/p:1", "--canary-percent", "20")
    assert result.exit_code == 0, result.output
    docs = list(yaml.safe_load_all(result.stdout))
    assert [d["kind"] for d in docs] == ["ServiceAccount", "Secret", "NetworkPolicy", "InferenceService"]
    assert {d["metadata"]["namespace"] for d in docs} == {"plant-c"}
    assert docs[-1]["spec"]["predictor"]["canaryTrafficPercent"] == 20
    assert docs[-1]["spec"]["predictor"]["containers"][0]["image"] == "example.org/p:1"
    assert _no_warnings_validate(docs, caplog) == []


def test_cli_render_defaults_come_from_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(settings.PREDICTOR_IMAGE.name, raising=False)
    result = _cli("v0007", "--render", "--model-uri", URI)
    assert result.exit_code == 0, result.output
    docs = list(yaml.safe_load_all(result.stdout))
    (container,) = docs[-1]["spec"]["predictor"]["containers"]
    assert container["image"] == f"ghcr.io/shopfloor-mlops/shopfloor-predictor:{settings.__version__}"
    assert {d["metadata"]["namespace"] for d in docs} == {settings.DEFAULT_NAMESPACE}
    assert docs[-1]["metadata"]["name"] == settings.DEFAULT_MODEL_NAME
    monkeypatch.setenv(settings.PREDICTOR_IMAGE.name, "plant.local/predictor:7")
    result = _cli("v0007", "--render", "--model-uri", URI)
    assert list(yaml.safe_load_all(result.stdout))[-1]["spec"]["predictor"]["containers"][0]["image"] \
        == "plant.local/predictor:7"


@pytest.mark.parametrize(("args", "message"), [
    (("--namespace", "n" * 300), LONG_NAMESPACE),
    (("--model-uri", "s3://"), "storage URI 's3://' has no bucket (expected s3://bucket/key)"),
    (("--model-uri", f"{URI}\n"), f"storage URI '{URI}\\n': {KEY_CHARS}"),
    (("--model-uri", "s3://models/a b/ai4i-failure/v0007"),
     f"storage URI 's3://models/a b/ai4i-failure/v0007': {KEY_CHARS}"),
    (("--model-uri", "s3://models/ai4i_failure/v0007", "--model-name", "ai4i_failure"),
     "model name 'ai4i_failure' cannot be the InferenceService name as it is; give one explicitly "
     f"(--name, Helm value name): it {NAME_RULE}"),
])
def test_cli_refuses_bad_names_in_one_line(args: tuple[str, ...], message: str) -> None:
    if "--model-uri" not in args:
        args = (*args, "--model-uri", URI)
    result = _cli("v0007", "--render", *args)
    assert result.exit_code == InvalidInputError.exit_code, result.output
    assert result.stdout == ""
    assert result.stderr == f"error: {message}\n"


def test_cli_renders_a_look_alike_model_only_under_an_explicit_name() -> None:
    result = _cli("v0007", "--render", "--model-uri", "s3://models/ai4i_failure/v0007", "--model-name",
                  "ai4i_failure", "--name", "ai4i-underscore")
    assert result.exit_code == 0, result.output
    isvc = list(yaml.safe_load_all(result.stdout))[-1]
    assert isvc["metadata"]["name"] == "ai4i-underscore"
    assert isvc["metadata"]["labels"]["shopfloor.io/model"] == "ai4i_failure"


def test_cli_render_reads_the_registry_and_refuses_filesystem_ones(tmp_path: Any) -> None:
    result = _cli("v0001", "--render", "--registry", str(tmp_path))
    assert result.exit_code == InvalidInputError.exit_code
    assert result.stderr == (f"error: registry {tmp_path} is not in S3: the cloud predictor can only load "
                             "s3:// versions (use --registry s3://bucket/prefix)\n")


# -- the format comes from the version ----------------------------------------------------------
def _versions(tmp_path: Any) -> dict[str, Any]:
    """An MLP version (int8 and float32 LiteRT files) and a tree version (float32 only,
    hist-gbt), as the registry describes them."""
    from shopfloor.registry import open_registry
    from tests.fixtures.versions import make_tree_version_dir, make_version_dir

    registry = open_registry(tmp_path / "registry")
    return {"mlp": registry.publish(make_version_dir(tmp_path / "mlp"), run_id="m"),
            "tree": registry.publish(make_tree_version_dir(tmp_path / "tree"), run_id="t")}


def test_the_format_is_the_version_s_unless_given(tmp_path: Any) -> None:
    from shopfloor.deploy.render import format_for_version
    from shopfloor.errors import NotFoundError

    versions = _versions(tmp_path)
    mlp, tree = versions["mlp"], versions["tree"]
    assert (mlp.model_family, tree.model_family) == ("keras-mlp", "hist-gbt")
    assert format_for_version(mlp) == format_for_version(mlp, "auto") == "int8"
    assert format_for_version(tree) == format_for_version(tree, "auto") == "float32"
    assert format_for_version(mlp, "float32") == "float32"
    assert format_for_version(tree, "saved_model") == "saved_model"
    with pytest.raises(NotFoundError) as refused:
        format_for_version(tree, "int8")
    assert str(refused.value) == "version v0002 (hist-gbt) has no int8 model; it has saved_model, float32"
    with pytest.raises(InvalidInputError, match="model format 'onnx' is not one of"):
        format_for_version(mlp, "onnx")


def test_cli_render_from_an_s3_registry_writes_each_version_s_format(
        tmp_path: Any, s3_endpoint: str, monkeypatch: pytest.MonkeyPatch,
        caplog: pytest.LogCaptureFixture) -> None:
    """``deploy cloud --render`` reads the version: the MLP's InferenceService serves int8, the
    tree's float32 (it has no int8 file); an explicit format the tree lacks is one line, exit 3."""
    from shopfloor.registry import open_registry
    from tests.conftest import use_s3
    from tests.fixtures.versions import make_tree_version_dir, make_version_dir

    use_s3(monkeypatch, s3_endpoint, "deploy-formats")
    uri = f"s3://deploy-formats/{tmp_path.name}"
    registry = open_registry(uri)
    mlp = registry.publish(make_version_dir(tmp_path / "mlp"), run_id="m").version
    tree = registry.publish(make_tree_version_dir(tmp_path / "tree"), run_id="t").version

    def rendered(*args: str) -> list[str]:
        result = _cli(*args, "--render", "--registry", uri)
        assert result.exit_code == 0, result.output
        docs = list(yaml.safe_load_all(result.stdout))
        assert _no_warnings_validate(docs, caplog) == []
        (container,) = docs[-1]["spec"]["predictor"]["containers"]
        return list(container["args"])

    def format_of(args: list[str]) -> str:
        return args[args.index("--format") + 1]

    assert format_of(rendered(mlp)) == "int8"
    assert format_of(rendered(tree)) == "float32"
    assert format_of(rendered(mlp, "--format", "float32")) == "float32"
    refused = _cli(tree, "--render", "--registry", uri, "--format", "int8")
    assert refused.exit_code == 3, refused.output
    assert refused.stdout == ""
    assert refused.stderr == (f"error: version {tree} (hist-gbt) has no int8 model; "
                              "it has saved_model, float32\n")
