"""``shopfloor edge status``: for every site, the version it should run and the one it reports.

Where each side comes from, by mode:

* local: should = the registry's edge default (champion, else newest); reports = the runtime's
  admin status (with the site's token) or its V2 model metadata.
* direct: should = the Deployment's version annotation; reports = that version once the
  Deployment's pods are ready (the runtime is ready only after verifying it on the device).
* gitops: should = ``modelVersion`` in the site's values file in the working copy; what the
  site runs is observed by the GitOps engine, not by the pusher.
* bundle: should = the registry's edge default; an air-gapped site cannot be asked.

One site's failure (unreachable, no cluster) is that site's row, never the whole command's.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from shopfloor import settings
from shopfloor.edge.sites import Inventory, Site
from shopfloor.errors import ShopfloorError, bounded


@dataclass(frozen=True)
class SiteStatus:
    site: str
    mode: str
    profile: str
    should_run: str | None
    reports: str | None
    healthy: bool | None
    detail: str
    #: The LiteRT format the site runs (or, GitOps, is told to run) its version in, when known:
    #: int8 for an MLP on most devices, float32 for a tree ensemble anywhere.
    format: str | None = None

    @property
    def in_sync(self) -> bool | None:
        if self.should_run is None or self.reports is None:
            return None
        return self.should_run == self.reports

    def to_dict(self) -> dict[str, Any]:
        return {"site": self.site, "mode": self.mode, "profile": self.profile,
                "should_run": self.should_run, "reports": self.reports, "in_sync": self.in_sync,
                "format": self.format, "healthy": self.healthy, "detail": self.detail}


def _registry_default(registry: Any) -> tuple[str | None, str]:
    if registry is None:
        return None, "no registry"
    try:
        return registry.champion_or_newest(env=settings.EDGE_ENV), ""
    except ShopfloorError as exc:
        return None, f"registry: {exc}"


def _local(site: Site, registry: Any) -> SiteStatus:
    from shopfloor.edge.client import RuntimeClient, read_token

    should, note = _registry_default(registry)
    token = read_token(site.resolve(site.admin_token_file)) if site.admin_token_file else None
    client = RuntimeClient(site.url or "", token=token, timeout=5.0)
    healthy = client.health()
    fmt = None
    if token:
        document = client.status()
        reports = document.get("active")
        fmt = document.get("format")
        error = document.get("last_error")
        detail = f"last error: {error}" if error else f"installed {document.get('installed', [])}"
    else:
        versions = client.metadata().get("versions") or []
        reports = versions[0] if versions else None
        detail = "V2 metadata (no admin token)"
    return SiteStatus(site.name, site.mode, site.profile, should, reports, healthy,
                      "; ".join(p for p in (detail, note) if p), str(fmt) if fmt else None)


def _direct(site: Site, cluster_for: Callable[[Site], Any] | None) -> SiteStatus:
    from shopfloor.edge import direct

    cluster = cluster_for(site) if cluster_for is not None else None
    state = direct.status(site, cluster)
    return SiteStatus(site.name, site.mode, site.profile, state["should_run"], state["reports"],
                      state["ready"], state["detail"], state.get("format"))


def _gitops(site: Site) -> SiteStatus:
    from shopfloor.edge import gitops

    values = gitops.read_values(site)
    should = str(values["modelVersion"]) if values and values.get("modelVersion") else None
    digest = (values or {}).get("manifestDigest") or "-"
    fmt = (values or {}).get("modelFormat")
    return SiteStatus(site.name, site.mode, site.profile, should, None, None,
                      f"values file pins manifest {digest}; the site's GitOps engine reports what runs",
                      str(fmt) if fmt else None)


def site_status(site: Site, *, registry: Any = None,
                cluster_for: Callable[[Site], Any] | None = None) -> SiteStatus:
    try:
        if site.mode == "local":
            return _local(site, registry)
        if site.mode == "direct":
            return _direct(site, cluster_for)
        if site.mode == "gitops":
            return _gitops(site)
        should, note = _registry_default(registry)
        return SiteStatus(site.name, site.mode, site.profile, should, None, None,
                          note or "air-gapped: carry a bundle (shopfloor edge bundle export)")
    except ShopfloorError as exc:
        return SiteStatus(site.name, site.mode, site.profile, None, None, False, bounded(str(exc), 300))
    except ImportError as exc:  # direct sites need the kubernetes client (shopfloor[deploy])
        return SiteStatus(site.name, site.mode, site.profile, None, None, None,
                          f"needs shopfloor[deploy]: {exc.name} is not installed")


def inventory_status(inventory: Inventory, *, registry: Any = None,
                     cluster_for: Callable[[Site], Any] | None = None) -> list[SiteStatus]:
    return [site_status(s, registry=registry, cluster_for=cluster_for) for s in inventory.sites]
