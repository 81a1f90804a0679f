"""End to end on a real kind cluster: KServe (Standard mode) + MinIO + the predictor image.

Runs only with ``pytest -m e2e`` and skips, saying why, when Docker, kind or the network are
missing. Nothing here is faked: readiness comes from the KServe controller, the registry lives in
the cluster's MinIO, and the predictor pod really loads the model.
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

import pytest

from shopfloor import settings
from shopfloor.errors import ExternalServiceError

pytestmark = pytest.mark.e2e

REPO = Path(__file__).resolve().parents[2]
TOOLS = REPO / ".tools" / "bin"
NAMESPACE = settings.DEFAULT_NAMESPACE
SECRET = settings.S3_SECRET_NAME
ISVC = settings.DEFAULT_MODEL_NAME  # the InferenceService is named after the model
IMAGE = settings.PREDICTOR_IMAGE.get() or "shopfloor-predictor:e2e"
S3_HOST_ENDPOINT = "http://127.0.0.1:30900"  # kind-config.yaml maps MinIO's NodePort here
S3_CLUSTER_ENDPOINT = "http://minio.minio.svc.cluster.local:9000"


def sh(*cmd: str, timeout: float = 900, check: bool = True, **kw: object) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PATH": f"{TOOLS}:{os.environ.get('PATH', '')}"}
    return subprocess.run(cmd, cwd=REPO, env=env, text=True, capture_output=True, timeout=timeout,
                          check=check, **kw)  # type: ignore[call-overload]


def _skip_reason() -> str | None:
    if shutil.which("docker") is None:
        return "docker is not installed"
    info = subprocess.run(["docker", "info"], capture_output=True, text=True, timeout=60, check=False)
    if info.returncode != 0:
        last = (info.stderr.strip().splitlines() or ["docker info failed"])[-1]
        return f"`docker info` failed, no Docker daemon for kind: {last}"
    if shutil.which("kind") is None:
        return "kind is not installed (CI installs it with helm/kind-action)"
    return None


@pytest.fixture(scope="module")
def platform() -> Iterator[dict[str, str]]:
    reason = _skip_reason()
    if reason:
        pytest.skip(reason)
    sh("bash", "scripts/install-tools.sh")
    sh("bash", "tests/e2e/setup_cluster.sh", timeout=1800)
    if not settings.PREDICTOR_IMAGE.is_set():
        sh("docker", "build", "-t", IMAGE, ".", timeout=1800)
    sh("kind", "load", "docker-image", IMAGE, "--name", os.environ.get("SHOPFLOOR_KIND_CLUSTER", "shopfloor"))
    raw = sh("kubectl", "-n", "minio", "get", "secret", "minio-root", "-o", "json").stdout
    secret = json.loads(raw)["data"]
    user = base64.b64decode(secret["MINIO_ROOT_USER"]).decode()
    password = base64.b64decode(secret["MINIO_ROOT_PASSWORD"]).decode()
    # The predictor's credentials: created from the MinIO secret, never written to a file.
    key_id, secret_key, endpoint = (settings.AWS_ACCESS_KEY_ID.name, settings.AWS_SECRET_ACCESS_KEY.name,
                                    settings.S3_ENDPOINT.name)
    sh("kubectl", "-n", NAMESPACE, "delete", "secret", SECRET, "--ignore-not-found")
    sh("kubectl", "-n", NAMESPACE, "create", "secret", "generic", SECRET,
       f"--from-literal={key_id}={user}", f"--from-literal={secret_key}={password}",
       f"--from-literal={endpoint}={S3_CLUSTER_ENDPOINT}")
    os.environ.update({key_id: user, secret_key: password, endpoint: S3_HOST_ENDPOINT})
    yield {"registry": "s3://shopfloor/registry"}


@pytest.fixture(scope="module")
def versions(platform: dict[str, str]) -> list[str]:
    """Train once with the real local pipeline, publish it twice (v_a, v_b) into MinIO."""
    from minio import Minio

    from shopfloor.registry import assemble_version, open_registry

    client = Minio("127.0.0.1:30900", access_key=settings.AWS_ACCESS_KEY_ID.get(),
                   secret_key=settings.AWS_SECRET_ACCESS_KEY.get(), secure=False)
    if not client.bucket_exists("shopfloor"):
        client.make_bucket("shopfloor")
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "runs"
        sh("python", "-m", "shopfloor", "run", "--output", str(out), timeout=3600)
        run_dir = max((p for p in out.iterdir() if p.is_dir()), key=lambda p: p.stat().st_mtime)
        version_dir = assemble_version(run_dir, Path(tmp) / "version")
        registry = open_registry(platform["registry"])
        return [registry.publish(version_dir, run_id=f"e2e-{i}").version for i in range(2)]


def deploy(
    platform: dict[str, str], version: str, *extra: str, timeout: int = 600
) -> subprocess.CompletedProcess[str]:
    return sh("python", "-m", "shopfloor", "deploy", "cloud", version, "--registry", platform["registry"],
              "--namespace", NAMESPACE, "--timeout", str(timeout), *extra, timeout=timeout + 120, check=False)


def test_deploy_ready_promote_idempotent_and_rollback(platform: dict[str, str], versions: list[str]) -> None:
    from shopfloor.registry import open_registry

    registry = open_registry(platform["registry"])
    first, second = versions

    done = deploy(platform, first, "--image", IMAGE)
    assert done.returncode == 0, done.stderr + done.stdout
    assert registry.resolve("champion", settings.CLOUD_ENV) == first
    isvc = json.loads(sh("kubectl", "-n", NAMESPACE, "get", "isvc", ISVC, "-o", "json").stdout)
    ready = {c["type"]: c["status"] for c in isvc["status"]["conditions"]}
    assert ready["Ready"] == "True"
    managers = {m["manager"] for m in isvc["metadata"]["managedFields"] if m["operation"] == "Apply"}
    assert "shopfloor" in managers

    again = deploy(platform, first, "--image", IMAGE)
    assert again.returncode == 0 and "nothing to do" in again.stdout, again.stderr + again.stdout

    # A version whose image cannot be pulled never becomes Ready: the deploy must roll back.
    bad = deploy(platform, second, "--image", "shopfloor-predictor:missing-e2e", timeout=120)
    assert bad.returncode == ExternalServiceError.exit_code
    assert "rolled back" in bad.stdout and "not Ready within 120s" in bad.stdout
    assert registry.resolve("champion", settings.CLOUD_ENV) == first
    isvc = json.loads(sh("kubectl", "-n", NAMESPACE, "get", "isvc", ISVC, "-o", "json").stdout)
    assert isvc["metadata"]["labels"]["shopfloor.io/model-version"] == first
    sh("kubectl", "-n", NAMESPACE, "wait", f"isvc/{ISVC}", "--for=condition=Ready", "--timeout=300s")

    promoted = deploy(platform, second, "--image", IMAGE)
    assert promoted.returncode == 0, promoted.stderr + promoted.stdout
    assert registry.resolve("champion", settings.CLOUD_ENV) == second
