"""The edge chart helm/shopfloor-edge through the real helm (pinned .tools/bin/helm).

Proves: ``helm lint --strict`` is clean for every ci values file; for every built-in device
profile, what :func:`shopfloor.edge.helm.render` renders passes kubernetes-validate strict for
the K3s target (Kubernetes 1.33) with no warning, has the restricted Pod Security context, the
profile's resources and architecture, probes on the runtime's health endpoints, the store on a
``local-path`` volume and the S3 Secret's keys; the container's arguments are accepted by the
runtime's own command (``shopfloor edge serve``); values.schema.json and shopfloor.names (and
the inventory's registry check) give the same verdict on one example list.
"""

from __future__ import annotations

import json
import logging
import warnings
from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.main import get_command

from shopfloor import __version__, names, settings
from shopfloor.cli import app
from shopfloor.edge import helm
from shopfloor.edge.profiles import chart_values, list_profiles
from shopfloor.edge.sites import Site, _registry_problem
from shopfloor.errors import InvalidInputError
from tests.unit.test_helm_chart import Run
from tests.unit.test_helm_chart import helm as helm_cli  # noqa: F401  (the pinned-helm fixture)
from tests.unit.test_names import CHART_EXAMPLES

CHART = helm.DEFAULT_CHART
Obj = dict[str, Any]
KEY = {"id": "0123456789abcdef", "public_key": "A" * 43 + "=", "comment": "test"}
TRUST = {"keys": [KEY], "revoked": []}
DIGEST = "sha256:" + "ab" * 32


def _site(profile: str = "rpi4-arm64-4g", name: str = "plant-a-press-7", namespace: str = "plant-a") -> Site:
    return Site(name, "direct", profile, registry="s3://plant-a-mirror/registry", namespace=namespace)


def _values(profile: str = "rpi4-arm64-4g", **extra: Any) -> Obj:
    return {**helm.site_values(_site(profile), "v0007", manifest_digest=DIGEST, trust=TRUST), **extra}


@pytest.fixture()
def template(helm_cli: Run, tmp_path: Path) -> Any:  # noqa: F811
    def run(values: Obj, namespace: str = "plant-a") -> Any:
        path = tmp_path / "values.yaml"
        path.write_text(yaml.safe_dump(values))
        return helm_cli("template", "site", str(CHART), "--namespace", namespace, "--values", str(path))

    return run


@pytest.mark.parametrize("values_file", sorted((CHART / "ci").glob("*-values.yaml")), ids=lambda p: p.name)
def test_helm_lint_strict(values_file: Path, helm_cli: Run) -> None:  # noqa: F811
    done = helm_cli("lint", "--strict", str(CHART), "--values", str(values_file))
    assert done.returncode == 0, done.stdout + done.stderr
    assert "0 chart(s) failed" in done.stdout


def test_lint_without_required_values_fails(helm_cli: Run) -> None:  # noqa: F811
    done = helm_cli("lint", "--strict", str(CHART))
    assert done.returncode != 0
    assert "missing properties 'site', 'modelVersion', 'registry', 'trust'" in done.stdout + done.stderr


def _by_kind(objects: list[Obj]) -> dict[str, Obj]:
    return {o["kind"]: o for o in objects}


@pytest.mark.parametrize("profile", [p.name for p in list_profiles()])
def test_every_profile_renders_valid_restricted_objects(profile: str, helm_cli: Run,  # noqa: F811
                                                        caplog: pytest.LogCaptureFixture) -> None:
    objects = helm.render(_values(profile), namespace="plant-a", release="plant-a-press-7")
    assert [o["kind"] for o in objects] == list(helm.APPLY_ORDER)
    with warnings.catch_warnings(record=True) as caught, caplog.at_level(logging.WARNING):
        warnings.simplefilter("always")
        assert helm.validation_errors(objects) == []
    assert [str(w.message) for w in caught] == []
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING] == []
    kinds = _by_kind(objects)
    pod = kinds["Deployment"]["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    expected = chart_values(next(p for p in list_profiles() if p.name == profile))
    assert pod["nodeSelector"] == {"kubernetes.io/arch": expected["arch"]}
    assert container["resources"] == expected["resources"]
    assert pod["securityContext"] == {"runAsNonRoot": True, "runAsUser": settings.RUN_AS_USER,
                                      "runAsGroup": settings.RUN_AS_USER, "fsGroup": settings.RUN_AS_USER,
                                      "seccompProfile": {"type": "RuntimeDefault"}}
    assert container["securityContext"] == {"runAsNonRoot": True, "runAsUser": settings.RUN_AS_USER,
                                            "allowPrivilegeEscalation": False, "readOnlyRootFilesystem": True,
                                            "capabilities": {"drop": ["ALL"]},
                                            "seccompProfile": {"type": "RuntimeDefault"}}
    assert pod["automountServiceAccountToken"] is False
    assert container["readinessProbe"]["httpGet"]["path"] == "/v2/health/ready"
    assert container["livenessProbe"]["httpGet"]["path"] == "/v2/health/live"
    pvc = kinds["PersistentVolumeClaim"]
    assert pvc["spec"]["storageClassName"] == "local-path" and pvc["spec"]["accessModes"] == ["ReadWriteOnce"]
    mounts = {m["name"]: m["mountPath"] for m in container["volumeMounts"]}
    assert mounts["store"] == settings.EDGE_STORE_PATH
    assert {v["name"]: v.get("persistentVolumeClaim", {}).get("claimName") for v in pod["volumes"]}["store"] \
        == pvc["metadata"]["name"]
    assert kinds["Deployment"]["spec"]["strategy"] == {"type": "Recreate"}
    assert kinds["Service"]["spec"]["ports"][0]["port"] == settings.EDGE_PORT
    policy = kinds["NetworkPolicy"]["spec"]
    assert policy["policyTypes"] == ["Ingress", "Egress"]
    assert policy["ingress"][0]["ports"] == [{"port": settings.EDGE_PORT, "protocol": "TCP"}]
    annotations = kinds["Deployment"]["metadata"]["annotations"]
    assert annotations[helm.VERSION_ANNOTATION] == "v0007" and annotations[helm.DIGEST_ANNOTATION] == DIGEST
    assert yaml.safe_load(kinds["ConfigMap"]["data"]["trust.yaml"]) == TRUST


def test_s3_credentials_come_from_the_settings_secret(helm_cli: Run) -> None:  # noqa: F811
    (container,) = _by_kind(helm.render(_values(), namespace="plant-a"))["Deployment"]["spec"]["template"][
        "spec"]["containers"]
    refs = {e["name"]: e["valueFrom"]["secretKeyRef"] for e in container["env"] if "valueFrom" in e}
    assert list(refs) == list(settings.S3_SECRET_KEYS)
    assert {r["name"] for r in refs.values()} == {settings.S3_SECRET_NAME}
    assert {k for k, r in refs.items() if r["optional"]} == settings.OPTIONAL_SECRET_KEYS


def _serve_command() -> Any:
    """``shopfloor edge serve`` as the CLI builds it (click-compatible objects, whichever click)."""
    root: Any = get_command(app)
    edge = root.get_command(root.context_class(root), "edge")
    serve = edge.get_command(edge.context_class(edge), "serve")
    assert serve is not None, "shopfloor edge serve is not registered"
    return serve


@pytest.mark.parametrize("profile", [p.name for p in list_profiles()])
def test_container_arguments_are_accepted_by_edge_serve(profile: str, helm_cli: Run) -> None:  # noqa: F811
    objects = helm.render(_values(profile), namespace="plant-a")
    (container,) = _by_kind(objects)["Deployment"]["spec"]["template"]["spec"]["containers"]
    assert container["command"] == ["shopfloor"] and container["args"][:2] == ["edge", "serve"]
    serve = _serve_command()
    ctx = serve.make_context("serve", list(container["args"][2:]))
    params = ctx.params
    assert str(params["store"]) == settings.EDGE_STORE_PATH
    assert (params["host"], params["port"]) == ("0.0.0.0", settings.EDGE_PORT)
    assert container["ports"][0]["containerPort"] == params["port"]
    assert (params["pull"], params["version"]) == ("s3://plant-a-mirror/registry", "v0007")
    assert params["profile"] == profile and params["model_name"] == settings.DEFAULT_MODEL_NAME
    trust_mount = next(m for m in container["volumeMounts"] if m["name"] == "trust")["mountPath"]
    assert str(params["trust"]) == f"{trust_mount}/trust.yaml"
    assert params["admin_token_file"] is None  # no admin API in the cluster: the version comes by --pull


def test_chart_defaults_are_the_settings() -> None:
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    chart = yaml.safe_load((CHART / "Chart.yaml").read_text())
    assert values["image"] == settings.image_ref(settings.EDGE_IMAGE_NAME)
    assert chart["appVersion"] == __version__
    assert values["port"] == settings.EDGE_PORT and values["s3Secret"] == settings.S3_SECRET_NAME
    assert values["modelName"] == settings.DEFAULT_MODEL_NAME
    assert values["storage"]["storageClassName"] == "local-path"
    helpers = (CHART / "templates" / "_helpers.tpl").read_text()
    assert f"\n{settings.EDGE_STORE_PATH}\n" in helpers and f"\n{settings.RUN_AS_USER}\n" in helpers
    assert set(chart_values(list_profiles()[0])) - {"profile"} <= set(values)
    readme = (CHART / "README.md").read_text()
    for key in ("site", "modelVersion", "registry", "trust.keys", "manifestDigest", "sites.yaml", "1.33"):
        assert key in readme, key


SITE_EXAMPLES = [(v, ok) for f, v, ok in CHART_EXAMPLES if f == "namespace"]
#: (values key, value, accepted) from the predictor chart's list: the same rules hold here.
MODEL_EXAMPLES = [(f, v, ok) for f, v, ok in CHART_EXAMPLES if f in ("modelVersion", "modelName")]
#: The predictor's model URI examples are registry prefixes too; plus bucket-only mirrors.
REGISTRY_EXAMPLES = [v for f, v, _ in CHART_EXAMPLES if f == "modelUri"] + [
    "s3://mirror", "s3://mi", "s3://Mirror", "s3://192.168.1.1", "s3://mirror-s3alias", "s3://mirror\n"]


@pytest.mark.parametrize(("value", "expected"), SITE_EXAMPLES, ids=repr)
def test_site_names_agree_with_shopfloor_names(value: str, expected: bool, template: Any) -> None:
    assert names.DNS1123_LABEL.matches(value) is expected
    done = template({**_values(), "site": value})
    assert (done.returncode == 0) is expected, done.stderr
    if not expected:
        assert "at '/site'" in done.stderr


@pytest.mark.parametrize(("key", "value", "expected"), MODEL_EXAMPLES, ids=repr)
def test_model_fields_agree_with_the_predictor_chart(key: str, value: str, expected: bool,
                                                     template: Any) -> None:
    done = template({**_values(), key: value})
    assert (done.returncode == 0) is expected, (key, done.stderr)


@pytest.mark.parametrize("value", REGISTRY_EXAMPLES, ids=repr)
def test_registry_agrees_with_the_inventory_check(value: str, template: Any) -> None:
    expected = _registry_problem(value) is None
    done = template({**_values(), "registry": value})
    assert (done.returncode == 0) is expected, (value, done.stderr)
    if not expected:
        assert "at '/registry'" in done.stderr


@pytest.mark.parametrize(("change", "words"), [
    ({"resources": {"requests": {"cpu": "1", "memory": "256Mi"},
                    "limits": {"cpu": "500m", "memory": "256Mi"}}},
     "cpu limit 500m is below its request 1"),
    ({"trust": {"keys": [], "revoked": []}}, "trust.keys is empty"),
    ({"arch": "riscv64"}, "at '/arch'"),
    ({"manifestDigest": "md5:abc"}, "at '/manifestDigest'"),
    ({"trust": {"keys": [{**KEY, "id": "XYZ"}]}}, "at '/trust/keys/0/id'"),
    ({"name": "x" * 58}, "at '/name'"),
    ({"port": 80}, "at '/port'"),
    ({"replicas": 2}, "additional properties 'replicas' not allowed"),
])
def test_bad_values_are_refused_by_helm_with_the_reason(change: Obj, words: str, template: Any) -> None:
    done = template({**_values(), **change})
    assert done.returncode != 0 and words in done.stderr, done.stderr
    with pytest.raises(InvalidInputError) as caught:
        helm.render({**_values(), **change}, namespace="plant-a")
    assert words.replace("'", "") in str(caught.value).replace("'", "") and "\n" not in str(caught.value)


def test_bad_namespace_is_refused_by_the_chart(template: Any) -> None:
    done = template(_values(), namespace="Plant_A")
    assert done.returncode != 0 and 'namespace "Plant_A" must be a DNS-1123 label' in done.stderr


def test_missing_helm_is_one_clear_line(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv(settings.HELM.name, str(tmp_path / "no-helm"))
    with pytest.raises(helm.HelmMissingError) as caught:
        helm.render(_values(), namespace="plant-a")
    message = str(caught.value)
    assert message.startswith(f"{settings.HELM.name}=")
    assert message.endswith("is not an executable helm binary")
    monkeypatch.delenv(settings.HELM.name)
    monkeypatch.setattr(helm, "_REPO_HELM", tmp_path / "absent")
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(helm.HelmMissingError, match=r"^helm not found .* install helm"):
        helm.helm_binary()


def test_only_builtin_profiles_reach_a_cluster(tmp_path: Path) -> None:
    path = tmp_path / "box.yaml"
    path.write_text(yaml.safe_dump({"name": "box", "arch": "arm64", "cores": 1, "memory_limit_mib": 64,
                                    "max_model_bytes": 10**6, "latency_budget_us": 100, "variant": "int8"}))
    with pytest.raises(InvalidInputError, match="is not a built-in profile"):
        helm.site_values(_site(str(path)), "v0007", trust=TRUST)
    with pytest.raises(InvalidInputError, match="only direct, gitops and bundle sites"):
        helm.site_values(Site("a", "local", url="http://127.0.0.1:1"), "v0007", trust=TRUST)


def test_values_schema_is_valid_json_schema() -> None:
    import jsonschema

    schema = json.loads((CHART / "values.schema.json").read_text())
    jsonschema.Draft7Validator.check_schema(schema)
    jsonschema.validate(_values(), schema)


def test_bundle_sites_render_without_pull_and_the_runtime_accepts_it(helm_cli: Run,  # noqa: F811
                                                                      tmp_path: Path) -> None:
    import shutil

    from shopfloor.registry import open_registry

    root = tmp_path / "registry"
    shutil.copytree(Path(__file__).resolve().parents[1] / "fixtures" / "registry-schema1", root)
    registry = open_registry(str(root))
    site = Site("plant-c-isolated", "bundle", "fanless-amd64-8g", namespace="plant-c")
    ((name, text),) = helm.render_site_files(site, "v0001", registry=registry, trust=TRUST)
    assert name == "shopfloor-edge-plant-c-isolated.yaml"
    objects = [o for o in yaml.safe_load_all(text) if o]
    assert [o["kind"] for o in objects] == list(helm.APPLY_ORDER)
    assert helm.validation_errors(objects) == []
    (container,) = objects[-1]["spec"]["template"]["spec"]["containers"]
    assert "--pull" not in container["args"] and "--version" not in container["args"]
    params = _serve_command().make_context("serve", list(container["args"][2:])).params
    assert params["pull"] is None and params["profile"] == "fanless-amd64-8g"
    digest = helm.manifest_digest(registry.manifest_bytes("v0001"))
    assert objects[-1]["metadata"]["annotations"][helm.DIGEST_ANNOTATION] == digest
