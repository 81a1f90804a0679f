"""A small client for one edge runtime: health, metadata, inference and the admin API.

Standard library only (``urllib``), so the pusher, the fleet manager and tests need nothing
beyond shopfloor itself. Every failure is a :mod:`shopfloor.errors` category with one line:
an unreachable runtime is :class:`~shopfloor.errors.ExternalServiceError`; a refused version
keeps the category the runtime reported (integrity, gate failed, ...).
"""

from __future__ import annotations

import io
import json
import tarfile
import urllib.error
import urllib.request
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from shopfloor import contract, settings
from shopfloor.contract import SignatureDoc
from shopfloor.errors import (
    ConflictError,
    ExternalServiceError,
    GateFailedError,
    IntegrityError,
    InvalidInputError,
    NotFoundError,
    ShopfloorError,
    bounded,
)

#: Largest answer read from a runtime (status and metadata are small; infer is bounded by batch).
MAX_RESPONSE_BYTES = 16 * 1024 * 1024
_KINDS: dict[str, type[ShopfloorError]] = {
    "integrity": IntegrityError,
    "gate_failed": GateFailedError,
    "not_found": NotFoundError,
    "conflict": ConflictError,
    "invalid_input": InvalidInputError,
}
_STATUS: dict[int, type[ShopfloorError]] = {
    400: InvalidInputError,
    401: InvalidInputError,
    404: NotFoundError,
    409: ConflictError,
    413: InvalidInputError,
    422: IntegrityError,
}


class RuntimeClient:
    """Talk to the edge runtime at ``url`` (``http://127.0.0.1:8090``); ``token`` for admin calls."""

    def __init__(
        self,
        url: str,
        token: str | bytes | None = None,
        *,
        model_name: str = settings.DEFAULT_MODEL_NAME,
        timeout: float = 30.0,
    ) -> None:
        self.url = url.rstrip("/")
        self.token = token.decode() if isinstance(token, bytes) else token
        self.model_name = model_name
        self.timeout = timeout

    @classmethod
    def with_token_file(cls, url: str, token_file: Path, **kwargs: Any) -> RuntimeClient:
        return cls(url, read_token(token_file), **kwargs)

    def _call(
        self,
        method: str,
        path: str,
        body: bytes | None = None,
        *,
        admin: bool = False,
        content_type: str = "application/json",
        timeout: float | None = None,
    ) -> tuple[int, Any]:
        headers = {"content-type": content_type} if body is not None else {}
        if admin and self.token:
            headers["authorization"] = f"Bearer {self.token}"
        request = urllib.request.Request(self.url + path, data=body, method=method, headers=headers)
        try:
            with urllib.request.urlopen(request, timeout=timeout or self.timeout) as response:
                return response.status, _decode(response.read(MAX_RESPONSE_BYTES + 1))
        except urllib.error.HTTPError as exc:
            with exc:
                document = _decode(exc.read(MAX_RESPONSE_BYTES + 1))
            message = document.get("error") if isinstance(document, dict) else None
            if exc.code == 503 and path.endswith("/ready"):
                return exc.code, document
            kind = _KINDS.get(document.get("kind", "")) if isinstance(document, dict) else None
            category = kind or _STATUS.get(exc.code, ExternalServiceError)
            hint = " (check the admin token)" if exc.code == 401 else ""
            raise category(
                bounded(f"edge runtime {self.url}: {message or exc.reason} (HTTP {exc.code}){hint}")
            ) from None
        except (urllib.error.URLError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            raise ExternalServiceError(f"edge runtime {self.url} is not reachable: {reason}") from None

    # -- data plane --------------------------------------------------------------------------
    def health(self) -> bool:
        """Ready (a version is active and loaded); False when live but not ready."""
        status, _ = self._call("GET", "/v2/health/ready")
        return status == 200

    def metadata(self) -> dict[str, Any]:
        """The model's V2 metadata (``versions`` holds the active version)."""
        _, document = self._call("GET", f"/v2/models/{self.model_name}")
        return dict(document)

    def infer(self, rows: Mapping[str, Sequence[Any]] | Sequence[Mapping[str, Any]]) -> dict[str, Any]:
        """Readings (columns by field, or a list of row dicts) -> the V2 response document."""
        columns: dict[str, list[Any]]
        if isinstance(rows, Mapping):
            columns = {name: list(values) for name, values in rows.items()}
        else:
            names = list(rows[0]) if rows else []
            columns = {name: [row[name] for row in rows] for name in names}
        inputs = [
            {
                "name": name,
                "datatype": "BYTES" if values and isinstance(values[0], str) else "FP64",
                "shape": [len(values)],
                "data": values,
            }
            for name, values in columns.items()
        ]
        _, document = self._call(
            "POST", f"/v2/models/{self.model_name}/infer", json.dumps({"inputs": inputs}).encode()
        )
        return dict(document)

    # -- admin -------------------------------------------------------------------------------
    def status(self) -> dict[str, Any]:
        _, document = self._call("GET", "/admin/v1/status", admin=True)
        return dict(document)

    def upload(
        self,
        version_dir: Path,
        signatures: Sequence[SignatureDoc],
        activate: bool = True,
        timeout: float = 300.0,
    ) -> dict[str, Any]:
        """Send a version and its signatures; the runtime verifies, self-tests and (optionally) activates."""
        body = pack_version(Path(version_dir), signatures)
        flag = "true" if activate else "false"
        _, document = self._call(
            "POST",
            f"/admin/v1/versions?activate={flag}",
            body,
            admin=True,
            content_type="application/x-tar",
            timeout=timeout,
        )
        return dict(document)

    def activate(self, version: str) -> dict[str, Any]:
        _, document = self._call(
            "POST", "/admin/v1/activate", json.dumps({"version": version}).encode(), admin=True
        )
        return dict(document)

    def rollback(self) -> dict[str, Any]:
        _, document = self._call("POST", "/admin/v1/rollback", b"{}", admin=True)
        return dict(document)


def read_token(path: Path) -> bytes:
    """The admin bearer token from ``path``: one non-empty line, at least 16 characters."""
    try:
        token = Path(path).read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        raise NotFoundError(f"admin token file not found: {path}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise InvalidInputError(f"cannot read admin token file {path}: {exc}") from None
    if len(token) < 16 or any(c.isspace() for c in token):
        raise InvalidInputError(
            f"admin token file {path} must hold one token of at least 16 characters without spaces"
        )
    return token.encode()


def pack_version(version_dir: Path, signatures: Sequence[SignatureDoc], version: str | None = None) -> bytes:
    """A version directory plus its signature documents as an uncompressed tar (admin upload body).

    Layout: ``<version>/<files>`` and ``signatures/<key_id>.json``.
    """
    directory = Path(version_dir)
    name = version or contract.load_manifest(directory).version
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for path in sorted(directory.rglob("*")):
            if path.is_file():
                tar.add(path, arcname=f"{name}/{path.relative_to(directory).as_posix()}", recursive=False)
        for doc in signatures:
            data = contract.dumps(doc.to_dict()).encode()
            info = tarfile.TarInfo(f"{contract.SIGNATURES_DIR}/{doc.file_name}")
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def _decode(data: bytes) -> Any:
    if len(data) > MAX_RESPONSE_BYTES:
        raise ExternalServiceError(f"edge runtime answered more than {MAX_RESPONSE_BYTES} bytes")
    try:
        return json.loads(data) if data else {}
    except ValueError:
        return {"error": bounded(data.decode("utf-8", "replace"), 200)}
