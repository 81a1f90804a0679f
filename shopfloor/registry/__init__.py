"""Model registry: immutable, checksummed model versions and per-environment aliases.

``open_registry("s3://bucket/prefix")`` or ``open_registry("/path")`` (default:
``$SHOPFLOOR_REGISTRY`` or ``~/.shopfloor/registry``) returns a :class:`Registry`.
"""

from shopfloor.registry.assemble import assemble_from_artifacts, assemble_version, describe_version
from shopfloor.registry.backends import Backend, FilesystemBackend, S3Backend
from shopfloor.registry.core import (
    CHAMPION,
    DEFAULT_MODEL,
    DEFAULT_ROOT,
    Registry,
    check_version,
    default_location,
    open_registry,
)
from shopfloor.registry.errors import (
    AliasError,
    AssemblyError,
    IntegrityError,
    RegistryError,
    VersionExistsError,
    VersionNotFoundError,
)

__all__ = [
    "CHAMPION", "DEFAULT_MODEL", "DEFAULT_ROOT", "AliasError", "AssemblyError", "Backend",
    "FilesystemBackend", "IntegrityError", "Registry", "RegistryError", "S3Backend",
    "VersionExistsError", "VersionNotFoundError", "assemble_from_artifacts", "assemble_version",
    "check_version", "default_location", "describe_version", "open_registry",
]
