"""End to end on a real K3s cluster (k3d): the edge chart, direct push, rollout wait and rollback.

Runs only with ``pytest -m e2e`` (.github/workflows/e2e-edge.yml creates the k3d cluster, builds
docker/edge.Dockerfile and imports the image). It cannot run on the development machine of this
change (no Docker there): it skips, saying why, when Docker, k3d or the cluster are missing.

Nothing is faked: MinIO in the cluster is the plant's registry mirror, the runtime pod pulls the
signed version, verifies it and self-tests it before it answers ready, and K3s's own
``local-path`` provisioner and NetworkPolicy controller (kube-router) are in the loop.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from shopfloor import settings

pytestmark = pytest.mark.e2e

REPO = Path(__file__).resolve().parents[2]
TOOLS = REPO / ".tools" / "bin"
CLUSTER = os.environ.get("SHOPFLOOR_K3D_CLUSTER", "shopfloor-edge")
CONTEXT = f"k3d-{CLUSTER}"
NAMESPACE = "shopfloor-edge"
IMAGE = os.environ.get("SHOPFLOOR_EDGE_IMAGE", "shopfloor-edge:e2e")
S3_HOST = "127.0.0.1:30900"  # k3d maps MinIO's NodePort here (see the workflow)
S3_CLUSTER_ENDPOINT = "http://minio.minio.svc.cluster.local:9000"
REGISTRY = "s3://shopfloor/edge-registry"


def sh(*cmd: str, timeout: float = 600, check: bool = True
       ) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PATH": f"{TOOLS}:{os.environ.get('PATH', '')}"}
    return subprocess.run(cmd, cwd=REPO, env=env, text=True, capture_output=True, timeout=timeout,
                          check=check)


def kubectl(*args: str, **kw: Any) -> subprocess.CompletedProcess[str]:
    return sh("kubectl", "--context", CONTEXT, *args, **kw)


def _skip_reason() -> str | None:
    if shutil.which("docker") is None:
        return "docker is not installed (the e2e-edge workflow runs this on GitHub Actions)"
    if subprocess.run(["docker", "info"], capture_output=True, timeout=60, check=False).returncode != 0:
        return "no Docker daemon"
    if shutil.which("k3d") is None:
        return "k3d is not installed"
    if sh("kubectl", "config", "get-contexts", CONTEXT, check=False).returncode != 0:
        return f"no kubeconfig context {CONTEXT} (k3d cluster create {CLUSTER}, see e2e-edge.yml)"
    return None


@pytest.fixture(scope="module")
def platform() -> Iterator[dict[str, Any]]:
    reason = _skip_reason()
    if reason:
        pytest.skip(reason)
    kubectl("apply", "-f", str(REPO / "manifests" / "e2e" / "minio.yaml"))
    if kubectl("-n", "minio", "get", "secret", "minio-root", check=False).returncode != 0:
        kubectl("-n", "minio", "create", "secret", "generic", "minio-root",
                f"--from-literal=MINIO_ROOT_USER=e2e-{os.urandom(4).hex()}",
                f"--from-literal=MINIO_ROOT_PASSWORD={os.urandom(16).hex()}")
    kubectl("-n", "minio", "rollout", "status", "deploy/minio", "--timeout=300s")
    secret = json.loads(kubectl("-n", "minio", "get", "secret", "minio-root", "-o", "json").stdout)["data"]
    user = base64.b64decode(secret["MINIO_ROOT_USER"]).decode()
    password = base64.b64decode(secret["MINIO_ROOT_PASSWORD"]).decode()
    kubectl("create", "namespace", NAMESPACE, check=False)
    kubectl("-n", NAMESPACE, "delete", "secret", settings.S3_SECRET_NAME, "--ignore-not-found")
    kubectl("-n", NAMESPACE, "create", "secret", "generic", settings.S3_SECRET_NAME,
            f"--from-literal={settings.AWS_ACCESS_KEY_ID.name}={user}",
            f"--from-literal={settings.AWS_SECRET_ACCESS_KEY.name}={password}",
            f"--from-literal={settings.S3_ENDPOINT.name}={S3_CLUSTER_ENDPOINT}")
    os.environ.update({settings.AWS_ACCESS_KEY_ID.name: user, settings.AWS_SECRET_ACCESS_KEY.name: password,
                       settings.S3_ENDPOINT.name: f"http://{S3_HOST}"})
    from minio import Minio

    client = Minio(S3_HOST, access_key=user, secret_key=password, secure=False)
    if not client.bucket_exists("shopfloor"):
        client.make_bucket("shopfloor")
    yield {"user": user}


@pytest.fixture(scope="module")
def signed_versions(platform: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """Two published versions in the mirror: the first signed, the second left unsigned."""
    from shopfloor.edge.signing import TrustStore, generate_keypair, load_public_key, sign_manifest
    from shopfloor.registry import open_registry
    from tests.fixtures.versions import make_version_dir

    registry = open_registry(REGISTRY)
    with tempfile.TemporaryDirectory() as tmp:
        pair = generate_keypair(Path(tmp) / "keys", "e2e")
        published = [registry.publish(make_version_dir(Path(tmp), seed=i), run_id=f"edge-e2e-{i}").version
                     for i in range(2)]
        registry.add_signature(published[0], sign_manifest(registry.manifest_bytes(published[0]),
                                                           pair.private_path))
        trust = TrustStore().with_key(load_public_key(pair.public_path), "e2e").to_dict()
        yield {"registry": registry, "versions": published, "trust": trust}


def test_direct_push_rolls_out_verifies_on_site_and_rolls_back(signed_versions: dict[str, Any]) -> None:
    from shopfloor.deploy.cluster import KubernetesCluster
    from shopfloor.edge import direct
    from shopfloor.edge.sites import Site

    registry = signed_versions["registry"]
    good, unsigned = signed_versions["versions"]
    arch = "arm64" if os.uname().machine in ("aarch64", "arm64") else "amd64"
    profile = "rpi4-arm64-4g" if arch == "arm64" else "fanless-amd64-8g"
    site = Site("e2e-site", "direct", profile, context=CONTEXT, namespace=NAMESPACE, registry=REGISTRY)
    cluster = KubernetesCluster.connect(context=CONTEXT)

    first = direct.push(site, good, registry.show(good), registry=registry, cluster=cluster,
                        trust=signed_versions["trust"], image=IMAGE, timeout=600)
    assert first.outcome == "deployed", first.message
    state = direct.status(site, cluster)
    assert state == {"should_run": good, "reports": good, "ready": True, "detail": "1/1 ready"}
    pvc = json.loads(kubectl("-n", NAMESPACE, "get", "pvc", "shopfloor-edge-store", "-o", "json").stdout)
    assert pvc["status"]["phase"] == "Bound" and pvc["spec"]["storageClassName"] == "local-path"
    logs = kubectl("-n", NAMESPACE, "logs", "deploy/shopfloor-edge")
    assert good in logs.stdout + logs.stderr

    again = direct.push(site, good, registry.show(good), registry=registry, cluster=cluster,
                        trust=signed_versions["trust"], image=IMAGE, timeout=300)
    assert again.outcome == "unchanged", again.message

    # An unsigned version: the runtime refuses it at pull, the pod never gets ready, the push rolls back.
    bad = direct.push(site, unsigned, registry.show(unsigned), registry=registry, cluster=cluster,
                      trust=signed_versions["trust"], image=IMAGE, timeout=120)
    assert bad.outcome == "rolled_back", bad.message
    assert "previous" in bad.message and "ready again" in bad.message
    state = direct.status(site, cluster)
    assert state["should_run"] == good and state["reports"] == good and state["ready"] is True
