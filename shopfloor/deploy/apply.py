"""Roll a registry version out to KServe, then move the registry alias, or roll back.

The order is the point: the registry's champion moves only after the cluster reports the new
InferenceService Ready at the generation we applied, so "champion" always names something that
served. On failure the cluster is put back (canary traffic to 0, or the previous spec) and the
registry is left untouched. Re-running a finished deploy applies identical objects (a server-side
apply no-op), sees Ready + alias already in place, and reports ``unchanged``.
"""

from __future__ import annotations

import copy
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal, Protocol

from shopfloor import names, settings
from shopfloor.deploy.cluster import Cluster, ClusterError
from shopfloor.deploy.render import (
    VERSION_LABEL,
    Obj,
    PredictorSpec,
    applicable,
    format_for_version,
    inference_service,
    render_objects,
    service_name_problem,
)
from shopfloor.deploy.validate import object_errors
from shopfloor.errors import (
    ExternalServiceError,
    InvalidInputError,
    NotFoundError,
    ShopfloorError,
    excerpt,
)
from shopfloor.registry.core import CHAMPION

Outcome = Literal["deployed", "unchanged", "rolled_back", "failed"]
CANARY = "canary"
#: KServe modelStatus.transitionStatus values that will not heal by waiting.
_TERMINAL_TRANSITIONS = ("BlockedByFailedLoad", "InvalidSpec")


class RegistryLike(Protocol):
    """The registry calls a deploy makes (``shopfloor.registry.Registry`` satisfies it)."""

    def resolve(self, alias: str, env: str = ...) -> str | None: ...

    def promote(self, version: str, env: str = ..., reason: str = ...) -> Any: ...

    def set_alias(self, alias: str, version: str, env: str = ..., reason: str = ...) -> Any: ...


@dataclass(frozen=True)
class DeployResult:
    outcome: Outcome
    version: str
    alias: str
    message: str
    previous_version: str | None = None
    #: Category of a failure (rolled back or failed), so callers can raise it: see :meth:`error`.
    category: type[ShopfloorError] = ExternalServiceError

    @property
    def ok(self) -> bool:
        return self.outcome in ("deployed", "unchanged")

    def error(self) -> ShopfloorError:
        """The failure as the error its category raises (the message is the one-line summary)."""
        return self.category(self.message)


def _conditions(obj: Obj) -> dict[str, Obj]:
    return {c.get("type", ""): c for c in (obj.get("status") or {}).get("conditions") or []}


def readiness(live: Obj, generation: int | None) -> tuple[bool, str | None]:
    """(ready, terminal failure reason) of an InferenceService at ``generation``.

    Status from an older generation says nothing about the spec we applied, so it counts as not
    ready. KServe sets ``status.observedGeneration``; if a controller ever omits it we can only
    trust the Ready condition.
    """
    status = live.get("status") or {}
    observed = status.get("observedGeneration")
    if generation is not None and observed is not None and observed < generation:
        return False, None
    model = status.get("modelStatus") or {}
    if model.get("transitionStatus") in _TERMINAL_TRANSITIONS:
        info = model.get("lastFailureInfo") or {}
        detail = info.get("message") or info.get("reason") or "no detail"
        return False, f"model {model['transitionStatus']}: {detail}"
    ready = _conditions(live).get("Ready", {})
    return ready.get("status") == "True", None


def _waiting_reason(live: Obj | None) -> str:
    if live is None:
        return "the InferenceService disappeared"
    ready = _conditions(live).get("Ready")
    if not ready:
        return "no Ready condition reported yet"
    return f"Ready={ready.get('status')} ({ready.get('reason') or '-'}: {ready.get('message') or '-'})"


def restorable(live: Obj) -> Obj:
    """The apply-able form of a live object: identity, labels, annotations, spec; no server fields."""
    meta = live.get("metadata") or {}
    annotations = {k: v for k, v in (meta.get("annotations") or {}).items()
                   if k != "kubectl.kubernetes.io/last-applied-configuration"}
    out: Obj = {
        "apiVersion": live["apiVersion"],
        "kind": live["kind"],
        "metadata": {"name": meta["name"], "namespace": meta.get("namespace")},
        "spec": copy.deepcopy(live.get("spec") or {}),
    }
    if meta.get("labels"):
        out["metadata"]["labels"] = dict(meta["labels"])
    if annotations:
        out["metadata"]["annotations"] = annotations
    return out


def _rollback(spec: PredictorSpec, cluster: Cluster, previous: Obj | None, reason: str) -> DeployResult:
    alias = CANARY if spec.canary_percent not in (None, 100) else CHAMPION
    prev_version = ((previous or {}).get("metadata", {}).get("labels") or {}).get(VERSION_LABEL)
    try:
        if previous is None:
            return DeployResult("failed", spec.version, alias,
                                f"{spec.version} not deployed: {reason}; no previous InferenceService to "
                                "restore, left in place for inspection; registry unchanged")
        if spec.canary_percent is not None:
            cluster.apply(inference_service(spec.with_canary(0)))
            how = f"canary traffic set to 0%, {prev_version or 'previous revision'} keeps 100%"
        else:
            cluster.apply(restorable(previous))
            how = f"previous spec ({prev_version or 'unlabelled'}) re-applied"
    except ClusterError as exc:
        return DeployResult("failed", spec.version, alias,
                            f"{spec.version} failed ({reason}) and rollback failed too: {exc}", prev_version)
    return DeployResult("rolled_back", spec.version, alias,
                        f"{spec.version} rolled back: {reason}; {how}; registry unchanged", prev_version)


def deploy(
    spec: PredictorSpec,
    cluster: Cluster,
    registry: RegistryLike,
    *,
    env: str = settings.CLOUD_ENV,
    timeout: float = 300.0,
    poll_interval: float = 2.0,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
    log: Callable[[str], None] = lambda _msg: None,
) -> DeployResult:
    """Apply ``spec``'s objects, wait for Ready, then point the registry alias at the version.

    A full rollout moves ``champion``; a canary (0 < percent < 100) moves ``canary`` only, since
    the version does not yet take all traffic. Returns a result with a one-line message; cluster
    errors before anything changed are returned as ``failed``, never half-applied silently.
    """
    objects = render_objects(spec)
    problems = object_errors(objects)
    if problems:
        return DeployResult("failed", spec.version, CHAMPION, f"refusing invalid manifests: {problems[0]}",
                            category=InvalidInputError)
    alias = CANARY if spec.canary_percent not in (None, 100) else CHAMPION
    name, ns = spec.service_name, spec.namespace

    try:
        if cluster.get("Secret", spec.s3_secret, ns) is None:
            return DeployResult("failed", spec.version, alias,
                                f"Secret {ns}/{spec.s3_secret} with the S3 credentials is missing; create it "
                                "(shape: `shopfloor deploy cloud --render`) and retry; nothing applied",
                                category=NotFoundError)
        previous = cluster.get("InferenceService", name, ns)
        live: Obj | None = None
        for obj in applicable(objects):
            applied = cluster.apply(obj)
            if obj["kind"] == "InferenceService":
                live = applied
    except ClusterError as exc:
        return DeployResult("failed", spec.version, alias, f"{spec.version} not deployed: {exc}",
                            category=type(exc))
    assert live is not None  # render_objects() always yields the InferenceService
    prev_version = ((previous or {}).get("metadata", {}).get("labels") or {}).get(VERSION_LABEL)
    generation = (live.get("metadata") or {}).get("generation")
    spec_changed = previous is None or (previous.get("metadata") or {}).get("generation") != generation
    log(f"applied {ns}/{name} ({spec.version}, generation {generation}"
        f"{'' if spec_changed else ', spec unchanged'}); waiting up to {timeout:.0f}s for Ready")

    deadline = clock() + timeout
    while True:
        ready, failure = readiness(live, generation) if live is not None else (False, "disappeared")
        if ready:
            break
        if failure:
            return _rollback(spec, cluster, previous, failure)
        if clock() >= deadline:
            return _rollback(spec, cluster, previous,
                             f"not Ready within {timeout:.0f}s, {_waiting_reason(live)}")
        sleep(poll_interval)
        try:
            live = cluster.get("InferenceService", name, ns)
        except ClusterError as exc:
            log(f"status read failed, retrying: {exc}")

    current = registry.resolve(alias, env)
    if current == spec.version:
        if not spec_changed:
            return DeployResult("unchanged", spec.version, alias,
                                f"{spec.version} already Ready in {ns}/{name} and {alias} for {env}: "
                                "nothing to do", prev_version)
        return DeployResult("deployed", spec.version, alias,
                            f"{spec.version} Ready in {ns}/{name}; already {alias} for {env}", prev_version)
    reason = f"Ready in {ns}/{name} (KServe generation {generation})"
    if alias == CHAMPION:
        registry.promote(spec.version, env, reason)
    else:
        registry.set_alias(alias, spec.version, env, f"{reason}, {spec.canary_percent}% traffic")
    was = f" (was {current})" if current else ""
    return DeployResult("deployed", spec.version, alias,
                        f"{spec.version} Ready in {ns}/{name}; {alias} for {env} now {spec.version}{was}",
                        prev_version)


def spec_from_registry(registry: Any, version: str, **overrides: Any) -> PredictorSpec:
    """A :class:`PredictorSpec` for a published version of an S3-backed ``shopfloor.registry.Registry``.

    The predictor reads the version straight from object storage, so a filesystem registry
    cannot be deployed to a cluster. Its format is the version's own (``model_format``
    override: one the version has; see :func:`format_for_version`), so a tree version is
    served as float32 without anyone saying so. A registry model name that Kubernetes cannot
    carry (the registry's own rule is looser) is reported with the rule it breaks; the version
    stays in the registry untouched.
    """
    root = registry.backend.describe()
    if not root.startswith(names.S3_SCHEME):
        raise InvalidInputError(f"registry {root} is not in S3: the cloud predictor can only load s3:// "
                                "versions (use --registry s3://bucket/prefix)")
    manifest = registry.show(version)  # a contract.VersionManifest: its model is the registry's
    model_name = str(manifest.model)
    model_format = format_for_version(manifest, overrides.pop("model_format", None))
    spec = PredictorSpec(
        model_name=model_name,
        version=version,
        storage_uri=f"{root}/{registry.model}/{version}",
        data_version=manifest.data_version,
        model_format=model_format,
        **overrides,
    )
    problem = (names.LABEL_VALUE.problem(model_name, "registry model name") or
               service_name_problem(spec))
    if problem:
        raise InvalidInputError(f"{problem} (the registry keeps {excerpt(model_name)} {version} unchanged)")
    return spec


def default_version(registry: Any, env: str = settings.CLOUD_ENV) -> str:
    """The version to deploy when none is named: the registry's ``candidate_or_newest`` rule."""
    chosen: str | None = registry.candidate_or_newest(env)
    if not chosen:
        raise NotFoundError(f"registry {registry!r} has no published version to deploy")
    return chosen


def deploy_from_registry(
    registry_uri: str | None,
    version: str | None = None,
    *,
    env: str = settings.CLOUD_ENV,
    kubeconfig: str | None = None,
    context: str | None = None,
    timeout: float = 300.0,
    log: Callable[[str], None] = lambda _msg: None,
    **spec_overrides: Any,
) -> DeployResult:
    """One call for a pipeline step or the CLI: registry version -> cluster -> registry alias."""
    from shopfloor.deploy.cluster import KubernetesCluster
    from shopfloor.registry import open_registry

    registry = open_registry(registry_uri)
    chosen = version or default_version(registry, env)
    spec = spec_from_registry(registry, chosen, **spec_overrides)
    cluster = KubernetesCluster.connect(kubeconfig, context)
    return deploy(spec, cluster, registry, env=env, timeout=timeout, log=log)
