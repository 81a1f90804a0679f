"""Model registry: immutable, checksummed model versions and per-environment aliases.

``open_registry("s3://bucket/prefix")`` or ``open_registry("/path")`` (default:
``$SHOPFLOOR_REGISTRY`` or ``~/.shopfloor/registry``) returns a :class:`Registry`. What a
version holds, and in which documents, is :mod:`shopfloor.contract`.
"""

from shopfloor.registry.assemble import (
    VersionContent,
    assemble_from_artifacts,
    assemble_version,
    describe_version,
)
from shopfloor.registry.backends import BACKENDS, Backend, FilesystemBackend, S3Backend, backend_for
from shopfloor.registry.core import (
    CANDIDATE,
    CHAMPION,
    Listing,
    Registry,
    VersionEntry,
    check_version,
    open_registry,
)
from shopfloor.registry.errors import (
    AliasError,
    AssemblyError,
    DestinationNotEmptyError,
    GatesNotPassedError,
    IntegrityError,
    InvalidNameError,
    RegistryError,
    RunNotFoundError,
    StorageError,
    VersionExistsError,
    VersionNotFoundError,
)

__all__ = [
    "BACKENDS", "CANDIDATE", "CHAMPION", "AliasError", "AssemblyError", "Backend", "DestinationNotEmptyError",
    "FilesystemBackend", "GatesNotPassedError", "IntegrityError", "InvalidNameError", "Listing", "Registry",
    "RegistryError", "RunNotFoundError", "S3Backend", "StorageError", "VersionContent", "VersionEntry",
    "VersionExistsError", "VersionNotFoundError", "assemble_from_artifacts", "assemble_version",
    "backend_for", "check_version", "describe_version", "open_registry",
]
