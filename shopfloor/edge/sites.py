"""The site inventory (``sites.yaml``): every edge site, its device profile and how it is reached.

One entry per site; the push mode decides which keys it needs::

    sites:
      - name: plant-a-press-7          # DNS-1123 label (it names the chart release and values file)
        profile: rpi4-arm64-4g         # a built-in profile name or a profile file
        mode: direct                   # local | direct | gitops | bundle
        context: plant-a               # direct: kubeconfig context (default: the current one)
        namespace: shopfloor-edge      # direct: namespace of the edge workload
        registry: s3://models/registry # direct/gitops: the plant's S3/MinIO mirror the site pulls from
        pilot: true                    # first site of a staged rollout
      - name: plant-b-line-2
        profile: gateway-arm64-1g
        mode: gitops
        gitops: {repo: /srv/gitops/plants, path: sites/plant-b-line-2/values.yaml}
        registry: s3://plant-b-mirror/registry
      - name: laptop-1
        mode: local
        url: http://127.0.0.1:8091
        admin_token_file: ~/.shopfloor/edge/fleet/laptop-1/admin.token
        store: ~/.shopfloor/edge/fleet/laptop-1/store
      - name: plant-c-isolated
        profile: fanless-amd64-8g
        mode: bundle                   # air-gapped: shopfloor edge bundle export/import only

Loading refuses unknown keys, duplicate names and a mode's missing keys, naming the site.
Saving is atomic (temp file + fsync + rename), so a crash never leaves half an inventory.
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import yaml

from shopfloor import names, settings
from shopfloor.edge.profiles import DEFAULT_PROFILE, DeviceProfile, load_profile
from shopfloor.errors import InvalidInputError, NotFoundError, excerpt

MODES: tuple[str, ...] = ("local", "direct", "gitops", "bundle")
MAX_INVENTORY_BYTES = 1024 * 1024
MAX_SITES = 1000
_KEYS = ("name", "profile", "mode", "url", "admin_token_file", "store", "context", "namespace", "gitops",
         "registry", "pilot")
_GITOPS_KEYS = ("repo", "path")


@dataclass(frozen=True)
class GitOpsTarget:
    """Where a gitops site's values live: a working copy and a path inside it."""

    repo: str
    path: str


@dataclass(frozen=True)
class Site:
    name: str
    mode: str
    profile: str = DEFAULT_PROFILE
    url: str | None = None
    admin_token_file: str | None = None
    store: str | None = None
    context: str | None = None
    namespace: str = settings.DEFAULT_NAMESPACE
    gitops: GitOpsTarget | None = None
    registry: str | None = None
    pilot: bool = False
    #: The inventory file's folder: relative paths (token file, gitops repo) are resolved from it.
    base: Path | None = field(default=None, compare=False, repr=False)

    def device_profile(self) -> DeviceProfile:
        ref = self.profile
        if ref.endswith((".yaml", ".yml")) and self.base and not Path(ref).expanduser().is_absolute():
            ref = str(self.base / ref)
        return load_profile(ref)

    def resolve(self, path: str) -> Path:
        """A path from the inventory, relative to the inventory's folder."""
        p = Path(path).expanduser()
        return p if p.is_absolute() or self.base is None else self.base / p

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"name": self.name, "profile": self.profile, "mode": self.mode}
        for key in ("url", "admin_token_file", "store", "context", "registry"):
            if getattr(self, key) is not None:
                out[key] = getattr(self, key)
        if self.mode == "direct":
            out["namespace"] = self.namespace
        if self.gitops is not None:
            out["gitops"] = {"repo": self.gitops.repo, "path": self.gitops.path}
        if self.pilot:
            out["pilot"] = True
        return out


def _registry_problem(uri: object) -> str | None:
    if not isinstance(uri, str) or not uri.startswith(names.S3_SCHEME):
        return f"registry {excerpt(uri)} must be the s3://bucket[/prefix] mirror the site pulls from"
    bucket, slash, _key = uri[len(names.S3_SCHEME):].partition("/")
    try:
        if slash:
            names.check_s3_uri(uri, "registry")
        else:
            problem = names.s3_bucket_problem(bucket)
            if problem:
                return f"registry {excerpt(uri)}: bucket {problem}"
    except InvalidInputError as exc:
        return str(exc)
    return None


def _str(data: dict[str, Any], key: str, where: str, problems: list[str]) -> str | None:
    value = data.get(key)
    if value is None:
        return None
    if not isinstance(value, str) or not value or len(value) > 4096 or "\n" in value or "\x00" in value:
        problems.append(f"{where}: {key} {excerpt(value)} must be a one-line string")
        return None
    return value


def site_from_dict(data: Any, index: int, base: Path | None = None) -> Site:
    """One inventory entry, checked; the error names the site (or its position) and every problem."""
    if not isinstance(data, dict):
        raise InvalidInputError(f"sites[{index}] must be a mapping with keys {list(_KEYS)}")
    where = f"site {excerpt(data.get('name'))}" if isinstance(data.get("name"), str) else f"sites[{index}]"
    problems: list[str] = []
    unknown = sorted(str(k) for k in set(data) - set(_KEYS))
    if unknown:
        problems.append(f"{where}: unknown keys {unknown}; known: {list(_KEYS)}")
    name = data.get("name")
    problem = names.DNS1123_LABEL.problem(name, "name")
    if problem:
        problems.append(f"{where}: {problem}")
    mode = data.get("mode")
    if mode not in MODES:
        problems.append(f"{where}: mode {excerpt(mode)} must be one of {list(MODES)}")
    text = {k: _str(data, k, where, problems)
            for k in ("profile", "url", "admin_token_file", "store", "context", "namespace", "registry")}
    namespace = text["namespace"] or settings.DEFAULT_NAMESPACE
    problem = names.DNS1123_LABEL.problem(namespace, "namespace")
    if problem:
        problems.append(f"{where}: {problem}")
    pilot = data.get("pilot", False)
    if not isinstance(pilot, bool):
        problems.append(f"{where}: pilot {excerpt(pilot)} must be true or false")
    gitops = None
    raw_gitops = data.get("gitops")
    if raw_gitops is not None:
        if not isinstance(raw_gitops, dict) or set(raw_gitops) != set(_GITOPS_KEYS) or not all(
                isinstance(raw_gitops[k], str) and raw_gitops[k] for k in _GITOPS_KEYS):
            problems.append(f"{where}: gitops must be {{repo: <working copy>, path: <values file in it>}}")
        else:
            rel = Path(raw_gitops["path"])
            if rel.is_absolute() or ".." in rel.parts:
                problems.append(f"{where}: gitops path {excerpt(raw_gitops['path'])} must be relative to the "
                                "repo and stay inside it")
            gitops = GitOpsTarget(raw_gitops["repo"], raw_gitops["path"])
    needs = {"local": ("url",), "direct": ("registry",), "gitops": ("registry", "gitops"), "bundle": ()}
    for key in needs.get(mode, ()) if isinstance(mode, str) else ():
        if data.get(key) is None:
            problems.append(f"{where}: mode {mode} needs {key}")
    if text["url"] is not None:
        url = urlsplit(text["url"])
        if url.scheme not in ("http", "https") or not url.hostname:
            problems.append(f"{where}: url {excerpt(text['url'])} must be http(s)://host:port")
    if text["registry"] is not None:
        problem = _registry_problem(text["registry"])
        if problem:
            problems.append(f"{where}: {problem}")
    profile = text["profile"] or DEFAULT_PROFILE
    if not problems:
        site = Site(name=str(name), mode=str(mode), profile=profile, url=text["url"],
                    admin_token_file=text["admin_token_file"], store=text["store"], context=text["context"],
                    namespace=namespace, gitops=gitops, registry=text["registry"], pilot=pilot, base=base)
        try:
            site.device_profile()
        except (InvalidInputError, NotFoundError) as exc:
            problems.append(f"{where}: {exc}")
        else:
            return site
    raise InvalidInputError("; ".join(problems))


@dataclass(frozen=True)
class Inventory:
    sites: tuple[Site, ...]
    path: Path | None = None

    def get(self, name: str) -> Site:
        for site in self.sites:
            if site.name == name:
                return site
        raise NotFoundError(f"no site {excerpt(name)} in {self.path or 'the inventory'}; "
                            f"known: {[s.name for s in self.sites]}")

    def with_site(self, site: Site) -> Inventory:
        """A copy with ``site`` added, or replacing the site of the same name."""
        others = tuple(s for s in self.sites if s.name != site.name)
        if len(others) == len(self.sites):
            return replace(self, sites=(*self.sites, site))
        return replace(self, sites=tuple(site if s.name == site.name else s for s in self.sites))

    def to_dict(self) -> dict[str, Any]:
        return {"sites": [s.to_dict() for s in self.sites]}


def parse_inventory(text: str, path: Path | None = None) -> Inventory:
    where = str(path) if path else "inventory"
    if len(text.encode()) > MAX_INVENTORY_BYTES:
        raise InvalidInputError(f"{where}: larger than {MAX_INVENTORY_BYTES} bytes")
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise InvalidInputError(f"{where}: not valid YAML: {str(exc).splitlines()[0]}") from exc
    if data is None:
        data = {"sites": []}
    if not isinstance(data, dict) or set(data) != {"sites"} or not isinstance(data["sites"], list):
        raise InvalidInputError(f"{where}: expected a mapping with one key 'sites' holding a list of sites")
    if len(data["sites"]) > MAX_SITES:
        raise InvalidInputError(f"{where}: more than {MAX_SITES} sites")
    base = path.parent if path else None
    try:
        sites = tuple(site_from_dict(entry, i, base) for i, entry in enumerate(data["sites"]))
    except InvalidInputError as exc:
        raise InvalidInputError(f"{where}: {exc}") from exc
    seen: set[str] = set()
    for site in sites:
        if site.name in seen:
            raise InvalidInputError(f"{where}: site {site.name!r} appears more than once")
        seen.add(site.name)
    return Inventory(sites, path)


def load_inventory(path: str | Path | None = None) -> Inventory:
    """The inventory at ``path`` (default: :func:`shopfloor.settings.edge_inventory_path`)."""
    p = Path(path).expanduser() if path is not None else settings.edge_inventory_path()
    if not p.is_file():
        raise NotFoundError(f"no site inventory at {p} (write one, see shopfloor.edge.sites, or set "
                            f"{settings.EDGE_SITES.name})")
    if p.stat().st_size > MAX_INVENTORY_BYTES:
        raise InvalidInputError(f"{p}: larger than {MAX_INVENTORY_BYTES} bytes")
    return parse_inventory(p.read_text(), p)


def save_inventory(inventory: Inventory, path: str | Path | None = None) -> Path:
    """Write atomically: the old file stays whole until the new one is complete on disk."""
    p = Path(path).expanduser() if path is not None else (inventory.path or settings.edge_inventory_path())
    text = yaml.safe_dump(inventory.to_dict(), sort_keys=False)
    parse_inventory(text, p)  # never write what load would refuse
    p.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".sites-", suffix=".yaml", dir=p.parent)
    try:
        with os.fdopen(fd, "w") as out:
            out.write(text)
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, p)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return p


@dataclass(frozen=True)
class PushResult:
    """What a push to one site did (direct, gitops): E4's dispatcher and rollout read it."""

    site: str
    mode: str
    version: str
    #: deployed / unchanged / rolled_back / failed (direct); committed / pushed / unchanged (gitops)
    outcome: str
    message: str
    previous_version: str | None = None
    #: gitops: the commit written (or already there when unchanged).
    commit: str | None = None

    @property
    def ok(self) -> bool:
        return self.outcome in ("deployed", "unchanged", "committed", "pushed")

    def to_dict(self) -> dict[str, Any]:
        return {"site": self.site, "mode": self.mode, "version": self.version, "outcome": self.outcome,
                "ok": self.ok, "message": self.message, "previous_version": self.previous_version,
                "commit": self.commit}
