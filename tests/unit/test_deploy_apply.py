"""Seam tests of the deploy ORCHESTRATION (NOT end to end: no cluster, no KServe controller).

``FakeCluster`` records every call and plays a scripted KServe controller (Ready after a few
polls, never Ready, or a failed model load); ``FakeRegistry`` records alias moves. What is
tested is the logic between them: ready -> promote; timeout/failure -> rollback with a reason and
no registry change; a second identical run -> no change. tests/e2e does the real thing.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest

from shopfloor import contract
from shopfloor.deploy.apply import DeployResult, default_version, deploy, restorable, spec_from_registry
from shopfloor.deploy.cluster import ApplyConflictError, ClusterError
from shopfloor.deploy.render import VERSION_LABEL, PredictorSpec
from shopfloor.errors import ConflictError, ExternalServiceError, InvalidInputError, NotFoundError

NS = "plant-a"


def spec(version: str = "v0002", **kw: Any) -> PredictorSpec:
    return PredictorSpec(model_name="ai4i-failure", version=version, namespace=NS,
                         storage_uri=f"s3://models/registry/ai4i-failure/{version}", **kw)


class FakeCluster:
    """In-memory objects + a scripted controller. ``behaviour``: ready | never | fail_load."""

    def __init__(self, behaviour: str = "ready", polls_until_ready: int = 2, secret: bool = True) -> None:
        self.objects: dict[tuple[str, str, str], dict[str, Any]] = {}
        self.applied: list[dict[str, Any]] = []
        self.gets: list[tuple[str, str, str | None]] = []
        self.behaviour = behaviour
        self.polls_until_ready = polls_until_ready
        self._polls = 0
        if secret:
            self.objects[("Secret", NS, "shopfloor-s3")] = {"kind": "Secret",
                                                            "data": {"AWS_ACCESS_KEY_ID": "x"}}

    @staticmethod
    def _desired(obj: dict[str, Any]) -> Any:
        meta = obj["metadata"]
        return (meta.get("labels"), meta.get("annotations"),
                {k: v for k, v in obj.items() if k not in ("metadata", "status", "apiVersion", "kind")})

    def apply(self, obj: dict[str, Any]) -> dict[str, Any]:
        self.applied.append(copy.deepcopy(obj))
        key = (obj["kind"], obj["metadata"]["namespace"], obj["metadata"]["name"])
        old = self.objects.get(key)
        live = copy.deepcopy(obj)
        generation = (old or {}).get("metadata", {}).get("generation", 0)
        if old is None or self._desired(old) != self._desired(obj):
            generation += 1  # like the API server: only a real change bumps the generation
            self._polls = 0
        live["metadata"]["generation"] = generation
        if old is not None and "status" in old:
            live["status"] = old["status"]
        self.objects[key] = live
        return copy.deepcopy(live)

    def get(self, kind: str, name: str, namespace: str | None) -> dict[str, Any] | None:
        self.gets.append((kind, name, namespace))
        obj = self.objects.get((kind, namespace or "", name))
        if obj is not None and kind == "InferenceService":
            self._reconcile(obj)
        return copy.deepcopy(obj)

    def _reconcile(self, obj: dict[str, Any]) -> None:
        self._polls += 1
        gen = obj["metadata"]["generation"]
        if self.behaviour == "ready" and self._polls >= self.polls_until_ready:
            obj["status"] = ready_status(gen)
        elif self.behaviour == "never":
            obj["status"] = {"observedGeneration": gen, "conditions": [
                {"type": "Ready", "status": "False", "reason": "MinimumReplicasUnavailable",
                 "message": "Deployment does not have minimum availability."}]}
        elif self.behaviour == "fail_load":
            obj["status"] = {"observedGeneration": gen, "conditions": [{"type": "Ready", "status": "False"}],
                             "modelStatus": {"transitionStatus": "BlockedByFailedLoad",
                                             "lastFailureInfo": {"reason": "ModelLoadFailed",
                                                                 "message": "no model_int8.tflite"}}}

    def seed_isvc(self, version: str, ready: bool = True) -> dict[str, Any]:
        """An InferenceService already serving ``version`` (as a previous deploy left it)."""
        from shopfloor.deploy.render import inference_service

        obj = inference_service(spec(version))
        obj["metadata"]["generation"] = 1
        if ready:
            obj["status"] = ready_status(1)
        self.objects[("InferenceService", NS, obj["metadata"]["name"])] = obj
        return copy.deepcopy(obj)

    def isvc(self) -> dict[str, Any]:
        return self.objects[("InferenceService", NS, "ai4i-failure")]


def ready_status(generation: int) -> dict[str, Any]:
    return {"observedGeneration": generation,
            "conditions": [{"type": "Ready", "status": "True"}, {"type": "PredictorReady", "status": "True"}]}


class FakeRegistry:
    def __init__(self, aliases: dict[str, str] | None = None) -> None:
        self.aliases = dict(aliases or {})
        self.calls: list[tuple[str, ...]] = []

    def resolve(self, alias: str, env: str = "cloud") -> str | None:
        return self.aliases.get(f"{env}/{alias}")

    def promote(self, version: str, env: str = "cloud", reason: str = "promoted") -> dict[str, Any]:
        self.calls.append(("promote", version, env, reason))
        self.aliases[f"{env}/champion"] = version
        return {}

    def set_alias(self, alias: str, version: str, env: str = "cloud", reason: str = "") -> dict[str, Any]:
        self.calls.append(("set_alias", alias, version, env, reason))
        self.aliases[f"{env}/{alias}"] = version
        return {}


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


def run(s: PredictorSpec, cluster: FakeCluster, registry: FakeRegistry,
        timeout: float = 60) -> tuple[DeployResult, float]:
    """Deploy on a fake clock; returns the result and the simulated seconds spent waiting."""
    clock = Clock()
    result = deploy(s, cluster, registry, env="cloud", timeout=timeout, poll_interval=5,
                    clock=clock, sleep=clock.sleep)
    return result, clock.now


def test_ready_then_promote() -> None:
    cluster, registry = FakeCluster("ready"), FakeRegistry({"cloud/champion": "v0001"})
    cluster.seed_isvc("v0001")

    result, _elapsed = run(spec("v0002"), cluster, registry)

    assert result.outcome == "deployed" and result.ok
    assert registry.calls[0][:3] == ("promote", "v0002", "cloud")
    assert registry.aliases["cloud/champion"] == "v0002"
    assert [o["kind"] for o in cluster.applied] == ["ServiceAccount", "NetworkPolicy", "InferenceService"]
    assert cluster.isvc()["metadata"]["labels"][VERSION_LABEL] == "v0002"
    assert "champion for cloud now v0002 (was v0001)" in result.message and "\n" not in result.message


def test_status_of_an_older_generation_is_not_readiness() -> None:
    cluster, registry = FakeCluster("ready", polls_until_ready=3), FakeRegistry()
    cluster.seed_isvc("v0001")  # Ready=True, but for generation 1

    result, elapsed = run(spec("v0002"), cluster, registry)

    assert result.outcome == "deployed"
    # the stale Ready of generation 1 was not taken: the loop polled until generation 2 was Ready
    assert cluster.gets.count(("InferenceService", "ai4i-failure", NS)) >= 1 + 3
    assert elapsed >= 10


def test_second_identical_run_changes_nothing() -> None:
    cluster, registry = FakeCluster("ready"), FakeRegistry()
    first, _ = run(spec("v0002"), cluster, registry)
    assert first.outcome == "deployed"
    state, calls = copy.deepcopy(cluster.objects), list(registry.calls)

    second, elapsed = run(spec("v0002"), cluster, registry)

    assert second.outcome == "unchanged" and second.ok
    assert "nothing to do" in second.message
    assert registry.calls == calls  # no alias moved
    assert cluster.objects == state  # same objects, same generation
    assert elapsed == 0  # no waiting


def test_ready_but_not_yet_champion_is_promoted_without_reapplying_changes() -> None:
    """A previous run died between Ready and promote: the rerun finishes the job."""
    cluster, registry = FakeCluster("ready"), FakeRegistry({"cloud/champion": "v0001"})
    run(spec("v0002"), cluster, registry)
    registry.aliases["cloud/champion"] = "v0001"
    generation = cluster.isvc()["metadata"]["generation"]

    result, _elapsed = run(spec("v0002"), cluster, registry)

    assert result.outcome == "deployed"
    assert registry.aliases["cloud/champion"] == "v0002"
    assert cluster.isvc()["metadata"]["generation"] == generation


def test_timeout_rolls_back_to_previous_spec_and_leaves_registry() -> None:
    cluster, registry = FakeCluster("never"), FakeRegistry({"cloud/champion": "v0001"})
    previous = cluster.seed_isvc("v0001")

    result, elapsed = run(spec("v0002"), cluster, registry, timeout=30)

    assert result.outcome == "rolled_back" and not result.ok
    assert registry.calls == [] and registry.aliases == {"cloud/champion": "v0001"}
    assert cluster.applied[-1] == restorable(previous)
    assert cluster.isvc()["metadata"]["labels"][VERSION_LABEL] == "v0001"
    assert result.previous_version == "v0001"
    assert "not Ready within 30s" in result.message and "MinimumReplicasUnavailable" in result.message
    assert "\n" not in result.message
    assert isinstance(result.error(), ExternalServiceError) and str(result.error()) == result.message
    assert 30 <= elapsed < 40


def test_failed_model_load_rolls_back_without_waiting_for_timeout() -> None:
    cluster, registry = FakeCluster("fail_load"), FakeRegistry({"cloud/champion": "v0001"})
    cluster.seed_isvc("v0001")

    result, elapsed = run(spec("v0002"), cluster, registry, timeout=600)

    assert result.outcome == "rolled_back"
    assert "BlockedByFailedLoad: no model_int8.tflite" in result.message
    assert elapsed < 600
    assert registry.calls == []


def test_canary_ready_moves_canary_alias_not_champion() -> None:
    cluster, registry = FakeCluster("ready"), FakeRegistry({"cloud/champion": "v0001"})
    cluster.seed_isvc("v0001")

    result, _elapsed = run(spec("v0002", canary_percent=10), cluster, registry)

    assert result.outcome == "deployed" and result.alias == "canary"
    assert registry.aliases == {"cloud/champion": "v0001", "cloud/canary": "v0002"}
    assert cluster.isvc()["spec"]["predictor"]["canaryTrafficPercent"] == 10


def test_canary_failure_sets_canary_traffic_to_zero() -> None:
    cluster, registry = FakeCluster("never"), FakeRegistry({"cloud/champion": "v0001"})
    cluster.seed_isvc("v0001")

    result, _elapsed = run(spec("v0002", canary_percent=25), cluster, registry, timeout=20)

    assert result.outcome == "rolled_back"
    last = cluster.applied[-1]
    assert last["kind"] == "InferenceService"
    assert last["spec"]["predictor"]["canaryTrafficPercent"] == 0
    assert "canary traffic set to 0%" in result.message
    assert registry.calls == []


def test_missing_secret_fails_before_applying_anything() -> None:
    cluster, registry = FakeCluster("ready", secret=False), FakeRegistry()

    result, _elapsed = run(spec("v0002"), cluster, registry)

    assert result.outcome == "failed"
    assert "Secret plant-a/shopfloor-s3" in result.message
    assert cluster.applied == [] and registry.calls == []
    assert result.category is NotFoundError


def test_first_deploy_failing_has_nothing_to_roll_back_to() -> None:
    cluster, registry = FakeCluster("never"), FakeRegistry()

    result, _elapsed = run(spec("v0001"), cluster, registry, timeout=10)

    assert result.outcome == "failed"
    assert "no previous InferenceService" in result.message
    assert registry.calls == []


def test_the_secret_template_is_never_applied() -> None:
    cluster, registry = FakeCluster("ready"), FakeRegistry()
    run(spec("v0002"), cluster, registry)
    assert all(o["kind"] != "Secret" for o in cluster.applied)
    assert cluster.objects[("Secret", NS, "shopfloor-s3")]["data"] == {"AWS_ACCESS_KEY_ID": "x"}


def test_default_version_is_the_registrys_candidate_or_newest_rule(tmp_path: Path) -> None:
    class Reg:
        def __init__(self, chosen: str | None) -> None:
            self.chosen, self.asked = chosen, list[str]()

        def candidate_or_newest(self, env: str = "cloud") -> str | None:
            self.asked.append(env)
            return self.chosen

    reg = Reg("v0002")
    assert default_version(reg, "edge") == "v0002" and reg.asked == ["edge"]

    from shopfloor.registry import open_registry

    empty = open_registry(tmp_path)
    with pytest.raises(NotFoundError) as caught:
        default_version(empty)
    assert str(caught.value) == f"registry {empty!r} has no published version to deploy"


class _S3Backend:
    def describe(self) -> str:
        return "s3://models/registry"


def _manifest(model: str, version: str, data_version: str | None = None,
              formats: tuple[str, ...] = ("saved_model", "float32", "int8")) -> contract.VersionManifest:
    family = contract.KERAS_MLP if "int8" in formats else contract.HIST_GBT
    return contract.VersionManifest(model=model, version=version, created_at="", run_id="", files={},
                                    threshold=0.5, formats=formats, data_version=data_version,
                                    model_family=family)


def _registry_of(model: str) -> Any:
    class Reg:
        backend = _S3Backend()

        def show(self, version: str) -> Any:
            return _manifest(model, version)

    reg = Reg()
    reg.model = model  # type: ignore[attr-defined]
    return reg


def test_a_registry_model_name_kubernetes_cannot_carry_is_reported_not_lost() -> None:
    """The registry's own rule allows 'ai4i_failure' and 'press-': deploy says why, in one line."""
    with pytest.raises(InvalidInputError) as caught:
        spec_from_registry(_registry_of("ai4i_failure"), "v0004")
    assert str(caught.value) == (
        "model name 'ai4i_failure' cannot be the InferenceService name as it is; give one explicitly "
        "(--name, Helm value name): it must be a DNS-1035 label (lowercase letters, digits and '-', starting "
        "with a letter, ending with a letter or digit, at most 45 characters) (the registry keeps "
        "'ai4i_failure' v0004 unchanged)")
    spec = spec_from_registry(_registry_of("ai4i_failure"), "v0004", name="ai4i-underscore")
    assert (spec.service_name, spec.storage_uri) == ("ai4i-underscore",
                                                     "s3://models/registry/ai4i_failure/v0004")

    with pytest.raises(InvalidInputError) as caught:
        spec_from_registry(_registry_of("press-"), "v0001", name="press")
    assert str(caught.value).startswith("registry model name 'press-' must be a label value (")
    assert str(caught.value).endswith("(the registry keeps 'press-' v0001 unchanged)")


def test_invalid_manifests_and_cluster_failures_carry_their_category(monkeypatch: pytest.MonkeyPatch) -> None:
    class Refusing(FakeCluster):
        def __init__(self, error: ClusterError) -> None:
            super().__init__("ready")
            self.error = error

        def apply(self, obj: dict[str, Any]) -> dict[str, Any]:
            raise self.error

    conflict = ApplyConflictError("PATCH /x: 409 Conflict: someone else")
    result, _ = run(spec("v0002"), Refusing(conflict), FakeRegistry())
    assert result.outcome == "failed" and isinstance(result.error(), ConflictError)
    assert result.message == "v0002 not deployed: PATCH /x: 409 Conflict: someone else"
    result, _ = run(spec("v0002"), Refusing(ClusterError("PATCH /x: 403 Forbidden")), FakeRegistry())
    assert type(result.error()) is ClusterError and result.error().exit_code == 7

    monkeypatch.setattr("shopfloor.deploy.apply.object_errors", lambda _objects: ["InferenceService/x: bad"])
    cluster = FakeCluster("ready")
    result, _ = run(spec("v0002"), cluster, FakeRegistry())
    assert result.message == "refusing invalid manifests: InferenceService/x: bad" and cluster.applied == []
    assert isinstance(result.error(), InvalidInputError)


def test_spec_from_registry_uses_the_version_s3_uri() -> None:
    class Backend:
        def describe(self) -> str:
            return "s3://models/registry"

    class Reg:
        model = "ai4i-failure"
        backend = Backend()

        formats: tuple[str, ...] = ("saved_model", "float32", "int8")

        def show(self, version: str) -> Any:
            return _manifest("ai4i-failure", version, "sha256:abc", self.formats)

    s = spec_from_registry(Reg(), "v0004", namespace="plant-b")
    assert s.storage_uri == "s3://models/registry/ai4i-failure/v0004"
    assert (s.data_version, s.namespace, s.version) == ("sha256:abc", "plant-b", "v0004")
    assert s.model_format == "int8"  # the version's own edge format
    trees = Reg()
    trees.formats = ("saved_model", "float32")  # a tree version: float32 is its only LiteRT file
    assert spec_from_registry(trees, "v0005").model_format == "float32"
    assert spec_from_registry(trees, "v0005", model_format="saved_model").model_format == "saved_model"
    with pytest.raises(NotFoundError) as refused:
        spec_from_registry(trees, "v0005", model_format="int8")
    assert str(refused.value) == "version v0005 (hist-gbt) has no int8 model; it has saved_model, float32"


def test_spec_from_a_filesystem_registry_is_refused(tmp_path: Path) -> None:
    from shopfloor.registry import open_registry

    with pytest.raises(InvalidInputError) as caught:
        spec_from_registry(open_registry(tmp_path), "v0001")
    assert str(caught.value) == (f"registry {tmp_path} is not in S3: the cloud predictor can only load s3:// "
                                 "versions (use --registry s3://bucket/prefix)")


def test_a_real_registry_version_renders_with_its_lineage(tmp_path: Path) -> None:
    """Through the real Registry (manifest via the contract), over a directory posing as S3."""
    from shopfloor.deploy.render import DATA_VERSION_ANNOTATION, inference_service
    from shopfloor.registry import FilesystemBackend, Registry
    from tests.fixtures.versions import DATA_VERSION, make_version_dir

    class S3Lookalike(FilesystemBackend):
        def describe(self) -> str:
            return "s3://models/registry"

    registry = Registry(S3Lookalike(tmp_path / "store"))
    first = registry.publish(make_version_dir(tmp_path / "build-1"), run_id="r1").version
    second = registry.publish(make_version_dir(tmp_path / "build-2", seed=1), run_id="r2").version
    assert default_version(registry) == second  # no candidate: the newest
    registry.set_alias("candidate", first)
    assert default_version(registry) == first

    s = spec_from_registry(registry, first, namespace="plant-b")
    assert (s.model_name, s.storage_uri) == ("ai4i-failure", f"s3://models/registry/ai4i-failure/{first}")
    isvc = inference_service(s)
    assert isvc["metadata"]["annotations"][DATA_VERSION_ANNOTATION] == DATA_VERSION
    assert isvc["metadata"]["labels"][VERSION_LABEL] == first
    with pytest.raises(NotFoundError):
        spec_from_registry(registry, "v0099")
