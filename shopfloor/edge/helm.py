"""Render the edge chart (``helm/shopfloor-edge``) through the real ``helm`` binary.

The chart is the one source of truth for an edge site's Kubernetes objects: direct pushes apply
what ``helm template`` renders, GitOps engines (Fleet, Argo CD) render the same chart from the
site's values file, and bundles carry the same rendering. So helm is a requirement of the direct
and bundle modes; when it is missing the error says so in one line.

Target: K3s v1.33 (:data:`K3S_KUBERNETES_VERSION`); every rendered object must pass
kubernetes-validate strict for it (:func:`validation_errors`).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Any

import yaml

from shopfloor import contract, settings
from shopfloor.edge.profiles import chart_values, list_profiles
from shopfloor.edge.sites import Site
from shopfloor.errors import ExternalServiceError, InvalidInputError, NotFoundError, bounded, excerpt

Obj = dict[str, Any]
#: Kubernetes minor of the K3s release the chart targets (K3s v1.33.x).
K3S_KUBERNETES_VERSION = "1.33"
CHART_NAME = "shopfloor-edge"
_REPO = Path(__file__).resolve().parents[2]
#: The chart in a source checkout (the chart is not package data: one copy, the repository's).
DEFAULT_CHART = _REPO / "helm" / CHART_NAME
_REPO_HELM = _REPO / ".tools" / "bin" / "helm"
HELM_TIMEOUT_SECONDS = 60
#: Rendered output of one site is a few kB; bound what we parse.
MAX_RENDER_BYTES = 1024 * 1024
#: Kinds the chart renders, in apply order (the Deployment last: it needs the others).
APPLY_ORDER = ("ServiceAccount", "ConfigMap", "PersistentVolumeClaim", "Service", "NetworkPolicy",
               "Deployment")
VERSION_ANNOTATION = "shopfloor.io/model-version"
#: The LiteRT format the site's runtime loads for that version (chart value ``modelFormat``).
FORMAT_ANNOTATION = "shopfloor.io/model-format"
DIGEST_ANNOTATION = "shopfloor.io/manifest-digest"


class HelmMissingError(NotFoundError):
    """No helm binary: rendering needs the real one (the chart is the single source)."""


def helm_binary() -> str:
    """SHOPFLOOR_HELM, else the checkout's pinned .tools/bin/helm, else ``helm`` on PATH."""
    configured = settings.HELM.get()
    if configured:
        found = shutil.which(configured)
        if not found:
            raise HelmMissingError(f"{settings.HELM.name}={excerpt(configured)} is not an executable "
                                   "helm binary")
        return found
    if os.access(_REPO_HELM, os.X_OK):
        return str(_REPO_HELM)
    found = shutil.which("helm")
    if not found:
        raise HelmMissingError("helm not found (needed to render the edge chart for direct and bundle "
                               f"pushes): install helm >= 3.8 on PATH, run scripts/install-tools.sh, or set "
                               f"{settings.HELM.name}")
    return found


def chart_dir(chart: Path | None = None) -> Path:
    path = Path(chart) if chart is not None else DEFAULT_CHART
    if not (path / "Chart.yaml").is_file():
        raise NotFoundError(f"edge chart not found at {path} "
                            f"(expected helm/{CHART_NAME} of a shopfloor checkout)")
    return path


def manifest_digest(manifest_bytes: bytes) -> str:
    import hashlib

    return "sha256:" + hashlib.sha256(manifest_bytes).hexdigest()


def default_trust() -> Obj:
    """The trust document of the pusher's key directory (the development one, made on first use)."""
    from shopfloor.edge.signing import TRUST_FILE, TrustStore, ensure_dev_keypair

    path = settings.edge_key_dir() / TRUST_FILE
    if not path.is_file():
        path = ensure_dev_keypair()[1]
    return TrustStore.load(path).to_dict()


def site_values(site: Site, version: str, *, model: str = settings.DEFAULT_MODEL_NAME,
                manifest_digest: str = "", trust: Obj | None = None, image: str | None = None,
                manifest: contract.VersionManifest | None = None) -> Obj:
    """The chart values of ``site`` running ``version``: its values file in GitOps mode.
    ``manifest`` (the version's) makes ``modelFormat`` the format the site will load, not
    just the profile's preference."""
    if site.mode not in ("direct", "gitops", "bundle"):
        raise InvalidInputError(f"site {site.name} is in {site.mode} mode: only direct, gitops and bundle "
                                "sites run the edge chart")
    profile = site.device_profile()
    builtin = {p.name: p for p in list_profiles()}
    if builtin.get(profile.name) != profile:
        raise InvalidInputError(f"site {site.name}: profile {excerpt(site.profile)} is not a built-in "
                                f"profile; the runtime in the cluster knows only {sorted(builtin)}")
    trust_doc = trust if trust is not None else default_trust()
    values: Obj = {
        "site": site.name,
        "modelName": model,
        "modelVersion": version,
        "manifestDigest": manifest_digest,
        # air-gapped (bundle) sites pull nothing: versions arrive by bundle import into the store
        "registry": site.registry or "",
        **chart_values(profile, manifest),
        "trust": {"keys": list(trust_doc.get("keys") or []), "revoked": list(trust_doc.get("revoked") or [])},
    }
    if image:
        values["image"] = image
    return values


def version_values(manifest: contract.VersionManifest, manifest_bytes: bytes) -> Obj:
    return {"modelName": manifest.model, "modelVersion": manifest.version,
            "manifestDigest": manifest_digest(manifest_bytes)}


def render(values: Obj, *, namespace: str, release: str = CHART_NAME, chart: Path | None = None) -> list[Obj]:
    """``helm template`` of the chart with ``values``; objects in :data:`APPLY_ORDER`."""
    helm = helm_binary()
    path = chart_dir(chart)
    with tempfile.TemporaryDirectory(prefix="shopfloor-helm-") as tmp:
        values_file = Path(tmp) / "values.yaml"
        values_file.write_text(yaml.safe_dump(values, sort_keys=False))
        homes = {f"HELM_{k}_HOME": str(Path(tmp) / k.lower()) for k in ("CACHE", "CONFIG", "DATA")}
        env = {**os.environ, **homes}
        try:
            done = subprocess.run([helm, "template", release, str(path), "--namespace", namespace,
                                   "--values", str(values_file)], capture_output=True, text=True, env=env,
                                  timeout=HELM_TIMEOUT_SECONDS, check=False)
        except subprocess.TimeoutExpired as exc:
            raise ExternalServiceError(f"helm template did not finish in {HELM_TIMEOUT_SECONDS}s") from exc
        except OSError as exc:
            raise HelmMissingError(f"cannot run {helm}: {exc.strerror}") from exc
    if done.returncode != 0:
        message = " ".join(done.stderr.split()) or f"exit {done.returncode}"
        raise InvalidInputError(f"edge chart refused the values of {excerpt(values.get('site'))}: "
                                f"{bounded(message, 600)}")
    if len(done.stdout) > MAX_RENDER_BYTES:
        raise ExternalServiceError(f"helm template printed more than {MAX_RENDER_BYTES} bytes")
    objects = [o for o in yaml.safe_load_all(done.stdout) if o]
    unknown = sorted({o.get("kind", "?") for o in objects} - set(APPLY_ORDER))
    if unknown:
        raise ExternalServiceError(f"edge chart rendered kinds shopfloor does not apply: {unknown}")
    return sorted(objects, key=lambda o: APPLY_ORDER.index(o["kind"]))


def validation_errors(objects: list[Obj]) -> list[str]:
    """kubernetes-validate strict errors for the K3s target (a missing schema is an error)."""
    try:
        import kubernetes_validate  # noqa: F401

        from shopfloor.deploy.validate import core_errors
    except ImportError as exc:  # the pusher's extra, not the runtime's
        raise NotFoundError(f"validating edge objects needs shopfloor[deploy] ({exc.name} is missing)"
                            ) from exc

    return [f"{o.get('kind')}/{o.get('metadata', {}).get('name')}: {e}"
            for o in objects for e in core_errors(o, K3S_KUBERNETES_VERSION)]


def render_site_files(site: Site, version: str, *, registry: Any, trust: Obj | None = None,
                      image: str | None = None, chart: Path | None = None) -> list[tuple[str, str]]:
    """``[(file name, YAML)]`` of a site's objects for ``version``: what a bundle carries into
    K3s's ``server/manifests/`` (one multi-document file, in apply order). ``registry`` is the
    pusher's registry (model name and the manifest digest the objects record)."""
    manifest = registry.show(version)
    values = site_values(site, version, model=manifest.model,
                         manifest_digest=manifest_digest(registry.manifest_bytes(version)), trust=trust,
                         image=image, manifest=manifest)
    objects = render(values, namespace=site.namespace, release=site.name, chart=chart)
    problems = validation_errors(objects)
    if problems:
        raise ExternalServiceError(f"the edge chart rendered invalid objects for {site.name}: "
                                   + "; ".join(problems[:5]))
    text = "".join(f"---\n{yaml.safe_dump(o, sort_keys=False)}" for o in objects)
    return [(f"{CHART_NAME}-{site.name}.yaml", text)]
