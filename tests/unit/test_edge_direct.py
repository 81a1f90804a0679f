"""Direct push at its seams (NOT end to end: no API server runs here; tests/e2e/test_edge_k3s.py
does that on a real cluster).

The objects are the real chart's, rendered by the real helm from a real registry version; the
cluster is an in-memory :class:`~shopfloor.deploy.cluster.Cluster` whose Deployment "controller"
reports a rollout per version (ready, never ready, or ProgressDeadlineExceeded), and one test
runs the whole push through the real kubernetes client against a recording HTTP server.
"""

from __future__ import annotations

import copy
import json
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from shopfloor.deploy.cluster import ClusterError, KubernetesCluster
from shopfloor.edge import direct, helm
from shopfloor.edge.sites import Site
from shopfloor.errors import InvalidInputError
from shopfloor.registry import Registry, open_registry
from tests.unit.test_deploy_cluster import Recorder, fake_api  # noqa: F401  (the recording API fixture)
from tests.unit.test_helm_chart import helm as helm_cli  # noqa: F401  (ensures the pinned helm exists)

Obj = dict[str, Any]
FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "registry-schema1"
TRUST = {"keys": [{"id": "0123456789abcdef", "public_key": "A" * 43 + "=", "comment": "test"}], "revoked": []}
SITE = Site("plant-a-press-7", "direct", "rpi4-arm64-4g", registry="s3://plant-a-mirror/registry",
            namespace="plant-a", context="plant-a")


class FakeCluster:
    """In-memory API: server-side apply bumps ``generation`` when the spec changes; each read runs
    the Deployment controller once, which reports what ``rollout(version)`` says."""

    def __init__(self, rollout: Callable[[str], str]) -> None:
        self.objects: dict[tuple[str, str], Obj] = {}
        self.applied: list[Obj] = []
        self.rollout = rollout
        self.fail_apply: set[str] = set()

    def apply(self, obj: Obj) -> Obj:
        if obj["kind"] in self.fail_apply:
            raise ClusterError(f"PATCH {obj['kind']}: 500 InternalError: etcd timeout")
        key = (obj["kind"], obj["metadata"]["name"])
        before = self.objects.get(key)
        live = copy.deepcopy(obj)
        content = {k: v for k, v in obj.items() if k != "status"}
        old = {k: v for k, v in (before or {}).items() if k not in ("status",)}
        old_meta = dict(old.get("metadata") or {})
        old_meta.pop("generation", None)
        same = before is not None and {**old, "metadata": old_meta} == content
        generation = (before or {}).get("metadata", {}).get("generation", 0) + (0 if same else 1)
        live["metadata"]["generation"] = generation
        live["status"] = (before or {}).get("status", {})
        self.objects[key] = live
        self.applied.append(copy.deepcopy(obj))
        return copy.deepcopy(live)

    def get(self, kind: str, name: str, namespace: str | None) -> Obj | None:
        live = self.objects.get((kind, name))
        if live is None:
            return None
        if kind == "Deployment":
            version = live["metadata"]["annotations"][helm.VERSION_ANNOTATION]
            behaviour = self.rollout(version)
            status: Obj = {"observedGeneration": live["metadata"]["generation"], "replicas": 1,
                           "updatedReplicas": 1}
            if behaviour == "ready":
                status.update(readyReplicas=1, availableReplicas=1)
            else:
                status.update(readyReplicas=0, unavailableReplicas=1)
                if behaviour == "deadline":
                    status["conditions"] = [{"type": "Progressing", "status": "False",
                                             "reason": "ProgressDeadlineExceeded",
                                             "message": 'ReplicaSet "x" has timed out progressing.'}]
            live["status"] = status
        return copy.deepcopy(live)

    def version(self) -> str | None:
        return direct.deployment_version(self.objects.get(("Deployment", helm.CHART_NAME)))


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def sleep(self, seconds: float) -> None:
        self.now += max(seconds, 0.01)

    def __call__(self) -> float:
        return self.now


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Registry:
    root = tmp_path_factory.mktemp("registry")
    shutil.copytree(FIXTURE, root, dirs_exist_ok=True)
    return open_registry(str(root))


def _push(cluster: Any, registry: Registry, version: str = "v0001", **kw: Any) -> Any:
    clock = Clock()
    manifest = registry.show("v0001")
    if version != "v0001":  # a second version for the same files: same manifest, another id
        from dataclasses import replace

        manifest = replace(manifest, version=version)
        registry = _Bytes(registry)  # type: ignore[assignment]
    return direct.push(SITE, version, manifest, registry=registry, cluster=cluster, trust=TRUST, timeout=30,
                       sleep=clock.sleep, clock=clock, **kw)


class _Bytes:
    """The fixture registry holds one version; other ids reuse its manifest bytes for the digest."""

    def __init__(self, registry: Registry) -> None:
        self.registry = registry

    def manifest_bytes(self, version: str) -> bytes:
        return self.registry.manifest_bytes("v0001") + version.encode()


def test_first_push_applies_the_chart_objects_and_waits(registry: Registry, helm_cli: Any) -> None:  # noqa: F811
    cluster = FakeCluster(lambda v: "ready")
    result = _push(cluster, registry)
    assert result.ok and result.outcome == "deployed" and result.previous_version is None
    assert [o["kind"] for o in cluster.applied] == list(helm.APPLY_ORDER)
    assert {o["metadata"]["namespace"] for o in cluster.applied} == {"plant-a"}
    deployment = cluster.applied[-1]
    digest = helm.manifest_digest(registry.manifest_bytes("v0001"))
    assert deployment["metadata"]["annotations"][helm.DIGEST_ANNOTATION] == digest
    args = deployment["spec"]["template"]["spec"]["containers"][0]["args"]
    assert args[args.index("--pull") + 1] == SITE.registry and args[args.index("--version") + 1] == "v0001"
    assert "verified on the device" in result.message

    again = _push(cluster, registry)
    assert again.outcome == "unchanged" and again.previous_version == "v0001"


def test_a_new_version_rolls_out_over_the_previous(registry: Registry, helm_cli: Any) -> None:  # noqa: F811
    cluster = FakeCluster(lambda v: "ready")
    _push(cluster, registry)
    result = _push(cluster, registry, "v0002")
    assert result.outcome == "deployed" and result.previous_version == "v0001"
    assert cluster.version() == "v0002"


@pytest.mark.parametrize("behaviour", ["never-ready", "deadline"])
def test_a_failed_rollout_re_applies_the_previous_objects(registry: Registry, behaviour: str,
                                                           helm_cli: Any) -> None:  # noqa: F811
    cluster = FakeCluster(lambda v: "ready" if v == "v0001" else behaviour)
    _push(cluster, registry)
    before = {k: copy.deepcopy(v) for k, v in cluster.objects.items()}
    result = _push(cluster, registry, "v0002")
    assert result.outcome == "rolled_back" and not result.ok
    assert result.previous_version == "v0001" and cluster.version() == "v0001"
    if behaviour == "deadline":
        assert "ProgressDeadlineExceeded" in result.message
    else:
        assert "not ready after 30s (waiting for 0/1 pods ready" in result.message
    assert "previous v0001 ready again" in result.message
    # every object is back to its previous content (the trust ConfigMap, the Deployment's pod spec)
    for key, old in before.items():
        assert cluster.objects[key].get("spec") == old.get("spec"), key
        assert cluster.objects[key].get("data") == old.get("data"), key
    restored = cluster.applied[-1]
    assert "status" not in restored and "generation" not in restored["metadata"]


def test_a_failing_first_push_is_left_for_inspection(registry: Registry, helm_cli: Any) -> None:  # noqa: F811
    cluster = FakeCluster(lambda v: "never-ready")
    result = _push(cluster, registry)
    assert result.outcome == "failed" and "nothing ran there before" in result.message


def test_an_apply_error_rolls_back(registry: Registry, helm_cli: Any) -> None:  # noqa: F811
    cluster = FakeCluster(lambda v: "ready")
    _push(cluster, registry)
    cluster.fail_apply = {"Deployment"}
    result = _push(cluster, registry, "v0002")
    assert result.outcome == "failed" and "etcd timeout" in result.message  # rollback's apply fails too
    cluster.fail_apply = set()
    assert cluster.version() == "v0001"


def test_refusals_before_anything_is_applied(registry: Registry) -> None:
    cluster = FakeCluster(lambda v: "ready")
    manifest = registry.show("v0001")
    with pytest.raises(InvalidInputError, match="is in gitops mode, not direct"):
        direct.push(Site("a", "gitops"), "v0001", manifest, registry=registry, cluster=cluster, trust=TRUST)
    with pytest.raises(InvalidInputError, match="manifest is for v0001, not v0002"):
        direct.push(SITE, "v0002", manifest, registry=registry, cluster=cluster, trust=TRUST)
    with pytest.raises(InvalidInputError, match="edge chart refused the values"):
        direct.push(SITE, "v0001", manifest, registry=registry, cluster=cluster, trust={"keys": []})
    assert cluster.applied == []


def test_the_deployment_records_the_format_the_site_runs(registry: Registry, helm_cli: Any) -> None:  # noqa: F811
    """The rpi4 profile prefers int8: the MLP version's Deployment says int8, a tree version's
    (float32 only) says float32, and direct status reports it."""
    from dataclasses import replace

    from shopfloor import contract

    mlp = registry.show("v0001")
    tree = replace(mlp, version="v0002", formats=("saved_model", "float32"), model_family=contract.HIST_GBT)
    clock = Clock()
    cluster = FakeCluster(lambda v: "ready")
    for manifest, expected in ((mlp, "int8"), (tree, "float32")):
        result = direct.push(SITE, manifest.version, manifest, registry=_Bytes(registry), cluster=cluster,
                             trust=TRUST, timeout=30, sleep=clock.sleep, clock=clock)
        assert result.ok, result.message
        deployment = cluster.objects[("Deployment", helm.CHART_NAME)]
        assert deployment["metadata"]["annotations"][helm.FORMAT_ANNOTATION] == expected
        state = direct.status(SITE, cluster)  # type: ignore[arg-type]
        assert (state["reports"], state["format"]) == (manifest.version, expected)


def test_rollout_state_reads_deployment_status() -> None:
    live = {"spec": {"replicas": 1}, "status": {"observedGeneration": 2, "replicas": 2, "updatedReplicas": 1,
                                                "readyReplicas": 1}}
    assert direct.rollout_state(live, 3) == (False, None, "the controller to observe generation 3 (at 2)")
    assert direct.rollout_state(live, 2)[0] is False  # the old pod is still there
    live["status"]["replicas"] = 1
    assert direct.rollout_state(live, 2) == (True, None, "")
    assert direct.rollout_state(None, 1)[1] == "the Deployment disappeared"


def test_push_through_the_real_client_on_the_wire(registry: Registry, fake_api: Any,  # noqa: F811
                                                  helm_cli: Any) -> None:  # noqa: F811
    recorder, cluster = fake_api
    assert isinstance(cluster, KubernetesCluster)
    objects = helm.render(helm.site_values(SITE, "v0001", manifest_digest=helm.manifest_digest(
        registry.manifest_bytes("v0001")), trust=TRUST), namespace="plant-a", release=SITE.name)
    paths = {"ServiceAccount": "/api/v1/namespaces/plant-a/serviceaccounts/shopfloor-edge",
             "ConfigMap": "/api/v1/namespaces/plant-a/configmaps/shopfloor-edge-trust",
             "PersistentVolumeClaim":
                 "/api/v1/namespaces/plant-a/persistentvolumeclaims/shopfloor-edge-store",
             "Service": "/api/v1/namespaces/plant-a/services/shopfloor-edge",
             "NetworkPolicy": "/apis/networking.k8s.io/v1/namespaces/plant-a/networkpolicies/shopfloor-edge",
             "Deployment": "/apis/apps/v1/namespaces/plant-a/deployments/shopfloor-edge"}
    for obj in objects:
        recorder.responses[("PATCH", paths[obj["kind"]])] = (200, {**obj, "metadata": {**obj["metadata"],
                                                                                       "generation": 1}})
    ready = {**objects[-1], "metadata": {**objects[-1]["metadata"], "generation": 1},
             "status": {"observedGeneration": 1, "replicas": 1, "updatedReplicas": 1, "readyReplicas": 1}}
    calls = {"n": 0}

    original = cluster.get

    def get(kind: str, name: str, namespace: str | None) -> Obj | None:  # ready only after the apply
        calls["n"] += 1
        if kind == "Deployment" and any(r["method"] == "PATCH" and r["path"] == paths["Deployment"]
                                        for r in recorder.requests):
            recorder.responses[("GET", paths["Deployment"])] = (200, ready)
        return original(kind, name, namespace)

    cluster.get = get  # type: ignore[method-assign]
    result = direct.push(SITE, "v0001", registry.show("v0001"), registry=registry, cluster=cluster,
                         trust=TRUST, timeout=10)
    assert result.outcome == "deployed", result.message
    patches = [r for r in recorder.requests if r["method"] == "PATCH"]
    assert [r["path"] for r in patches] == [paths[k] for k in helm.APPLY_ORDER]
    for req in patches:
        assert req["headers"]["content-type"] == "application/apply-patch+yaml"
        assert req["query"] == {"fieldManager": ["shopfloor"], "force": ["true"]}
    assert json.loads(patches[-1]["body"]) == objects[-1]
