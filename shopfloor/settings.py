"""Every setting shopfloor reads, declared once: environment variables, names, ports, images.

In the spirit of MLflow's ``environment_variables.py``: a module that reads the environment
does so through a :class:`EnvVar` declared here, so the full list of knobs (and their
defaults) is one page, and the CLI, the predictor's own flags, the renderers, the pipelines
and the Helm chart's defaults all read the same values. Nothing here imports beyond the
standard library: every process, down to the edge runtime, can afford it.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from shopfloor import __version__


@dataclass(frozen=True)
class EnvVar:
    """One environment variable: its name, default and what it is for."""

    name: str
    default: str | None
    help: str

    def get(self) -> str | None:
        """The value, or the default when unset or empty."""
        return os.environ.get(self.name) or self.default

    def is_set(self) -> bool:
        return bool(os.environ.get(self.name))


REGISTRY = EnvVar("SHOPFLOOR_REGISTRY", None,
                  "Model registry location: a path or s3://bucket/prefix (default ~/.shopfloor/registry).")
S3_ENDPOINT = EnvVar("SHOPFLOOR_S3_ENDPOINT", None,
                     "S3/MinIO endpoint URL, e.g. http://minio.kubeflow:9000.")
AWS_ENDPOINT_URL = EnvVar("AWS_ENDPOINT_URL", None, "Fallback S3 endpoint (the AWS SDKs' name).")
AWS_ACCESS_KEY_ID = EnvVar("AWS_ACCESS_KEY_ID", None, "S3 access key.")
AWS_SECRET_ACCESS_KEY = EnvVar("AWS_SECRET_ACCESS_KEY", None, "S3 secret key.")
AWS_REGION = EnvVar("AWS_REGION", "us-east-1", "S3 region.")
SSL_CERT_FILE = EnvVar("SSL_CERT_FILE", None, "CA bundle for https S3 endpoints (default: certifi's).")
GIT_SHA = EnvVar("SHOPFLOOR_GIT_SHA", None, "Code version recorded in manifests (image builds set it).")
IMAGE = EnvVar("SHOPFLOOR_IMAGE", None, "Image the KFP components run in (read at compile time).")
PREDICTOR_IMAGE = EnvVar("SHOPFLOOR_PREDICTOR_IMAGE", None, "Image of the cloud predictor.")
EDGE_SITES = EnvVar("SHOPFLOOR_EDGE_SITES", None,
                    "Edge site inventory file (default ~/.shopfloor/edge/sites.yaml).")
HELM = EnvVar("SHOPFLOOR_HELM", None,
              "helm binary used to render the edge chart "
              "(default: .tools/bin/helm of a checkout, else PATH).")
EDGE_KEYS = EnvVar("SHOPFLOOR_KEYS", None,
                   "Directory of the development signing key and trust file (default ~/.shopfloor/keys).")
EDGE_FAULT = EnvVar("SHOPFLOOR_EDGE_FAULT", None,
                    "Tests only: the edge model store SIGKILLs itself at this step (after_download, "
                    "after_verify, after_self_test, during_switch).")

#: Every variable above, for documentation and for the test that keeps this list complete.
ENV_VARS: tuple[EnvVar, ...] = (
    REGISTRY, S3_ENDPOINT, AWS_ENDPOINT_URL, AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_REGION,
    SSL_CERT_FILE, GIT_SHA, IMAGE, PREDICTOR_IMAGE, EDGE_SITES, HELM, EDGE_KEYS, EDGE_FAULT,
)

#: Registered model name of the failure predictor (registry path, endpoint path, InferenceService).
DEFAULT_MODEL_NAME = "ai4i-failure"
#: Embedded registry: per user, independent of the working directory.
DEFAULT_REGISTRY_ROOT = Path("~/.shopfloor/registry")

#: Registry environments: each has its own aliases (a cloud champion is not an edge champion).
CLOUD_ENV = "cloud"
EDGE_ENV = "edge"
ENVIRONMENTS: tuple[str, ...] = (CLOUD_ENV, EDGE_ENV)

#: Predictor ports (KServe's conventions); 0 disables gRPC.
HTTP_PORT = 8080
GRPC_PORT = 8081
#: Loopback unless told otherwise: a predictor on a plant network must not listen everywhere by default.
DEFAULT_HOST = "127.0.0.1"

#: Predictor limits (every surface: REST, gRPC, the edge). Rows per request; bytes per REST
#: body or gRPC message (a batch of MAX_BATCH rows in JSON is ~0.2 MB); open HTTP connections;
#: seconds to receive one whole request once it started, and an idle connection's lifetime.
MAX_BATCH = 1024
MAX_BODY_BYTES = 4 * 1024 * 1024
MAX_CONNECTIONS = 128
READ_TIMEOUT_SECONDS = 30.0
IDLE_TIMEOUT_SECONDS = 5.0

#: Edge runtime (``shopfloor edge serve``, port: EDGE_PORT below): the largest version archive
#: its admin endpoint accepts (a whole version with its SavedModel) and the versions its store
#: keeps. Which LiteRT file runs is the version's to say (``contract.choose_format``): a device
#: profile's ``variant`` is only a preference, and without a profile there is none.
EDGE_MAX_UPLOAD_BYTES = 256 * 1024 * 1024
EDGE_KEEP_VERSIONS = 3

#: Kubernetes namespace and the one Secret that carries S3 credentials, for pipeline and predictor.
DEFAULT_NAMESPACE = "shopfloor"
S3_SECRET_NAME = "shopfloor-s3"
S3_SECRET_KEYS: tuple[str, ...] = (AWS_ACCESS_KEY_ID.name, AWS_SECRET_ACCESS_KEY.name, S3_ENDPOINT.name)
#: The endpoint may be absent (real AWS S3); the two credential keys must be present.
OPTIONAL_SECRET_KEYS = frozenset({S3_ENDPOINT.name})

#: Container images: one registry organisation, tagged with the package version.
IMAGE_REPOSITORY = "ghcr.io/shopfloor-mlops"
PIPELINE_IMAGE_NAME = "shopfloor"
PREDICTOR_IMAGE_NAME = "shopfloor-predictor"
#: uid the project images create and run as.
RUN_AS_USER = 10001


def image_ref(name: str, tag: str = __version__) -> str:
    """``<repository>/<name>:<tag>``: the one place image references are spelled."""
    return f"{IMAGE_REPOSITORY}/{name}:{tag}"


def pipeline_image() -> str:
    """Image of the KFP components: SHOPFLOOR_IMAGE, else the project image of this version."""
    return IMAGE.get() or image_ref(PIPELINE_IMAGE_NAME)


def predictor_image() -> str:
    """Image of the cloud predictor: SHOPFLOOR_PREDICTOR_IMAGE, else this version's."""
    return PREDICTOR_IMAGE.get() or image_ref(PREDICTOR_IMAGE_NAME)


def registry_location() -> str:
    """SHOPFLOOR_REGISTRY if set, else the embedded registry in the user's home."""
    return REGISTRY.get() or str(DEFAULT_REGISTRY_ROOT.expanduser())


#: Edge site inventory (``shopfloor.edge.sites``) when SHOPFLOOR_EDGE_SITES is unset.
DEFAULT_EDGE_INVENTORY = Path("~/.shopfloor/edge/sites.yaml")
#: Port of the edge runtime (``shopfloor edge serve``) inside an edge site's pod.
EDGE_PORT = 8090
#: Where the edge workload keeps its model store (a persistent volume on K3s).
EDGE_STORE_PATH = "/var/lib/shopfloor/store"
EDGE_IMAGE_NAME = "shopfloor-edge"


def edge_inventory_path() -> Path:
    """SHOPFLOOR_EDGE_SITES if set, else ~/.shopfloor/edge/sites.yaml."""
    return Path(EDGE_SITES.get() or DEFAULT_EDGE_INVENTORY).expanduser()


#: Development signing key and trust file when SHOPFLOOR_KEYS is unset (``shopfloor.edge.signing``).
DEFAULT_EDGE_KEY_DIR = Path("~/.shopfloor/keys")


def edge_key_dir() -> Path:
    """SHOPFLOOR_KEYS if set, else ~/.shopfloor/keys."""
    return Path(EDGE_KEYS.get() or DEFAULT_EDGE_KEY_DIR).expanduser()
