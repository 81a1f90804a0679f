"""Staged rollout (pilot first, soak, then the rest) and the per-site rollback dispatcher.

A rollout pushes to the pilot, then watches it for ``soak`` seconds: it must stay ready, keep
the new version active with no refusal recorded (the self-test passed on the device) and keep
its server error rate within the policy. Only then do the other sites follow: local and direct
sites one by one, GitOps sites by a commit after the pilot passed; bundle sites are air-gapped
and are listed as skipped. A pilot that fails is rolled back (when the new version was
activated) and the rollout stops there. The pilot must be a site whose health the pusher can
observe: ``local`` or ``direct``.
"""

from __future__ import annotations

import re
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from shopfloor import settings
from shopfloor.errors import (
    ConflictError,
    GateFailedError,
    InvalidInputError,
    ShopfloorError,
    bounded,
)

Log = Callable[[str], None]
#: Largest share of requests answered with a server error that a pilot may show during the soak.
DEFAULT_MAX_ERROR_RATE = 0.01
#: Seconds between two looks at the pilot during the soak.
POLL_SECONDS = 0.5
MAX_SOAK_SECONDS = 24 * 3600
MAX_METRICS_BYTES = 4 << 20
OBSERVABLE_MODES = ("local", "direct")


def _quiet(_: str) -> None:
    return None


@dataclass(frozen=True)
class Health:
    """One look at a site."""

    ready: bool
    active: str | None
    last_error: str | None = None
    served: float = 0.0
    errors: float = 0.0

    def problem(self, version: str, baseline: Health | None, max_error_rate: float) -> str | None:
        if not self.ready:
            return "not ready"
        if self.active != version:
            return f"serves {self.active}, not {version}" + (
                f" ({self.last_error})" if self.last_error else ""
            )
        if self.last_error:
            return f"reports an error: {self.last_error}"
        served = self.served - (baseline.served if baseline else 0.0)
        errors = self.errors - (baseline.errors if baseline else 0.0)
        total = served + errors
        if total > 0 and errors / total > max_error_rate:
            return (
                f"server error rate {errors / total:.1%} ({errors:.0f} of {total:.0f} requests) over the "
                f"policy's {max_error_rate:.1%}"
            )
        return None


@dataclass
class SiteOutcome:
    site: str
    mode: str
    outcome: str  # active | committed | skipped | refused | rolled back | failed | not reached
    detail: str = ""


@dataclass
class RolloutResult:
    version: str
    pilot: str
    sites: list[SiteOutcome] = field(default_factory=list)
    ok: bool = True
    reason: str = ""

    @property
    def message(self) -> str:
        parts = [f"{s.site}: {s.outcome}" + (f" ({s.detail})" if s.detail else "") for s in self.sites]
        head = f"rollout of {self.version} (pilot {self.pilot}) " + ("completed" if self.ok else "stopped")
        return head + (f": {self.reason}" if self.reason else "") + "\n  " + "\n  ".join(parts)

    def to_dict(self) -> dict[str, Any]:
        return {
            "version": self.version,
            "pilot": self.pilot,
            "ok": self.ok,
            "reason": self.reason,
            "sites": [vars(s) for s in self.sites],
        }


# -- observing a site ------------------------------------------------------------------------
_SAMPLE = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})?\s+([0-9.eE+-]+|NaN|[+-]Inf)\s*$")
_STATUS = re.compile(r'status="(\d+)"')


def parse_counts(text: str) -> tuple[float, float]:
    """(requests served by the model, requests answered with a 5xx) from Prometheus text."""
    served = errors = 0.0
    for line in text.splitlines():
        m = _SAMPLE.match(line)
        if not m:
            continue
        name, labels, value = m.group(1), m.group(2) or "", m.group(3)
        try:
            number = float(value)
        except ValueError:
            continue
        if name == "shopfloor_inference_duration_seconds_count":
            served += number
        elif name == "shopfloor_refused_requests_total":
            status = _STATUS.search(labels)
            if status and int(status.group(1)) >= 500:
                errors += number
    return served, errors


def _metrics(url: str) -> tuple[float, float]:
    try:
        with urllib.request.urlopen(f"{url.rstrip('/')}/metrics", timeout=5.0) as resp:
            body = resp.read(MAX_METRICS_BYTES + 1)
    except (urllib.error.URLError, OSError, ValueError):
        return 0.0, 0.0
    return parse_counts(body[:MAX_METRICS_BYTES].decode("utf-8", "replace"))


def observe(site: Any) -> Health:
    """Ready, active version, last refusal and request counters of a local or direct site."""
    if site.mode == "local":
        from shopfloor.edge.push import client_for

        client = client_for(site)
        try:
            status = client.status()
            ready = bool(client.health())
        except ShopfloorError as exc:
            return Health(False, None, bounded(str(exc), 200))
        served, errors = _metrics(site.url)
        return Health(ready, status.get("active"), status.get("last_error"), served, errors)
    if site.mode == "direct":
        from shopfloor.edge import direct

        got = direct.status(site)
        return Health(
            bool(got.get("ready")),
            got.get("reports"),
            None if got.get("ready") else str(got.get("detail") or "not ready"),
        )
    raise InvalidInputError(
        f"site {site.name} ({site.mode}) cannot be observed: a pilot must be local or direct"
    )


def _rollback_site(
    site: Any,
    *,
    registry: str | None = None,
    model_name: str = settings.DEFAULT_MODEL_NAME,
    git_push: bool = False,
    log: Log = _quiet,
) -> str:
    """Back one version on ``site``; returns a one-line outcome.

    A local runtime goes back in its own store. A direct or GitOps site is given the version it
    ran before, from the pusher's history of that site (its store then still holds it).
    """
    if site.mode == "local":
        from shopfloor.edge.push import client_for

        got = client_for(site).rollback()
        return f"{site.name}: rolled back from {got.get('previous')} to {got.get('active')}"
    if site.mode in ("direct", "gitops"):
        from shopfloor.edge.push import push_to_site, read_history, record_history
        from shopfloor.registry import open_registry

        known = read_history(site)
        if len(known) < 2:
            raise ConflictError(
                f"site {site.name}: no earlier version in the push history "
                f"({known or 'empty'}); push the version you want: shopfloor edge push VERSION "
                f"--site {site.name}"
            )
        previous = known[-2]
        result = push_to_site(open_registry(registry, model_name), previous, site, push=git_push, log=log)
        if not result.ok:
            raise GateFailedError(result.message)
        record_history(site, known[:-1])
        return f"{site.name}: rolled back from {known[-1]} to {previous} ({result.message})"
    if site.mode == "bundle":
        if not site.store:
            raise InvalidInputError(
                f"site {site.name} is air-gapped and has no store in the inventory: run "
                "`shopfloor edge rollback --store DIR` on the site itself"
            )
        return rollback_store(site.resolve(site.store), profile=site.device_profile())
    raise InvalidInputError(f"site {site.name} has unknown mode {site.mode!r}")


def rollback_store(store_root: Path, *, profile: Any = None, trust: Path | None = None) -> str:
    """Back one version in a model store on this machine (a bundle site's own store)."""
    from shopfloor.edge.signing import TrustStore, ensure_dev_keypair
    from shopfloor.edge.store import ModelStore

    store_root = Path(store_root)
    if not store_root.is_dir():
        raise InvalidInputError(f"store {store_root} does not exist")
    trust_store = TrustStore.load(trust if trust is not None else ensure_dev_keypair()[1])
    store = ModelStore(store_root, trust=trust_store, profile=profile)
    before = store.active()
    store.rollback()
    return f"{store_root}: rolled back from {before} to {store.active()}"


def rollback(
    site_name: str,
    *,
    inventory: Path | None = None,
    registry: str | None = None,
    model_name: str = settings.DEFAULT_MODEL_NAME,
    git_push: bool = False,
    log: Log = _quiet,
) -> str:
    """``shopfloor edge rollback --site NAME``: one version back, whatever way it arrived."""
    from shopfloor.edge.sites import load_inventory

    return _rollback_site(
        load_inventory(inventory).get(site_name),
        registry=registry,
        model_name=model_name,
        git_push=git_push,
        log=log,
    )


# -- the rollout -----------------------------------------------------------------------------
def soak_pilot(
    site: Any,
    version: str,
    soak: float,
    *,
    max_error_rate: float = DEFAULT_MAX_ERROR_RATE,
    poll: float = POLL_SECONDS,
    baseline: Health | None = None,
    log: Log = _quiet,
) -> str | None:
    """Watch the pilot for ``soak`` seconds; the first problem seen, or None if it stayed healthy."""
    deadline = time.monotonic() + soak
    looks = 0
    while True:
        health = observe(site)
        looks += 1
        problem = health.problem(version, baseline, max_error_rate)
        if problem:
            return problem
        if time.monotonic() >= deadline:
            log(f"pilot {site.name} healthy on {version} for {soak:g} s ({looks} looks)")
            return None
        time.sleep(min(poll, max(0.0, deadline - time.monotonic())))


def rollout(
    version: str | None,
    pilot: str | None,
    soak: float,
    *,
    registry: str | None = None,
    env: str = settings.EDGE_ENV,
    inventory: Path | None = None,
    max_error_rate: float = DEFAULT_MAX_ERROR_RATE,
    git_push: bool = False,
    model_name: str = settings.DEFAULT_MODEL_NAME,
    poll: float = POLL_SECONDS,
    log: Log = _quiet,
) -> RolloutResult:
    """Pilot, soak, then every other site of the inventory (see the module docstring)."""
    from shopfloor.edge.push import default_version, preflight, push_to_site
    from shopfloor.edge.sites import load_inventory
    from shopfloor.registry import open_registry

    if not 0 <= soak <= MAX_SOAK_SECONDS:
        raise InvalidInputError(f"--soak must be within [0, {MAX_SOAK_SECONDS}] seconds, got {soak}")
    if not 0 <= max_error_rate < 1:
        raise InvalidInputError(f"--max-error-rate must be within [0, 1), got {max_error_rate}")
    inv = load_inventory(inventory)
    if pilot is None:
        marked = [s for s in inv.sites if s.pilot]
        if len(marked) != 1:
            raise InvalidInputError(
                f"name the pilot with --pilot SITE (the inventory marks {len(marked)} sites as pilot)"
            )
        pilot_site = marked[0]
    else:
        pilot_site = inv.get(pilot)
    if pilot_site.mode not in OBSERVABLE_MODES:
        raise InvalidInputError(
            f"pilot {pilot_site.name} is a {pilot_site.mode} site whose health cannot be "
            f"observed: choose a {' or '.join(OBSERVABLE_MODES)} site"
        )
    reg = open_registry(registry, model_name)
    chosen = version or default_version(reg, env)
    others = [s for s in inv.sites if s.name != pilot_site.name]
    # Every site that will receive the version must fit it: refused before anything moves.
    for site in [pilot_site, *others]:
        if site.mode != "bundle":
            preflight(reg, chosen, site)

    result = RolloutResult(chosen, pilot_site.name)
    before = observe(pilot_site)
    try:
        pushed = push_to_site(reg, chosen, pilot_site, log=log)
        if not pushed.ok:
            raise GateFailedError(pushed.message)
    except ShopfloorError as exc:
        result.ok = False
        result.reason = f"pilot {pilot_site.name} refused {chosen}: {bounded(str(exc), 300)}"
        result.sites.append(
            SiteOutcome(
                pilot_site.name, pilot_site.mode, "refused", f"still serving {observe(pilot_site).active}"
            )
        )
        result.sites += [SiteOutcome(s.name, s.mode, "not reached") for s in others]
        return result
    log(pushed.message)
    problem = soak_pilot(
        pilot_site, chosen, soak, max_error_rate=max_error_rate, poll=poll, baseline=before, log=log
    )
    if problem:
        result.ok = False
        result.reason = f"pilot {pilot_site.name} unhealthy on {chosen}: {problem}"
        try:
            detail = _rollback_site(pilot_site, registry=registry, model_name=model_name, log=log)
            outcome = "rolled back"
        except ShopfloorError as exc:
            detail, outcome = f"rollback failed too: {bounded(str(exc), 200)}", "failed"
        result.sites.append(SiteOutcome(pilot_site.name, pilot_site.mode, outcome, detail))
        result.sites += [SiteOutcome(s.name, s.mode, "not reached") for s in others]
        return result
    result.sites.append(SiteOutcome(pilot_site.name, pilot_site.mode, "active", f"healthy for {soak:g} s"))

    stopped = False
    for site in [s for s in others if s.mode in OBSERVABLE_MODES] + [s for s in others if s.mode == "gitops"]:
        if stopped:
            result.sites.append(SiteOutcome(site.name, site.mode, "not reached"))
            continue
        try:
            pushed = push_to_site(reg, chosen, site, push=git_push, log=log)
            if not pushed.ok:
                raise GateFailedError(pushed.message)
            result.sites.append(
                SiteOutcome(
                    site.name, site.mode, "committed" if site.mode == "gitops" else "active", pushed.outcome
                )
            )
            log(pushed.message)
        except ShopfloorError as exc:
            stopped = True
            result.ok = False
            result.reason = f"site {site.name} refused {chosen}: {bounded(str(exc), 300)}"
            result.sites.append(SiteOutcome(site.name, site.mode, "refused", bounded(str(exc), 200)))
    for site in others:
        if site.mode == "bundle":
            result.sites.append(
                SiteOutcome(site.name, site.mode, "skipped", "air-gapped: shopfloor edge bundle export")
            )
    return result


def check(result: RolloutResult) -> RolloutResult:
    """Raise :class:`GateFailedError` for a rollout that stopped (for the CLI and pipeline step)."""
    if not result.ok:
        raise GateFailedError(result.reason)
    return result
