"""GitOps push with real git repositories (a bare repository in tmp as the remote), and the Fleet
GitRepo / Argo CD ApplicationSet in manifests/gitops/ checked against their vendored CRD schemas."""

from __future__ import annotations

import fnmatch
import os
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import replace
from functools import lru_cache
from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

from shopfloor import settings
from shopfloor.cli import app
from shopfloor.deploy import validate
from shopfloor.edge import gitops, helm
from shopfloor.edge.sites import GitOpsTarget, Site
from shopfloor.errors import ConflictError, InvalidInputError
from shopfloor.registry import Registry, open_registry

REPO = Path(__file__).resolve().parents[2]
FIXTURE = REPO / "tests" / "fixtures" / "registry-schema1"
SCHEMAS = REPO / "tests" / "schemas"
MANIFESTS = REPO / "manifests" / "gitops"
TRUST = {"keys": [{"id": "0123456789abcdef", "public_key": "A" * 43 + "=", "comment": "test"}], "revoked": []}
VALUES_PATH = "sites/plant-b-line-2/values.yaml"
ME = ["-c", "user.name=tester", "-c", "user.email=tester@localhost"]


def run_git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", "-C", str(repo), *args], capture_output=True, text=True, check=True,
                          timeout=60).stdout.strip()


@pytest.fixture()
def isolated_git(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """No global git identity: the module's fallback identity must do."""
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv("GIT_CONFIG_NOSYSTEM", "1")
    for var in ("GIT_AUTHOR_NAME", "GIT_AUTHOR_EMAIL", "GIT_COMMITTER_NAME", "GIT_COMMITTER_EMAIL"):
        monkeypatch.delenv(var, raising=False)


@pytest.fixture()
def remote_and_clone(tmp_path: Path, isolated_git: None) -> Iterator[tuple[Path, Path]]:
    bare = tmp_path / "gitops.git"
    subprocess.run(["git", "init", "--quiet", "--bare", "--initial-branch=main", str(bare)], check=True)
    seed = tmp_path / "seed"
    subprocess.run(["git", "clone", "--quiet", str(bare), str(seed)], check=True, capture_output=True)
    (seed / "README.md").write_text("plants\n")
    run_git(seed, "add", "README.md")
    run_git(seed, *ME, "commit", "--quiet", "-m", "init")
    run_git(seed, "push", "--quiet", "origin", "HEAD:refs/heads/main")
    clone = tmp_path / "work"
    subprocess.run(["git", "clone", "--quiet", str(bare), str(clone)], check=True, capture_output=True)
    yield bare, clone


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Registry:
    root = tmp_path_factory.mktemp("registry")
    shutil.copytree(FIXTURE, root, dirs_exist_ok=True)
    return open_registry(str(root))


def _site(repo: Path) -> Site:
    return Site("plant-b-line-2", "gitops", "gateway-arm64-1g", registry="s3://plant-b-mirror/registry",
                gitops=GitOpsTarget(str(repo), VALUES_PATH))


class _Versions:
    """The fixture registry has one version; v0002 reuses its manifest with another id."""

    def __init__(self, registry: Registry) -> None:
        self.registry = registry

    def manifest(self, version: str) -> Any:
        return replace(self.registry.show("v0001"), version=version)

    def manifest_bytes(self, version: str) -> bytes:
        return self.registry.manifest_bytes("v0001") + (b"" if version == "v0001" else version.encode())


def test_push_commits_the_site_values_and_pushes_on_request(remote_and_clone: tuple[Path, Path],
                                                             registry: Registry) -> None:
    bare, clone = remote_and_clone
    site, reg = _site(clone), _Versions(registry)
    remote_head = run_git(bare, "rev-parse", "main")

    first = gitops.push(site, "v0001", reg.manifest("v0001"), registry=reg, trust=TRUST)
    assert first.ok and first.outcome == "committed" and first.previous_version is None
    assert run_git(clone, "rev-parse", "HEAD") == first.commit
    assert run_git(bare, "rev-parse", "main") == remote_head  # not pushed without push=True
    values = yaml.safe_load((clone / VALUES_PATH).read_text())
    assert values == helm.site_values(site, "v0001", model=registry.model,
                                      manifest_digest=helm.manifest_digest(registry.manifest_bytes("v0001")),
                                      trust=TRUST)
    assert values["manifestDigest"].startswith("sha256:") and values["arch"] == "arm64"
    assert gitops.read_values(site) == values
    message = run_git(clone, "log", "-1", "--format=%B")
    assert message.startswith(f"edge: plant-b-line-2 runs {registry.model} v0001")
    assert run_git(clone, "log", "-1", "--format=%an <%ae>") == "shopfloor <shopfloor@localhost>"
    fleet = yaml.safe_load((clone / "sites/plant-b-line-2/fleet.yaml").read_text())
    assert fleet["helm"]["valuesFiles"] == ["values.yaml"]
    assert fleet["targetCustomizations"][0]["clusterSelector"]["matchLabels"] == {
        gitops.SITE_LABEL: "plant-b-line-2"}

    same = gitops.push(site, "v0001", reg.manifest("v0001"), registry=reg, trust=TRUST)
    assert same.outcome == "unchanged" and same.commit == first.commit

    second = gitops.push(site, "v0002", reg.manifest("v0002"), registry=reg, trust=TRUST, push=True)
    assert second.outcome == "pushed" and second.previous_version == "v0001"
    assert run_git(bare, "rev-parse", "main") == second.commit
    assert run_git(bare, "show", f"main:{VALUES_PATH}").count("modelVersion: v0002") == 1
    assert "pushed to origin/main" in second.message


def test_other_changes_in_the_working_copy_are_not_committed(remote_and_clone: tuple[Path, Path],
                                                             registry: Registry) -> None:
    _bare, clone = remote_and_clone
    (clone / "notes.txt").write_text("someone's work in progress\n")
    run_git(clone, "add", "notes.txt")
    (clone / "README.md").write_text("edited, unstaged\n")
    reg = _Versions(registry)
    result = gitops.push(_site(clone), "v0001", reg.manifest("v0001"), registry=reg, trust=TRUST)
    changed = run_git(clone, "show", "--name-only", "--format=", result.commit).splitlines()
    assert sorted(changed) == ["sites/plant-b-line-2/fleet.yaml", VALUES_PATH]
    assert run_git(clone, "diff", "--cached", "--name-only") == "notes.txt"  # still staged, not committed
    assert run_git(clone, "diff", "--name-only") == "README.md"


def test_a_rejected_push_is_a_conflict_and_the_commit_stays_local(remote_and_clone: tuple[Path, Path],
                                                                  registry: Registry, tmp_path: Path) -> None:
    bare, clone = remote_and_clone
    other = tmp_path / "other"
    subprocess.run(["git", "clone", "--quiet", str(bare), str(other)], check=True, capture_output=True)
    (other / "x.txt").write_text("x\n")
    run_git(other, "add", "x.txt")
    run_git(other, *ME, "commit", "--quiet", "-m", "someone else")
    run_git(other, "push", "--quiet", "origin", "HEAD:refs/heads/main")
    reg = _Versions(registry)
    with pytest.raises(ConflictError, match=r"committed but git push to origin failed .*commit stays local"):
        gitops.push(_site(clone), "v0001", reg.manifest("v0001"), registry=reg, trust=TRUST, push=True)
    assert "modelVersion: v0001" in run_git(clone, "show", f"HEAD:{VALUES_PATH}")
    assert run_git(bare, "rev-parse", "main") == run_git(other, "rev-parse", "HEAD")


def test_refusals(tmp_path: Path, isolated_git: None, registry: Registry) -> None:
    reg = _Versions(registry)
    lonely = tmp_path / "lonely"
    subprocess.run(["git", "init", "--quiet", str(lonely)], check=True)
    with pytest.raises(InvalidInputError, match=r"--push given but the working copy .* has no remote"):
        gitops.push(_site(lonely), "v0001", reg.manifest("v0001"), registry=reg, trust=TRUST, push=True)
    assert not (lonely / VALUES_PATH).exists()  # refused before anything was written
    plain = tmp_path / "plain"
    plain.mkdir()
    with pytest.raises(InvalidInputError, match="is not a git working copy"):
        gitops.push(_site(plain), "v0001", reg.manifest("v0001"), registry=reg, trust=TRUST)
    with pytest.raises(InvalidInputError, match="not gitops"):
        gitops.push(Site("a", "bundle"), "v0001", reg.manifest("v0001"), registry=reg, trust=TRUST)
    escaping = replace(_site(lonely), gitops=GitOpsTarget(str(lonely), "sites/../../outside.yaml"))
    with pytest.raises(InvalidInputError, match="leaves the working copy"):
        gitops.push(escaping, "v0001", reg.manifest("v0001"), registry=reg, trust=TRUST)


def test_status_reads_the_values_file(remote_and_clone: tuple[Path, Path], registry: Registry,
                                      tmp_path: Path) -> None:
    _bare, clone = remote_and_clone
    inventory = tmp_path / "sites.yaml"
    inventory.write_text(yaml.safe_dump({"sites": [_site(clone).to_dict()]}))
    rows = CliRunner().invoke(app, ["edge", "status", "--inventory", str(inventory), "--json"])
    assert rows.exit_code == 0, rows.output
    assert yaml.safe_load(rows.stdout)[0]["should_run"] is None
    reg = _Versions(registry)
    gitops.push(_site(clone), "v0001", reg.manifest("v0001"), registry=reg, trust=TRUST)
    rows = CliRunner().invoke(app, ["edge", "status", "--inventory", str(inventory), "--json"])
    (row,) = yaml.safe_load(rows.stdout)
    assert row["should_run"] == "v0001" and row["reports"] is None and row["mode"] == "gitops"
    assert "values file pins manifest sha256:" in row["detail"]


# -- manifests/gitops against the vendored CRDs ---------------------------------------------------

@lru_cache(maxsize=2)
def _crd_validator(name: str) -> Any:
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    (crd,) = [d for d in yaml.load_all((SCHEMAS / name).read_text(), Loader=loader) if d]
    (version,) = crd["spec"]["versions"]
    return validate._CRDValidator(validate._strict(version["schema"]["openAPIV3Schema"])), crd


CASES = {"fleet-gitrepo.yaml": "fleet.cattle.io_gitrepos.yaml",
         "argocd-applicationset.yaml": "applicationset-crd.yaml"}


@pytest.mark.parametrize("manifest", sorted(CASES))
def test_gitops_manifests_pass_their_crd_schema(manifest: str) -> None:
    validator, crd = _crd_validator(CASES[manifest])
    obj = yaml.safe_load((MANIFESTS / manifest).read_text())
    assert obj["kind"] == crd["spec"]["names"]["kind"]
    assert obj["apiVersion"] == f"{crd['spec']['group']}/{crd['spec']['versions'][0]['name']}"
    assert [e.message for e in validator.iter_errors(obj)] == []
    broken = {**obj, "spec": {**obj["spec"], "repoUrl": "typo"}}  # the validator is live: unknown fields fail
    assert any("repoUrl" in e.message for e in validator.iter_errors(broken))


def test_gitops_manifests_target_the_layout_push_writes() -> None:
    fleet = yaml.safe_load((MANIFESTS / "fleet-gitrepo.yaml").read_text())
    appset = yaml.safe_load((MANIFESTS / "argocd-applicationset.yaml").read_text())
    assert any(VALUES_PATH.startswith(f"{p}/") for p in fleet["spec"]["paths"])
    (generator,) = appset["spec"]["generators"]
    assert any(fnmatch.fnmatch(VALUES_PATH, f["path"]) for f in generator["git"]["files"])
    (chart, values_ref) = appset["spec"]["template"]["spec"]["sources"]
    assert f"oci://{chart['repoURL']}/{chart['chart']}" == gitops.CHART_OCI
    chart_yaml = yaml.safe_load((helm.DEFAULT_CHART / "Chart.yaml").read_text())
    assert chart["targetRevision"] == chart_yaml["version"]
    assert values_ref["ref"] == "values" and chart["helm"]["valueFiles"][0].startswith("$values/")
    # the generator's parameters are the values file's keys: .site must be one of them
    assert "{{ .site }}" in appset["spec"]["template"]["metadata"]["name"]
    assert os.path.basename(VALUES_PATH) == "values.yaml"
    assert appset["spec"]["template"]["spec"]["destination"]["namespace"] == settings.DEFAULT_NAMESPACE
