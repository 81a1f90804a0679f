"""The small seam between deploy orchestration and a Kubernetes API server.

:class:`Cluster` is all :mod:`shopfloor.deploy.apply` needs; :class:`KubernetesCluster` implements
it with the official client's raw API: server-side apply is one PATCH with
``Content-Type: application/apply-patch+yaml`` (JSON is valid YAML), ``fieldManager=shopfloor``
and ``force=true``.

Why force: the registry is the source of truth for what serves, so ``shopfloor deploy`` must
converge the objects it renders, as a GitOps controller would. A field someone changed by hand
(``kubectl edit``/``scale``) is taken back and the other manager loses ownership of it, which is
visible in ``metadata.managedFields``; fields we never set (status, controller defaults) are not
touched. Without force such a conflict would make the pipeline fail mid-rollout, and a rollback
(which must not fail) would be blocked the same way.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Protocol

from shopfloor.errors import ConflictError, ExternalServiceError, InvalidInputError, NotFoundError, bounded

Obj = dict[str, Any]
FIELD_MANAGER = "shopfloor"


class ClusterError(ExternalServiceError):
    """The API server refused a request; the message is the server's own one-line reason."""


class ApplyConflictError(ConflictError, ClusterError):
    """The API server answered 409: another field manager or a concurrent change won (exit code 4)."""


class Cluster(Protocol):
    """What deploy orchestration needs from a cluster."""

    def apply(self, obj: Obj) -> Obj:
        """Server-side apply ``obj``; return the live object after the apply."""
        ...

    def get(self, kind: str, name: str, namespace: str | None) -> Obj | None:
        """The live object, or None when it does not exist."""
        ...


@dataclass(frozen=True)
class ResourceType:
    api_version: str
    plural: str
    namespaced: bool = True

    def path(self, name: str, namespace: str | None) -> str:
        base = "/api/v1" if self.api_version == "v1" else f"/apis/{self.api_version}"
        if self.namespaced:
            if not namespace:
                raise InvalidInputError(f"{self.plural} are namespaced: a namespace is required")
            base = f"{base}/namespaces/{namespace}"
        return f"{base}/{self.plural}/{name}"


#: The kinds shopfloor renders; a fixed table instead of discovery keeps a deploy to the requests
#: it needs (and testable against a canned server).
RESOURCES: dict[str, ResourceType] = {
    "Namespace": ResourceType("v1", "namespaces", namespaced=False),
    "ServiceAccount": ResourceType("v1", "serviceaccounts"),
    "Secret": ResourceType("v1", "secrets"),
    "NetworkPolicy": ResourceType("networking.k8s.io/v1", "networkpolicies"),
    "InferenceService": ResourceType("serving.kserve.io/v1beta1", "inferenceservices"),
    # the edge chart's kinds (shopfloor.edge.direct)
    "ConfigMap": ResourceType("v1", "configmaps"),
    "PersistentVolumeClaim": ResourceType("v1", "persistentvolumeclaims"),
    "Service": ResourceType("v1", "services"),
    "Deployment": ResourceType("apps/v1", "deployments"),
}


def resource_type(kind: str) -> ResourceType:
    try:
        return RESOURCES[kind]
    except KeyError:
        raise InvalidInputError(f"shopfloor does not manage kind {kind!r}; known: {sorted(RESOURCES)}"
                                ) from None


def _reason(exc: Any) -> str:
    """The API server's Status message, else the HTTP status line."""
    try:
        status = json.loads(exc.body)
        return f"{exc.status} {status.get('reason', '')}: {status.get('message', '')}".strip()
    except (TypeError, ValueError, AttributeError):
        return f"{getattr(exc, 'status', '?')} {getattr(exc, 'reason', exc)}"


class KubernetesCluster:
    """:class:`Cluster` over the kubernetes client's ``ApiClient`` (raw REST, no discovery)."""

    def __init__(self, api_client: Any, field_manager: str = FIELD_MANAGER, force: bool = True) -> None:
        self.api = api_client
        self.field_manager = field_manager
        self.force = force

    @classmethod
    def connect(cls, kubeconfig: str | None = None, context: str | None = None) -> KubernetesCluster:
        """From a kubeconfig (path/context), else the in-cluster service account of a pipeline pod."""
        import os

        from kubernetes import client, config

        try:
            if kubeconfig or context or not os.environ.get("KUBERNETES_SERVICE_HOST"):
                return cls(config.new_client_from_config(config_file=kubeconfig, context=context))
            configuration = client.Configuration()
            config.load_incluster_config(client_configuration=configuration)
            return cls(client.ApiClient(configuration))
        except config.ConfigException as exc:
            raise ClusterError(f"no usable cluster configuration: {exc}") from exc

    def _call(self, method: str, path: str, *, query: list[tuple[str, str]] | None = None,
              body: Obj | None = None, content_type: str | None = None) -> Obj:
        from kubernetes.client.exceptions import ApiException
        from urllib3.exceptions import HTTPError, MaxRetryError

        headers = {"Accept": "application/json"}
        if content_type:
            headers["Content-Type"] = content_type
        try:
            return self.api.call_api(
                path, method, query_params=query or [], header_params=headers, body=body,
                response_type="object", auth_settings=["BearerToken"], _return_http_data_only=True,
            )
        except ApiException as exc:
            if exc.status == 404 and method == "GET":
                raise NotFoundError(path) from exc
            error = ApplyConflictError if exc.status == 409 else ClusterError
            raise error(f"{method} {path}: {_reason(exc)}") from exc
        except HTTPError as exc:  # connection refused, TLS, timeouts: after the client's own retries
            cause = exc.reason if isinstance(exc, MaxRetryError) and exc.reason else exc
            raise ClusterError(f"{method} {path}: API server unreachable: {bounded(str(cause), 200)}"
                               ) from exc

    def apply(self, obj: Obj) -> Obj:
        rt = resource_type(obj["kind"])
        meta = obj["metadata"]
        query = [("fieldManager", self.field_manager)]
        if self.force:
            query.append(("force", "true"))
        return self._call("PATCH", rt.path(meta["name"], meta.get("namespace")), query=query, body=obj,
                          content_type="application/apply-patch+yaml")

    def get(self, kind: str, name: str, namespace: str | None) -> Obj | None:
        try:
            return self._call("GET", resource_type(kind).path(name, namespace))
        except NotFoundError:
            return None
