"""Registry errors: each names the version, file or alias at fault, never a credential."""

from __future__ import annotations


class RegistryError(Exception):
    """Base class: anything the registry refuses to do."""


class VersionNotFoundError(RegistryError, KeyError):
    """An unknown or unpublished version (a KeyError, so ``except KeyError`` works too)."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""


class VersionExistsError(RegistryError):
    """The version id is taken: published versions are immutable."""


class IntegrityError(RegistryError):
    """A stored file does not match the manifest (changed, missing or unexpected)."""

    def __init__(self, message: str, path: str) -> None:
        super().__init__(message)
        self.path = path


class AssemblyError(RegistryError, ValueError):
    """A run directory cannot become a model version (missing piece or failed gate)."""


class AliasError(RegistryError):
    """An alias cannot be moved (nothing to roll back to, contention did not settle)."""
