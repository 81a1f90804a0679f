"""Render the Kubernetes objects that serve one registry version on KServe.

Pure functions from a :class:`PredictorSpec` to plain dicts: no cluster, no registry, so the
same objects are printed by ``shopfloor deploy cloud --render``, applied by
:mod:`shopfloor.deploy.apply` and validated offline by the tests.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from typing import Any

Obj = dict[str, Any]

KSERVE_API_VERSION = "serving.kserve.io/v1beta1"
DEFAULT_IMAGE = "ghcr.io/shopfloor/shopfloor-predictor:0.1.0"
DEFAULT_NAMESPACE = "shopfloor"
DEFAULT_S3_SECRET = "shopfloor-s3"
DEFAULT_SERVICE_ACCOUNT = "shopfloor-predictor"
HTTP_PORT = 8080
GRPC_PORT = 8081
KNATIVE_QUEUE_PORT = 8012
#: Env vars the predictor reads its S3 credentials from; all come from the Secret, never literals.
S3_SECRET_KEYS: tuple[str, ...] = ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "SHOPFLOOR_S3_ENDPOINT")
#: The endpoint may be absent (real AWS S3); the two credential keys must be present.
OPTIONAL_SECRET_KEYS = frozenset({"SHOPFLOOR_S3_ENDPOINT"})
#: KServe >= 0.16 calls raw Deployment mode "Standard" ("RawDeployment" is the legacy alias).
#: Knative ("Serverless") is the only mode in which canaryTrafficPercent splits traffic.
DEPLOYMENT_MODES = ("Standard", "RawDeployment", "Serverless")
RUN_AS_USER = 10001  # the uid the project Dockerfile creates

LABEL_PREFIX = "shopfloor.io"
MODEL_LABEL = f"{LABEL_PREFIX}/model"
VERSION_LABEL = f"{LABEL_PREFIX}/model-version"
DATA_VERSION_ANNOTATION = f"{LABEL_PREFIX}/data-version"
STORAGE_URI_ANNOTATION = f"{LABEL_PREFIX}/storage-uri"
#: Objects carrying this annotation are documentation for a human (e.g. the Secret shape) and
#: are never applied: applying an empty Secret would wipe real credentials.
TEMPLATE_ANNOTATION = f"{LABEL_PREFIX}/template-only"

_DNS1035 = re.compile(r"^[a-z]([-a-z0-9]*[a-z0-9])?$")
_LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")
_VERSION = re.compile(r"^v\d{4,}$")
#: KServe derives "<name>-predictor" Deployments/Services (and Knative adds revision suffixes),
#: which must stay within the 63-character DNS label limit.
MAX_NAME_LENGTH = 45


@dataclass(frozen=True)
class Resources:
    """Container requests/limits as Kubernetes quantity strings."""

    cpu_request: str = "100m"
    memory_request: str = "256Mi"
    cpu_limit: str = "1"
    memory_limit: str = "1Gi"


@dataclass(frozen=True)
class PredictorSpec:
    """Everything that decides what the cluster runs for one model version."""

    model_name: str
    version: str
    storage_uri: str
    data_version: str | None = None
    namespace: str = DEFAULT_NAMESPACE
    image: str = DEFAULT_IMAGE
    model_format: str = "int8"
    #: InferenceService name; stable across versions so a new version rolls out in place.
    name: str | None = None
    #: Percent of traffic for this version beside the current one; None = full rollout.
    canary_percent: int | None = None
    deployment_mode: str | None = None
    s3_secret: str = DEFAULT_S3_SECRET
    service_account: str = DEFAULT_SERVICE_ACCOUNT
    resources: Resources = field(default_factory=Resources)
    min_replicas: int = 1
    max_replicas: int = 1

    @property
    def service_name(self) -> str:
        return self.name or service_name_for(self.model_name)

    @property
    def mode(self) -> str:
        """The KServe deployment mode: Serverless for a canary (only Knative splits traffic)."""
        if self.deployment_mode:
            return self.deployment_mode
        return "Serverless" if self.canary_percent is not None else "Standard"

    def with_canary(self, percent: int | None) -> PredictorSpec:
        return replace(self, canary_percent=percent)


def service_name_for(model_name: str) -> str:
    """A DNS-1035 InferenceService name derived from a model name ("AI4I_failure" -> "ai4i-failure")."""
    name = re.sub(r"[^a-z0-9-]+", "-", model_name.lower()).strip("-")
    if name and not name[0].isalpha():
        name = f"m-{name}"
    return name


def check_spec(spec: PredictorSpec) -> None:
    """Fail before anything reaches a cluster, with the reason, on values the API would reject."""
    problems = []
    name = spec.service_name
    if not _DNS1035.match(name) or len(name) > MAX_NAME_LENGTH:
        problems.append(f"InferenceService name {name!r} must be a DNS-1035 label of at most "
                        f"{MAX_NAME_LENGTH} characters")
    if not _DNS1035.match(spec.namespace):
        problems.append(f"namespace {spec.namespace!r} must be a DNS label")
    if not _VERSION.match(spec.version):
        problems.append(f"version {spec.version!r} must look like v0001")
    if not _LABEL_VALUE.match(spec.model_name) or len(spec.model_name) > 63:
        problems.append(f"model name {spec.model_name!r} is not a valid label value")
    if not spec.storage_uri.startswith("s3://"):
        problems.append(f"storage URI {spec.storage_uri!r} must be an s3:// URI")
    if not spec.image or any(c.isspace() for c in spec.image):
        problems.append(f"image {spec.image!r} is not an image reference")
    if spec.mode not in DEPLOYMENT_MODES:
        problems.append(f"deployment mode {spec.mode!r} is not one of {DEPLOYMENT_MODES}")
    if spec.canary_percent is not None:
        if not 0 <= spec.canary_percent <= 100:
            problems.append(f"canary percent {spec.canary_percent} must be within 0..100")
        if spec.mode != "Serverless":
            problems.append("canaryTrafficPercent only splits traffic in KServe Serverless (Knative) mode; "
                            f"deployment mode {spec.mode!r} would silently send 100% to the new version")
    if not 1 <= spec.min_replicas <= spec.max_replicas:
        problems.append(f"replicas must satisfy 1 <= min ({spec.min_replicas}) <= max ({spec.max_replicas})")
    if problems:
        raise ValueError("; ".join(problems))


def labels(spec: PredictorSpec) -> dict[str, str]:
    """Selector-safe labels: the data version is an annotation (it can exceed 63 characters)."""
    return {
        "app.kubernetes.io/name": "shopfloor-predictor",
        "app.kubernetes.io/instance": spec.service_name,
        "app.kubernetes.io/part-of": "shopfloor",
        "app.kubernetes.io/managed-by": "shopfloor",
        MODEL_LABEL: spec.model_name,
        VERSION_LABEL: spec.version,
    }


def _common_labels(spec: PredictorSpec) -> dict[str, str]:
    return {k: v for k, v in labels(spec).items() if k not in (VERSION_LABEL, "app.kubernetes.io/instance")}


def _lineage_annotations(spec: PredictorSpec) -> dict[str, str]:
    notes = {STORAGE_URI_ANNOTATION: spec.storage_uri}
    if spec.data_version:
        notes[DATA_VERSION_ANNOTATION] = spec.data_version
    return notes


def _probe(path: str, *, period: int, failures: int, delay: int) -> Obj:
    return {
        "httpGet": {"path": path, "port": HTTP_PORT, "scheme": "HTTP"},
        "initialDelaySeconds": delay,
        "periodSeconds": period,
        "timeoutSeconds": 2,
        "failureThreshold": failures,
        "successThreshold": 1,
    }


def _container(spec: PredictorSpec) -> Obj:
    ports: list[Obj] = [{"name": "http1", "containerPort": HTTP_PORT, "protocol": "TCP"}]
    if spec.mode != "Serverless":
        # Knative admits exactly one container port, so gRPC is exposed only in Standard mode.
        ports.append({"name": "h2c", "containerPort": GRPC_PORT, "protocol": "TCP"})
    env: list[Obj] = [
        {
            "name": key,
            "valueFrom": {"secretKeyRef": {"name": spec.s3_secret, "key": key,
                                           "optional": key in OPTIONAL_SECRET_KEYS}},
        }
        for key in S3_SECRET_KEYS
    ]
    # The root filesystem is read-only: anything that wants a writable home gets the /tmp volume.
    env.append({"name": "HOME", "value": "/tmp"})
    res = spec.resources
    return {
        "name": "kserve-container",
        "image": spec.image,
        "imagePullPolicy": "IfNotPresent",
        # Explicit command: the project image's ENTRYPOINT is the `shopfloor` CLI.
        "command": ["python", "-m", "shopfloor.serving"],
        "args": [
            "--model-uri", spec.storage_uri,
            "--model-name", spec.model_name,
            "--format", spec.model_format,
            "--http-port", str(HTTP_PORT),
            "--grpc-port", str(GRPC_PORT),
            "--host", "0.0.0.0",
        ],
        "ports": ports,
        "env": env,
        "resources": {
            "requests": {"cpu": res.cpu_request, "memory": res.memory_request},
            "limits": {"cpu": res.cpu_limit, "memory": res.memory_limit},
        },
        # Readiness waits for the model itself; liveness only asks whether the server answers,
        # so a slow model load never gets the container killed.
        "readinessProbe": _probe(f"/v2/models/{spec.model_name}/ready", period=5, failures=3, delay=2),
        "livenessProbe": _probe("/v2/health/live", period=10, failures=3, delay=10),
        "securityContext": {
            "runAsNonRoot": True,
            "runAsUser": RUN_AS_USER,
            "readOnlyRootFilesystem": True,
            "allowPrivilegeEscalation": False,
            "capabilities": {"drop": ["ALL"]},
            "seccompProfile": {"type": "RuntimeDefault"},
        },
        "volumeMounts": [{"name": "tmp", "mountPath": "/tmp"}],
    }


def inference_service(spec: PredictorSpec) -> Obj:
    """The KServe v1beta1 InferenceService for ``spec`` (canary form when ``canary_percent`` is set)."""
    check_spec(spec)
    predictor: Obj = {
        "serviceAccountName": spec.service_account,
        "automountServiceAccountToken": False,
        "minReplicas": spec.min_replicas,
        "maxReplicas": spec.max_replicas,
        "labels": labels(spec),
        "annotations": {
            "prometheus.io/scrape": "true",
            "prometheus.io/port": str(HTTP_PORT),
            "prometheus.io/path": "/metrics",
            **_lineage_annotations(spec),
        },
        "securityContext": {
            "runAsNonRoot": True,
            "runAsUser": RUN_AS_USER,
            "runAsGroup": RUN_AS_USER,
            "fsGroup": RUN_AS_USER,
            "seccompProfile": {"type": "RuntimeDefault"},
        },
        "containers": [_container(spec)],
        "volumes": [{"name": "tmp", "emptyDir": {"sizeLimit": "256Mi"}}],
    }
    if spec.canary_percent is not None:
        predictor["canaryTrafficPercent"] = spec.canary_percent
    return {
        "apiVersion": KSERVE_API_VERSION,
        "kind": "InferenceService",
        "metadata": {
            "name": spec.service_name,
            "namespace": spec.namespace,
            "labels": labels(spec),
            "annotations": {
                "serving.kserve.io/deploymentMode": spec.mode,
                **_lineage_annotations(spec),
            },
        },
        "spec": {"predictor": predictor},
    }


def service_account(spec: PredictorSpec) -> Obj:
    """The predictor's identity; it never calls the Kubernetes API, so no token is mounted."""
    return {
        "apiVersion": "v1",
        "kind": "ServiceAccount",
        "metadata": {"name": spec.service_account, "namespace": spec.namespace,
                     "labels": _common_labels(spec)},
        "automountServiceAccountToken": False,
    }


def secret_template(spec: PredictorSpec) -> Obj:
    """The shape of the S3 credentials Secret, without values (create it with kubectl or a vault)."""
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "type": "Opaque",
        "metadata": {
            "name": spec.s3_secret,
            "namespace": spec.namespace,
            "labels": _common_labels(spec),
            "annotations": {
                TEMPLATE_ANNOTATION: "true",
                f"{LABEL_PREFIX}/required-keys": ",".join(k for k in S3_SECRET_KEYS
                                                          if k not in OPTIONAL_SECRET_KEYS),
                f"{LABEL_PREFIX}/optional-keys": ",".join(sorted(OPTIONAL_SECRET_KEYS)),
            },
        },
    }


def network_policy(spec: PredictorSpec) -> Obj:
    """Admit only the serving ports into the predictor pods; egress stays open (S3 endpoint)."""
    ports = [HTTP_PORT, GRPC_PORT]
    if spec.mode == "Serverless":
        ports.append(KNATIVE_QUEUE_PORT)  # Knative routes requests through the queue-proxy sidecar
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": {"name": f"{spec.service_name}-predictor", "namespace": spec.namespace,
                     "labels": _common_labels(spec)},
        "spec": {
            "podSelector": {"matchLabels": {"serving.kserve.io/inferenceservice": spec.service_name}},
            "policyTypes": ["Ingress"],
            "ingress": [{"from": [{"namespaceSelector": {}}],
                         "ports": [{"protocol": "TCP", "port": port} for port in ports]}],
        },
    }


def render_objects(spec: PredictorSpec) -> list[Obj]:
    """All objects for ``spec``, in apply order (identity and policy before the workload)."""
    check_spec(spec)
    return [service_account(spec), secret_template(spec), network_policy(spec), inference_service(spec)]


def applicable(objects: list[Obj]) -> list[Obj]:
    """The objects a deploy may apply: template-only ones (the Secret shape) are left out."""
    return [o for o in objects
            if (o.get("metadata", {}).get("annotations") or {}).get(TEMPLATE_ANNOTATION) != "true"]
