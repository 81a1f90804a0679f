"""Where the predictor's model comes from: a local version directory or the registry.

A ``--model-uri`` is ``<registry root>/<model>/<version>`` (e.g.
``s3://bucket/prefix/ai4i-failure/v0003``), the registry's own layout. Fetching goes through
``shopfloor.registry`` (checksums verified, nothing half-written at the destination), so the
predictor image has no second S3 client and cannot serve a tampered file.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from shopfloor.errors import InvalidInputError, excerpt


def split_model_uri(uri: str) -> tuple[str, str, str]:
    """``<root>/<model>/<version>`` -> (root, model, version)."""
    parts = uri.rstrip("/").rsplit("/", 2)
    if len(parts) != 3 or not all(parts) or parts[0].endswith(":/"):
        raise InvalidInputError(
            f"model URI {excerpt(uri, 120)} must look like <registry root>/<model>/<version>, "
            "e.g. s3://bucket/prefix/ai4i-failure/v0001"
        )
    root, model, version = parts
    return root, model, version


def fetch_model_uri(uri: str, dest: Path | None = None) -> Path:
    """Fetch a registry version (verified) into ``dest`` (default: a new temporary directory)."""
    from shopfloor.registry import open_registry

    root, model, version = split_model_uri(uri)
    target = Path(dest) if dest is not None else Path(tempfile.mkdtemp(prefix="shopfloor-model-")) / version
    return open_registry(root, model_name=model).fetch(version, target)
