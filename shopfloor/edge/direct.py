"""Direct push: apply the edge chart's objects to a K3s site's API server, wait, roll back.

The order mirrors the cloud deploy (:mod:`shopfloor.deploy.apply`) over the same
:class:`~shopfloor.deploy.cluster.Cluster` seam: render through helm (the chart is the single
source), validate strictly for the K3s target, read what runs now, server-side apply, then wait
for the Deployment's rollout (new generation observed, the one pod updated and ready). The
runtime in the new pod pulls the version from the plant's mirror, verifies its signature and
checksums and self-tests it before it answers ready, so "ready" means verified on the device.
On a timeout or a failed rollout the previous objects are re-applied, and the previous pod,
whose store still holds the old version, comes back.
"""

from __future__ import annotations

import copy
import time
from collections.abc import Callable
from typing import Any

from shopfloor import contract
from shopfloor.deploy.cluster import Cluster, ClusterError, KubernetesCluster
from shopfloor.edge import helm
from shopfloor.edge.sites import PushResult, Site
from shopfloor.errors import IntegrityError, InvalidInputError

Obj = dict[str, Any]
Log = Callable[[str], None]
DEFAULT_TIMEOUT_SECONDS = 300.0
POLL_SECONDS = 2.0
#: Deployment conditions that will not heal by waiting.
_FAILED_REASONS = ("ProgressDeadlineExceeded",)


def _quiet(_: str) -> None:
    return None


def _key(obj: Obj) -> tuple[str, str]:
    return obj["kind"], obj["metadata"]["name"]


def restorable(live: Obj) -> Obj:
    """The apply-able form of a live object: identity, labels, annotations and its content."""
    meta = live.get("metadata") or {}
    out: Obj = {"apiVersion": live["apiVersion"], "kind": live["kind"],
                "metadata": {"name": meta["name"], "namespace": meta.get("namespace")}}
    if meta.get("labels"):
        out["metadata"]["labels"] = dict(meta["labels"])
    annotations = {k: v for k, v in (meta.get("annotations") or {}).items()
                   if k != "kubectl.kubernetes.io/last-applied-configuration"}
    if annotations:
        out["metadata"]["annotations"] = annotations
    for key, value in live.items():
        if key not in ("apiVersion", "kind", "metadata", "status"):
            out[key] = copy.deepcopy(value)
    return out


def deployment_version(live: Obj | None) -> str | None:
    """The model version a live Deployment was told to run (its annotation)."""
    if not live:
        return None
    return ((live.get("metadata") or {}).get("annotations") or {}).get(helm.VERSION_ANNOTATION)


def rollout_state(live: Obj | None, generation: int | None) -> tuple[bool, str | None, str]:
    """(done, terminal failure, what we are waiting for) of a Deployment at ``generation``."""
    if live is None:
        return False, "the Deployment disappeared", "the Deployment"
    status = live.get("status") or {}
    observed = status.get("observedGeneration")
    if generation is not None and (observed is None or observed < generation):
        return False, None, f"the controller to observe generation {generation} (at {observed})"
    for cond in status.get("conditions") or []:
        if cond.get("type") == "Progressing" and cond.get("reason") in _FAILED_REASONS:
            return False, f"{cond.get('reason')}: {cond.get('message') or '-'}", ""
    want = (live.get("spec") or {}).get("replicas", 1)
    updated, ready = status.get("updatedReplicas", 0), status.get("readyReplicas", 0)
    total = status.get("replicas", 0)
    if updated >= want and ready >= want and total <= want and not status.get("unavailableReplicas"):
        return True, None, ""
    return False, None, f"{ready}/{want} pods ready, {updated} updated, {total} in total"


def wait_rollout(cluster: Cluster, name: str, namespace: str, generation: int | None, timeout: float, *,
                 sleep: Callable[[float], None] = time.sleep, clock: Callable[[], float] = time.monotonic,
                 poll: float = POLL_SECONDS) -> str | None:
    """None once the rollout is complete; else why it failed (terminal condition or timeout)."""
    deadline = clock() + timeout
    waiting = "the first status"
    while True:
        done, failure, waiting_now = rollout_state(cluster.get("Deployment", name, namespace), generation)
        if done:
            return None
        if failure:
            return failure
        waiting = waiting_now or waiting
        if clock() >= deadline:
            return f"not ready after {timeout:g}s (waiting for {waiting})"
        sleep(min(poll, max(0.0, deadline - clock())))


def push(site: Site, version: str, manifest: contract.VersionManifest, *, registry: Any,
         cluster: Cluster | None = None, timeout: float = DEFAULT_TIMEOUT_SECONDS, trust: Obj | None = None,
         image: str | None = None, log: Log | None = None,
         sleep: Callable[[float], None] = time.sleep,
         clock: Callable[[], float] = time.monotonic) -> PushResult:
    """Roll ``version`` out to a direct-mode site; roll back to the previous objects on failure.

    ``registry`` is the pusher's registry (the manifest's exact bytes give the digest the site's
    objects record); the site itself pulls from its inventory ``registry`` mirror.
    """
    say = log or _quiet
    if site.mode != "direct":
        raise InvalidInputError(f"site {site.name} is in {site.mode} mode, not direct")
    if manifest.version != version:
        raise InvalidInputError(f"manifest is for {manifest.version}, not {version}")
    if not timeout > 0:
        raise InvalidInputError(f"timeout must be positive, got {timeout}")
    digest = helm.manifest_digest(registry.manifest_bytes(version))
    values = helm.site_values(site, version, model=manifest.model, manifest_digest=digest, trust=trust,
                              image=image, manifest=manifest)
    objects = helm.render(values, namespace=site.namespace, release=site.name)
    problems = helm.validation_errors(objects)
    if problems:
        raise IntegrityError(f"the edge chart rendered invalid objects for {site.name}: "
                             + "; ".join(problems[:5]))
    (deployment,) = [o for o in objects if o["kind"] == "Deployment"]
    name = deployment["metadata"]["name"]
    api = cluster if cluster is not None else KubernetesCluster.connect(context=site.context)

    previous = {_key(o): api.get(o["kind"], o["metadata"]["name"], site.namespace) for o in objects}
    prev_version = deployment_version(previous[_key(deployment)])
    say(f"{site.name}: applying {len(objects)} objects for {version} "
        f"(running now: {prev_version or 'nothing'})")
    try:
        for obj in objects:
            if obj is not deployment:
                api.apply(obj)
        applied = api.apply(deployment)
    except ClusterError as exc:
        return _rollback(site, version, api, objects, previous, f"apply failed: {exc}", timeout, say,
                         sleep=sleep, clock=clock)
    generation = (applied.get("metadata") or {}).get("generation")
    failure = wait_rollout(api, name, site.namespace, generation, timeout, sleep=sleep, clock=clock)
    if failure is None:
        outcome = "unchanged" if prev_version == version and _same(previous[_key(deployment)], applied) \
            else "deployed"
        return PushResult(site.name, "direct", version, outcome,
                          f"{site.name}: {version} rolled out and ready (verified on the device)",
                          prev_version)
    return _rollback(site, version, api, objects, previous, failure, timeout, say, sleep=sleep, clock=clock)


def _same(before: Obj | None, after: Obj) -> bool:
    return before is not None and (before.get("metadata") or {}).get("generation") == \
        (after.get("metadata") or {}).get("generation")


def _rollback(site: Site, version: str, api: Cluster, objects: list[Obj],
              previous: dict[tuple[str, str], Obj | None], reason: str, timeout: float, say: Log, *,
              sleep: Callable[[float], None], clock: Callable[[], float]) -> PushResult:
    deployment_key = next(_key(o) for o in objects if o["kind"] == "Deployment")
    prev_deployment = previous.get(deployment_key)
    prev_version = deployment_version(prev_deployment)
    if prev_deployment is None:
        return PushResult(site.name, "direct", version, "failed",
                          f"{site.name}: {version} failed ({reason}); nothing ran there before, objects "
                          "left in place for inspection", None)
    say(f"{site.name}: {version} failed ({reason}); re-applying the previous objects ({prev_version})")
    try:
        restored: Obj = {}
        for obj in objects:  # same order: the Deployment last
            live = previous.get(_key(obj))
            if live is not None:
                restored = api.apply(restorable(live))
    except ClusterError as exc:
        return PushResult(site.name, "direct", version, "failed",
                          f"{site.name}: {version} failed ({reason}) and the rollback failed too: {exc}",
                          prev_version)
    generation = (restored.get("metadata") or {}).get("generation")
    again = wait_rollout(api, deployment_key[1], site.namespace, generation, timeout, sleep=sleep,
                         clock=clock)
    state = "ready again" if again is None else f"re-applied but not ready: {again}"
    return PushResult(site.name, "direct", version, "rolled_back",
                      f"{site.name}: {version} rolled back ({reason}); "
                      f"previous {prev_version or 'objects'} {state}",
                      prev_version)


def status(site: Site, cluster: Cluster | None = None) -> dict[str, Any]:
    """What a direct site's cluster says: the version its Deployment runs and how many pods are ready."""
    api = cluster if cluster is not None else KubernetesCluster.connect(context=site.context)
    live = api.get("Deployment", helm.CHART_NAME, site.namespace)
    if live is None:
        return {"should_run": None, "reports": None, "ready": False, "detail": "no Deployment"}
    state = live.get("status") or {}
    want = (live.get("spec") or {}).get("replicas", 1)
    ready = state.get("readyReplicas", 0)
    version = deployment_version(live)
    pods = ((live.get("spec") or {}).get("template", {}).get("metadata", {}).get("annotations") or {})
    fmt = ((live.get("metadata") or {}).get("annotations") or {}).get(helm.FORMAT_ANNOTATION)
    return {"should_run": version, "reports": pods.get(helm.VERSION_ANNOTATION) if ready >= want else None,
            "ready": ready >= want, "detail": f"{ready}/{want} ready", "format": fmt}

