"""``shopfloor edge push``: one version to one site, by the site's push mode.

Before anything reaches a site: the version must fit the site's device profile (refused with
the figures) and carry at least one signature. Then ``local`` sites receive the files through
their runtime's admin endpoint (the runtime verifies, self-tests and activates); ``direct`` and
``gitops`` sites go through :mod:`shopfloor.edge.direct` / :mod:`shopfloor.edge.gitops`; an
air-gapped ``bundle`` site is refused with the command that serves it.
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from shopfloor import settings
from shopfloor.edge.sites import PushResult
from shopfloor.errors import GateFailedError, IntegrityError, InvalidInputError, NotFoundError
from shopfloor.lineage import write_text_atomic

Log = Callable[[str], None]


def _quiet(_: str) -> None:
    return None


#: Versions remembered per site for ``rollback`` of sites whose runtime cannot go back by itself.
MAX_HISTORY = 20
HISTORY_DIR = "history"


def history_path(site: Any) -> Path:
    """Push history of a direct/gitops site, beside the inventory (the site itself keeps none
    the pusher can read back)."""
    base = site.base if site.base is not None else settings.edge_inventory_path().parent
    return Path(base) / HISTORY_DIR / f"{site.name}.json"


def read_history(site: Any) -> list[str]:
    path = history_path(site)
    if not path.is_file():
        return []
    try:
        versions = json.loads(path.read_text()[: 1 << 16])["versions"]
    except (OSError, ValueError, KeyError, TypeError):
        raise IntegrityError(
            f"push history {path} is unreadable; push the version you want explicitly"
        ) from None
    return [str(v) for v in versions][-MAX_HISTORY:]


def record_history(site: Any, versions: list[str]) -> None:
    write_text_atomic(history_path(site), json.dumps({"versions": versions[-MAX_HISTORY:]}) + "\n")


def default_version(registry: Any, env: str = settings.EDGE_ENV) -> str:
    """The env's champion, else the newest published version (what ``serve`` takes)."""
    version = registry.champion_or_newest(env=env)
    if version is None:
        raise NotFoundError(
            f"the registry {registry.backend.describe()} has no published version of {registry.model}"
        )
    return str(version)


def preflight(registry: Any, version: str, site: Any) -> tuple[Any, list[Any]]:
    """(manifest, signatures) once the version fits the site's profile and is signed."""
    from shopfloor.edge.profiles import check_fits

    manifest = registry.show(version)
    profile = site.device_profile()
    problems = check_fits(manifest, profile)
    if problems:
        raise GateFailedError(f"{version} refused for site {site.name}: " + "; ".join(problems))
    signatures = list(registry.signatures(version))
    if not signatures:
        raise IntegrityError(
            f"{registry.model} {version} is unsigned: sign it first: "
            f"shopfloor models sign {version} --key FILE"
        )
    return manifest, signatures


def client_for(site: Any) -> Any:
    """A :class:`~shopfloor.edge.client.RuntimeClient` for a local site (admin token from its file)."""
    from shopfloor.edge.client import RuntimeClient

    if not site.url:
        raise InvalidInputError(f"site {site.name} has no url in the inventory")
    token = None
    if site.admin_token_file:
        path = site.resolve(site.admin_token_file)
        try:
            token = path.read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise NotFoundError(
                f"site {site.name}: admin token file {path} cannot be read: {exc.strerror or exc}"
            ) from None
    return RuntimeClient(site.url, token=token)


def push_local(
    registry: Any, version: str, site: Any, signatures: list[Any], *, log: Log = _quiet
) -> PushResult:
    """Fetch (verified) and upload to the site's runtime, which installs and activates it."""
    client = client_for(site)
    before = client.status().get("active")
    with tempfile.TemporaryDirectory(prefix="shopfloor-push-") as tmp:
        vdir = registry.fetch(version, Path(tmp) / version)
        log(f"uploading {version} to {site.name} at {site.url}")
        client.upload(vdir, signatures, activate=True)
    active = client.status().get("active")
    if active != version:
        raise GateFailedError(f"site {site.name} did not activate {version}; it serves {active}")
    return PushResult(
        site.name,
        site.mode,
        version,
        "unchanged" if before == version else "deployed",
        f"{site.name}: {version} verified on the device and active (was {before or 'nothing'})",
        before,
    )


def push_to_site(
    registry: Any, version: str, site: Any, *, push: bool = False, log: Log = _quiet
) -> PushResult:
    """Dispatch by mode (after :func:`preflight`)."""
    if site.mode == "bundle":
        raise InvalidInputError(
            f"site {site.name} is air-gapped: use shopfloor edge bundle export "
            f"{version} --site {site.name} -o FILE, then bundle import at the site"
        )
    manifest, signatures = preflight(registry, version, site)
    if site.mode == "local":
        return push_local(registry, version, site, signatures, log=log)
    if site.mode == "direct":
        from shopfloor.edge import direct

        result = direct.push(site, version, manifest, registry=registry, log=log)
    elif site.mode == "gitops":
        from shopfloor.edge import gitops

        result = gitops.push(site, version, manifest, registry=registry, push=push, log=log)
    else:
        raise InvalidInputError(f"site {site.name} has unknown mode {site.mode!r}")
    if result.ok:
        known = read_history(site)
        if result.previous_version and not known:
            known = [result.previous_version]
        if not known or known[-1] != version:
            record_history(site, [*known, version])
    return result


def push(
    version: str | None,
    site_name: str,
    *,
    registry: str | None = None,
    env: str = settings.EDGE_ENV,
    inventory: Path | None = None,
    git_push: bool = False,
    model_name: str = settings.DEFAULT_MODEL_NAME,
    log: Log = _quiet,
) -> PushResult:
    """``shopfloor edge push``: resolve the version and the site, then :func:`push_to_site`."""
    from shopfloor.edge.sites import load_inventory
    from shopfloor.registry import open_registry

    site = load_inventory(inventory).get(site_name)
    if site.mode == "bundle":  # before touching the registry: there is nothing to reach
        raise InvalidInputError(
            f"site {site.name} is air-gapped: use shopfloor edge bundle export "
            f"[VERSION] --site {site.name} -o FILE, then bundle import at the site"
        )
    reg = open_registry(registry, model_name)
    chosen = version or default_version(reg, env)
    return push_to_site(reg, chosen, site, push=git_push, log=log)
