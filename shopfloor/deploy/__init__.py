"""Cloud deployment: render KServe InferenceServices for registry versions, apply, roll back.

``render`` builds plain dicts (printed by ``shopfloor deploy cloud --render``), ``validate``
checks them offline against the vendored KServe CRD and Kubernetes schemas, ``cluster`` is the
seam to the API server (server-side apply), ``apply`` orchestrates rollout -> Ready -> registry.
"""

from shopfloor.deploy.apply import (
    DeployResult,
    default_version,
    deploy,
    deploy_from_registry,
    spec_from_registry,
)
from shopfloor.deploy.cluster import ApplyConflictError, Cluster, ClusterError, KubernetesCluster
from shopfloor.deploy.render import PredictorSpec, Resources, inference_service, render_objects

__all__ = [
    "ApplyConflictError", "Cluster", "ClusterError", "DeployResult", "KubernetesCluster", "PredictorSpec",
    "Resources",
    "default_version", "deploy", "deploy_from_registry", "inference_service", "render_objects",
    "spec_from_registry",
]
