"""Render the Kubernetes objects that serve one registry version on KServe.

Pure functions from a :class:`PredictorSpec` to plain dicts: no cluster, no registry, so the
same objects are printed by ``shopfloor deploy cloud --render``, applied by
:mod:`shopfloor.deploy.apply` and validated offline by the tests.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from decimal import Decimal, InvalidOperation
from typing import Any

from shopfloor import contract, names, settings
from shopfloor.contract import SERVABLE_FORMATS, VersionManifest
from shopfloor.errors import InvalidInputError, bounded, excerpt

Obj = dict[str, Any]

KSERVE_API_VERSION = "serving.kserve.io/v1beta1"
#: The predictor image of this package version (the CLI lets SHOPFLOOR_PREDICTOR_IMAGE override it).
DEFAULT_IMAGE = settings.image_ref(settings.PREDICTOR_IMAGE_NAME)
DEFAULT_SERVICE_ACCOUNT = "shopfloor-predictor"
KNATIVE_QUEUE_PORT = 8012
#: KServe >= 0.16 calls raw Deployment mode "Standard" ("RawDeployment" is the legacy alias).
#: Knative ("Serverless") is the only mode in which canaryTrafficPercent splits traffic.
DEPLOYMENT_MODES = ("Standard", "RawDeployment", "Serverless")

LABEL_PREFIX = "shopfloor.io"
MODEL_LABEL = f"{LABEL_PREFIX}/model"
VERSION_LABEL = f"{LABEL_PREFIX}/model-version"
DATA_VERSION_ANNOTATION = f"{LABEL_PREFIX}/data-version"
STORAGE_URI_ANNOTATION = f"{LABEL_PREFIX}/storage-uri"
#: Objects carrying this annotation are documentation for a human (e.g. the Secret shape) and
#: are never applied: applying an empty Secret would wipe real credentials.
TEMPLATE_ANNOTATION = f"{LABEL_PREFIX}/template-only"

#: What ``model_format`` may be: ``auto`` (the predictor serves the version's edge format) or
#: a servable format.
MODEL_FORMATS: tuple[str, ...] = (contract.AUTO_FORMAT, *SERVABLE_FORMATS)

MAX_PORT = 65535
#: Registry version ids; also a label value, hence the length limit.
_VERSION = r"v[0-9]{4,}"
MAX_VERSION_LENGTH = 63
#: A Kubernetes resource quantity (apimachinery's grammar).
_QUANTITY = re.compile(r"(?P<number>[+-]?([0-9]+(\.[0-9]*)?|\.[0-9]+))"
                       r"(?P<suffix>[KMGTPE]i|[numkMGTPE]|[eE][+-]?([0-9]+(\.[0-9]*)?|\.[0-9]+))?")
_SUFFIXES = {"n": Decimal("1e-9"), "u": Decimal("1e-6"), "m": Decimal("1e-3"), "": Decimal(1),
             "k": Decimal("1e3"), "M": Decimal("1e6"), "G": Decimal("1e9"), "T": Decimal("1e12"),
             "P": Decimal("1e15"), "E": Decimal("1e18"),
             **{s: Decimal(1024) ** (i + 1) for i, s in enumerate(("Ki", "Mi", "Gi", "Ti", "Pi", "Ei"))}}


def quantity(value: str) -> Decimal:
    """The amount a Kubernetes quantity string stands for ("250m" -> 0.25, "1Gi" -> 1073741824)."""
    m = _QUANTITY.fullmatch(value) if isinstance(value, str) else None
    if m is None:
        raise InvalidInputError(f"{excerpt(value)} is not a Kubernetes quantity (e.g. 250m, 1, 512Mi)")
    suffix = m.group("suffix") or ""
    try:
        if suffix[:1] in ("e", "E") and len(suffix) > 1:
            return Decimal(m.group("number") + suffix)
        return Decimal(m.group("number")) * _SUFFIXES[suffix]
    except InvalidOperation as exc:  # pragma: no cover - the grammar admits only decimals
        raise InvalidInputError(f"{excerpt(value)} is not a Kubernetes quantity") from exc


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
    namespace: str = settings.DEFAULT_NAMESPACE
    image: str = DEFAULT_IMAGE
    #: ``auto`` when nothing says (a chart without a version); a deploy from the registry
    #: writes the version's own format (:func:`format_for_version`).
    model_format: str = contract.AUTO_FORMAT
    #: InferenceService name (default: the model name); stable across versions so a new
    #: version rolls out in place.
    name: str | None = None
    #: Percent of traffic for this version beside the current one; None = full rollout.
    canary_percent: int | None = None
    deployment_mode: str | None = None
    s3_secret: str = settings.S3_SECRET_NAME
    service_account: str = DEFAULT_SERVICE_ACCOUNT
    resources: Resources = field(default_factory=Resources)
    min_replicas: int = 1
    max_replicas: int = 1
    #: The predictor's ports (REST with metrics and probes; gRPC).
    http_port: int = settings.HTTP_PORT
    grpc_port: int = settings.GRPC_PORT

    @property
    def service_name(self) -> str:
        """``name``, else the model name as it is: see :func:`service_name_problem`."""
        return self.name or self.model_name

    @property
    def mode(self) -> str:
        """The KServe deployment mode: Serverless for a canary (only Knative splits traffic)."""
        if self.deployment_mode:
            return self.deployment_mode
        return "Serverless" if self.canary_percent is not None else "Standard"

    def with_canary(self, percent: int | None) -> PredictorSpec:
        return replace(self, canary_percent=percent)


#: Shared with the chart's _helpers.tpl, which refuses the same model names with the same words.
UNDERIVABLE_NAME = ("cannot be the InferenceService name as it is; give one explicitly "
                    "(--name, Helm value name)")


def service_name_problem(spec: PredictorSpec) -> str | None:
    """Why ``spec`` has no usable InferenceService name, or None.

    Without an explicit ``name`` the model name is used unchanged, never rewritten: a rewrite
    ("AI4I_failure" -> "ai4i-failure") maps distinct registry models onto one InferenceService,
    so deploying one would silently replace the other. An injective encoding would give names
    nobody recognises, so a model name that is not already a valid name is refused instead.
    """
    if spec.name:
        return names.INFERENCE_SERVICE_NAME.problem(spec.name, "InferenceService name")
    if names.INFERENCE_SERVICE_NAME.matches(spec.model_name):
        return None
    return (f"model name {excerpt(spec.model_name)} {UNDERIVABLE_NAME}: it must be "
            f"{names.INFERENCE_SERVICE_NAME.describe()}")


def _resource_problems(res: Resources) -> list[str]:
    problems = []
    for kind in ("cpu", "memory"):
        request, limit = getattr(res, f"{kind}_request"), getattr(res, f"{kind}_limit")
        try:
            below = quantity(limit) < quantity(request)
        except InvalidInputError as exc:
            problems.append(f"{kind} resources: {exc}")
            continue
        if below:
            problems.append(f"{kind} limit {limit} is below its request {request}")
    return problems


def check_spec(spec: PredictorSpec) -> None:
    """Fail before anything reaches a cluster, with the reason, on values the API would reject."""
    problems = [
        service_name_problem(spec),
        names.DNS1123_LABEL.problem(spec.namespace, "namespace"),
        (names.LABEL_VALUE.problem(spec.model_name, "model name") if spec.model_name
         else "model name is empty"),
        names.DNS1123_SUBDOMAIN.problem(spec.s3_secret, "S3 Secret name"),
        names.DNS1123_SUBDOMAIN.problem(spec.service_account, "ServiceAccount name"),
    ]
    version_ok = (isinstance(spec.version, str) and len(spec.version) <= MAX_VERSION_LENGTH
                  and re.fullmatch(_VERSION, spec.version) is not None)
    if not version_ok:
        problems.append(f"version {excerpt(spec.version)} must look like v0001")
    try:
        _bucket, key = names.check_s3_uri(spec.storage_uri, "storage URI")
    except InvalidInputError as exc:
        problems.append(str(exc))
    else:  # the URI must name this model and version (only worth saying when both are valid)
        tail = f"{spec.model_name}/{spec.version}"
        if version_ok and names.LABEL_VALUE.matches(spec.model_name) and not (
                key == tail or key.endswith(f"/{tail}")):
            problems.append(f"storage URI {excerpt(spec.storage_uri)} must end with /{bounded(tail, 130)}: "
                            "the predictor loads <registry root>/<model>/<version>, and the labels name what "
                            "it serves")
    if spec.model_format not in MODEL_FORMATS:
        problems.append(f"model format {excerpt(spec.model_format)} is not one of {list(MODEL_FORMATS)}")
    if not spec.image or any(c.isspace() for c in spec.image):
        problems.append(f"image {excerpt(spec.image)} is not an image reference")
    if spec.mode not in DEPLOYMENT_MODES:
        problems.append(f"deployment mode {excerpt(spec.mode)} is not one of {DEPLOYMENT_MODES}")
    if spec.canary_percent is not None:
        if not 0 <= spec.canary_percent <= 100:
            problems.append(f"canary percent {spec.canary_percent} must be within 0..100")
        if spec.mode != "Serverless":
            problems.append("canaryTrafficPercent only splits traffic in KServe Serverless (Knative) mode; "
                            f"deployment mode {spec.mode!r} would silently send 100% to the new version")
    for what, port in (("HTTP", spec.http_port), ("gRPC", spec.grpc_port)):
        if not 1 <= port <= MAX_PORT:
            problems.append(f"{what} port {port} must be within 1..{MAX_PORT}")
    if spec.http_port == spec.grpc_port:
        problems.append(f"HTTP and gRPC ports must differ (both {spec.http_port})")
    if not 1 <= spec.min_replicas <= spec.max_replicas:
        problems.append(f"replicas must satisfy 1 <= min ({spec.min_replicas}) <= max ({spec.max_replicas})")
    problems.extend(_resource_problems(spec.resources))
    found = [p for p in problems if p]
    if found:
        raise InvalidInputError("; ".join(found))


def format_for_version(manifest: VersionManifest, requested: str | None = None) -> str:
    """The format the predictor serves ``manifest``'s version in (``requested``, or the version's
    edge format for None or ``auto``), refused before anything reaches a cluster when the
    version lacks it (:meth:`VersionManifest.resolve_format`)."""
    return manifest.resolve_format(requested)


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


def _probe(path: str, port: int, *, period: int, failures: int, delay: int) -> Obj:
    return {
        "httpGet": {"path": path, "port": port, "scheme": "HTTP"},
        "initialDelaySeconds": delay,
        "periodSeconds": period,
        "timeoutSeconds": 2,
        "failureThreshold": failures,
        "successThreshold": 1,
    }


def _container(spec: PredictorSpec) -> Obj:
    ports: list[Obj] = [{"name": "http1", "containerPort": spec.http_port, "protocol": "TCP"}]
    if spec.mode != "Serverless":
        # Knative admits exactly one container port, so gRPC is exposed only in Standard mode.
        ports.append({"name": "h2c", "containerPort": spec.grpc_port, "protocol": "TCP"})
    env: list[Obj] = [
        {
            "name": key,
            "valueFrom": {"secretKeyRef": {"name": spec.s3_secret, "key": key,
                                           "optional": key in settings.OPTIONAL_SECRET_KEYS}},
        }
        for key in settings.S3_SECRET_KEYS
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
            "--http-port", str(spec.http_port),
            "--grpc-port", str(spec.grpc_port),
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
        "readinessProbe": _probe(f"/v2/models/{spec.model_name}/ready", spec.http_port,
                                 period=5, failures=3, delay=2),
        "livenessProbe": _probe("/v2/health/live", spec.http_port, period=10, failures=3, delay=10),
        "securityContext": {
            "runAsNonRoot": True,
            "runAsUser": settings.RUN_AS_USER,
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
            "prometheus.io/port": str(spec.http_port),
            "prometheus.io/path": "/metrics",
            **_lineage_annotations(spec),
        },
        "securityContext": {
            "runAsNonRoot": True,
            "runAsUser": settings.RUN_AS_USER,
            "runAsGroup": settings.RUN_AS_USER,
            "fsGroup": settings.RUN_AS_USER,
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
                f"{LABEL_PREFIX}/required-keys": ",".join(k for k in settings.S3_SECRET_KEYS
                                                          if k not in settings.OPTIONAL_SECRET_KEYS),
                f"{LABEL_PREFIX}/optional-keys": ",".join(sorted(settings.OPTIONAL_SECRET_KEYS)),
            },
        },
    }


def network_policy(spec: PredictorSpec) -> Obj:
    """Admit only the serving ports into the predictor pods; egress stays open (S3 endpoint)."""
    ports = [spec.http_port, spec.grpc_port]
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
