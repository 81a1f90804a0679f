"""GitOps push: write a site's chart values into a working copy of the GitOps repository and commit.

The site's cluster pulls: Rancher Fleet (``manifests/gitops/fleet-gitrepo.yaml``) or Argo CD
(``manifests/gitops/argocd-applicationset.yaml``) watch the repository and render the edge
chart with each site's values file. Layout of a site in the repository (``gitops.path`` in the
inventory names the values file; ``fleet.yaml`` beside it is written once when missing)::

    sites/<site>/values.yaml   the chart values: model version, manifest digest, profile, trust
    sites/<site>/fleet.yaml    Fleet's bundle options for the directory (chart + values file)

Only the site's files are committed (other changes in the working copy are left alone); with
``push=True`` the commit is pushed to the working copy's remote, and a rejected push (someone
pushed first) is an error that leaves the commit local.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

from shopfloor import __version__, contract, settings
from shopfloor.edge import helm
from shopfloor.edge.sites import PushResult, Site
from shopfloor.errors import ConflictError, ExternalServiceError, InvalidInputError, NotFoundError, bounded

Obj = dict[str, Any]
Log = Callable[[str], None]
GIT_TIMEOUT_SECONDS = 120
#: A values file is a few kB.
MAX_VALUES_BYTES = 256 * 1024
HEADER = ("# Written by `shopfloor edge push` (gitops mode): shopfloor-edge chart values of one site.\n"
          "# Edit the inventory or push another version rather than this file.\n")
#: Committer identity used only when the working copy has none configured.
FALLBACK_IDENTITY = ("shopfloor", "shopfloor@localhost")
#: The edge chart as published for GitOps engines (``helm push`` of helm/shopfloor-edge, a release step).
CHART_OCI = f"oci://{settings.IMAGE_REPOSITORY}/charts/{helm.CHART_NAME}"
#: Cluster label (Fleet) / cluster name (Argo CD) that says which site a cluster is.
SITE_LABEL = "shopfloor.io/site"


class GitError(ExternalServiceError):
    """git refused (its own message, one line)."""


def git(repo: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "GIT_TERMINAL_PROMPT": "0", "LC_ALL": "C"}
    try:
        done = subprocess.run(["git", "-C", str(repo), *args], capture_output=True, text=True, env=env,
                              timeout=GIT_TIMEOUT_SECONDS, check=False)
    except FileNotFoundError as exc:
        raise NotFoundError("git not found on PATH (needed for gitops pushes)") from exc
    except subprocess.TimeoutExpired as exc:
        raise GitError(f"git {args[0]} did not finish in {GIT_TIMEOUT_SECONDS}s") from exc
    if check and done.returncode != 0:
        message = " ".join((done.stderr or done.stdout).split()) or f"exit {done.returncode}"
        raise GitError(f"git {args[0]} in {repo}: {bounded(message, 400)}")
    return done


def working_copy(site: Site) -> tuple[Path, Path]:
    """(top of the working copy, the site's values file inside it)."""
    if site.mode != "gitops" or site.gitops is None:
        raise InvalidInputError(f"site {site.name} is in {site.mode} mode, not gitops")
    repo = site.resolve(site.gitops.repo)
    if not repo.is_dir():
        raise NotFoundError(f"site {site.name}: GitOps working copy {repo} does not exist")
    done = git(repo, "rev-parse", "--show-toplevel", check=False)
    if done.returncode != 0:
        raise InvalidInputError(f"site {site.name}: {repo} is not a git working copy")
    top = Path(done.stdout.strip())
    target = (repo / site.gitops.path).resolve()
    if not target.is_relative_to(top.resolve()):
        raise InvalidInputError(f"site {site.name}: gitops path {site.gitops.path} leaves the working copy")
    return top, target


def read_values(site: Site) -> Obj | None:
    """The values file of a site as committed in the working copy (None when there is none yet)."""
    _top, target = working_copy(site)
    if not target.is_file():
        return None
    if target.stat().st_size > MAX_VALUES_BYTES:
        raise InvalidInputError(f"{target} is larger than {MAX_VALUES_BYTES} bytes")
    try:
        data = yaml.safe_load(target.read_text())
    except yaml.YAMLError as exc:
        raise InvalidInputError(f"{target}: not valid YAML: {str(exc).splitlines()[0]}") from exc
    if not isinstance(data, dict):
        raise InvalidInputError(f"{target}: expected a mapping of chart values")
    return data


def fleet_options(site: Site, values_name: str) -> Obj:
    """Fleet's ``fleet.yaml`` for a site directory: the edge chart, this values file, this cluster."""
    return {
        "defaultNamespace": site.namespace,
        "helm": {"releaseName": site.name, "chart": CHART_OCI, "version": __version__,
                 "valuesFiles": [values_name]},
        "targetCustomizations": [{"name": site.name,
                                  "clusterSelector": {"matchLabels": {SITE_LABEL: site.name}}}],
    }


def _identity(top: Path) -> list[str]:
    have = git(top, "config", "user.email", check=False).stdout.strip()
    if have:
        return []
    name, email = FALLBACK_IDENTITY
    return ["-c", f"user.name={name}", "-c", f"user.email={email}"]


def push(site: Site, version: str, manifest: contract.VersionManifest, *, registry: Any, push: bool = False,
         trust: Obj | None = None, image: str | None = None, log: Log | None = None) -> PushResult:
    """Write the site's values for ``version`` and commit them (and push with ``push=True``)."""
    say = log or (lambda _: None)
    if manifest.version != version:
        raise InvalidInputError(f"manifest is for {manifest.version}, not {version}")
    top, target = working_copy(site)
    digest = helm.manifest_digest(registry.manifest_bytes(version))
    values = helm.site_values(site, version, model=manifest.model, manifest_digest=digest, trust=trust,
                              image=image, manifest=manifest)
    before = read_values(site)
    previous = str(before.get("modelVersion")) if before and before.get("modelVersion") else None
    remote = None
    if push:
        remotes = git(top, "remote").stdout.split()
        if not remotes:
            raise InvalidInputError(f"site {site.name}: --push given but the working copy {top} has "
                                    "no remote")
        remote = "origin" if "origin" in remotes else remotes[0]
    files = [target]
    target.parent.mkdir(parents=True, exist_ok=True)
    text = HEADER + yaml.safe_dump(values, sort_keys=False)
    changed = not target.is_file() or target.read_text() != text
    if changed:
        target.write_text(text)
    fleet = target.parent / "fleet.yaml"
    if not fleet.exists():
        fleet.write_text(yaml.safe_dump(fleet_options(site, target.name), sort_keys=False))
        changed = True
    files.append(fleet)
    rel = [str(f.resolve().relative_to(top.resolve())) for f in files]
    git(top, "add", "--", *rel)
    staged = git(top, "diff", "--cached", "--quiet", "--", *rel, check=False).returncode != 0
    if staged:
        message = (f"edge: {site.name} runs {manifest.model} {version}\n\nmanifest {digest}\n"
                   f"previous: {previous or 'none'}\n")
        git(top, *_identity(top), "commit", "--quiet", "-m", message, "--", *rel)
    commit = git(top, "rev-parse", "HEAD").stdout.strip()
    outcome = "committed" if staged else "unchanged"
    where = f"{site.name}: {version} in {top}/{rel[0]} at {commit[:12]}"
    if remote is not None:
        branch = git(top, "rev-parse", "--abbrev-ref", "HEAD").stdout.strip()
        done = git(top, "push", "--porcelain", remote, f"HEAD:refs/heads/{branch}", check=False)
        if done.returncode != 0:
            detail = " ".join((done.stderr or done.stdout).split())
            error = ConflictError if "rejected" in detail or "fetch first" in detail else GitError
            raise error(f"{where}: committed but git push to {remote} failed (the commit stays local): "
                        f"{bounded(detail, 300)}")
        outcome = "pushed"
        where += f", pushed to {remote}/{branch}"
    say(where)
    verb = {"committed": "committed", "pushed": "committed", "unchanged": "already committed"}[outcome]
    return PushResult(site.name, "gitops", version, outcome, f"{where} ({verb}; the site pulls it)",
                      previous, commit)
