"""Registry errors: each names the version, file or alias at fault, never a credential.

Every one is a category of :mod:`shopfloor.errors`, so the CLI exits with that category's
code and a service answers with its status. A stored file or document that does not match
what was published is :class:`shopfloor.errors.IntegrityError` itself (re-exported here), the
same class the contract raises for a document it cannot parse.
"""

from __future__ import annotations

from shopfloor.errors import (
    ConflictError,
    ExternalServiceError,
    GateFailedError,
    IntegrityError,
    InvalidInputError,
    NotFoundError,
    ShopfloorError,
)

__all__ = [
    "AliasError", "AssemblyError", "DestinationNotEmptyError", "GatesNotPassedError", "IntegrityError",
    "InvalidNameError", "RegistryError", "RunNotFoundError", "StorageError", "VersionExistsError",
    "VersionNotFoundError",
]


class RegistryError(ShopfloorError):
    """Marker base of the registry's own errors (each also has a category below)."""


class InvalidNameError(RegistryError, InvalidInputError):
    """A model, version, alias or environment name, or a registry URI, that is not allowed."""


class VersionNotFoundError(RegistryError, NotFoundError):
    """An unknown or unpublished version."""


class VersionExistsError(RegistryError, ConflictError):
    """The version id is taken: published versions are immutable."""


class AliasError(RegistryError, ConflictError):
    """An alias cannot be moved (nothing to roll back to, contention did not settle)."""


class DestinationNotEmptyError(RegistryError, ConflictError):
    """``fetch`` never writes into a directory that already holds something."""


class AssemblyError(RegistryError, InvalidInputError):
    """A run or version directory cannot become a model version: a piece is missing, does not
    load, or is not a regular file. ``path`` names the file at fault when there is one."""

    def __init__(self, message: str, path: str = "") -> None:
        super().__init__(message)
        self.path = path


class RunNotFoundError(RegistryError, NotFoundError):
    """The run directory named for registration does not exist."""


class GatesNotPassedError(RegistryError, GateFailedError):
    """The run did not pass validation, the evaluation gates or conversion equivalence."""


class StorageError(RegistryError, ExternalServiceError):
    """The storage under the registry (a directory, a mount, S3) refused or was unreachable."""
