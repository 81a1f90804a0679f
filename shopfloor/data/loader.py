"""Load sensor tables from a local path or an ``s3://`` URI into the canonical schema.

The loader is deliberately lenient about *content* (wrong units, NaNs, unknown types pass
through) because judging content is validation's job, where it is reported in full. It is
strict about what it cannot read at all: a missing file raises
:class:`~shopfloor.errors.NotFoundError`, an unreadable, unparseable or unsupported one
:class:`~shopfloor.errors.InvalidInputError`, each with the reason.
"""

from __future__ import annotations

import hashlib
import io
import os
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from urllib.parse import urlparse

import pandas as pd

from shopfloor.data import EMBEDDED_DATASET, schema
from shopfloor.errors import InvalidInputError, NotFoundError, bounded, excerpt

__all__ = ["EMBEDDED_DATASET", "Dataset", "canonicalize", "check_source", "data_version", "embedded_path",
           "load", "read_table"]

@dataclass(frozen=True)
class Dataset:
    """A canonical table with the version of its content and where it came from."""

    frame: pd.DataFrame
    version: str
    source: str


def embedded_path() -> Path:
    """Path of the vendored AI4I 2020 CSV (CC BY 4.0, see its README)."""
    return Path(str(resources.files("shopfloor.datasets") / "ai4i2020" / "ai4i2020.csv"))


def canonicalize(frame: pd.DataFrame) -> pd.DataFrame:
    """Rename AI4I columns to canonical names and order known columns first.

    Unknown columns are kept (validation reports them); missing ones are not invented.
    """
    repeated = sorted({str(c) for c in frame.columns[frame.columns.duplicated()]})
    if repeated:
        raise InvalidInputError(f"column {excerpt(repeated[0], 40)} appears more than once: keep one")
    mapping = {c: schema.AI4I_TO_CANONICAL.get(str(c).strip(), str(c)) for c in frame.columns}
    seen: dict[str, str] = {}
    for original, name in mapping.items():
        if name in seen:
            raise InvalidInputError(f"columns {excerpt(seen[name], 40)} and {excerpt(original, 40)} both "
                                    f"mean {name!r}: keep one")
        seen[name] = str(original)
    renamed = frame.rename(columns=mapping)
    order = (*schema.CANONICAL_COLUMNS, *schema.OPTIONAL_COLUMNS)
    known = [c for c in order if c in renamed.columns]
    extra = [c for c in renamed.columns if c not in order]
    return renamed[known + extra]


def data_version(frame: pd.DataFrame) -> str:
    """Content hash of a canonical table: same rows and columns give the same version,
    whatever file format or location they were read from."""
    digest = hashlib.sha256()
    digest.update("\x1f".join(map(str, frame.columns)).encode())
    digest.update(pd.util.hash_pandas_object(frame, index=False).to_numpy().tobytes())
    return "sha256:" + digest.hexdigest()


def _read_bytes(uri: str) -> tuple[bytes, str]:
    """Fetch raw bytes and the object name from a local path or s3:// URI."""
    parsed = urlparse(uri)
    if parsed.scheme == "s3":
        from shopfloor.data.s3 import read_object

        return read_object(parsed.netloc, parsed.path.lstrip("/")), parsed.path
    if parsed.scheme not in ("", "file"):
        raise InvalidInputError(f"unsupported URI scheme {excerpt(parsed.scheme, 20)} in {excerpt(uri)} "
                                "(use a path or s3://)")
    path = Path(parsed.path if parsed.scheme == "file" else uri)
    if not path.exists():
        raise NotFoundError(f"data file not found: {path}")
    if not path.is_file():
        raise InvalidInputError(f"data path is not a file: {path}")
    try:
        return path.read_bytes(), path.name
    except OSError as exc:
        raise InvalidInputError(f"cannot read {path}: {exc.strerror}") from exc


def read_table(raw: bytes, name: str) -> pd.DataFrame:
    """Parse CSV (byte-order mark tolerated) or Parquet by file suffix."""
    suffix = Path(name).suffix.lower()
    try:
        if suffix in (".parquet", ".pq"):
            return pd.read_parquet(io.BytesIO(raw))
        if suffix in (".csv", ".txt", ""):
            return pd.read_csv(io.BytesIO(raw), encoding="utf-8-sig")
    except (ValueError, UnicodeDecodeError, pd.errors.ParserError, OSError) as exc:
        problem = bounded(str(exc), 200)
        raise InvalidInputError(f"cannot parse {name} as {suffix or 'csv'}: {problem}") from exc
    raise InvalidInputError(f"unsupported file type {excerpt(suffix, 20)} for {name} (use .csv or .parquet)")


SUPPORTED_SUFFIXES = (".csv", ".txt", "", ".parquet", ".pq")


def check_source(uri: str | os.PathLike[str] | None = None) -> None:
    """Cheap pre-flight: the source exists, is readable and has a supported type, without
    downloading or parsing it (the pipeline's ingest step does that once)."""
    source = str(uri) if uri is not None else EMBEDDED_DATASET
    if source == EMBEDDED_DATASET:
        return
    parsed = urlparse(source)
    suffix = Path(parsed.path if parsed.scheme else source).suffix.lower()
    if parsed.scheme == "s3":
        from shopfloor.data.s3 import stat_object

        stat_object(parsed.netloc, parsed.path.lstrip("/"))
    elif parsed.scheme not in ("", "file"):
        raise InvalidInputError(f"unsupported URI scheme {excerpt(parsed.scheme, 20)} in {excerpt(source)} "
                                "(use a path or s3://)")
    else:
        path = Path(parsed.path if parsed.scheme == "file" else source)
        if not path.exists():
            raise NotFoundError(f"data file not found: {path}")
        if not path.is_file():
            raise InvalidInputError(f"data path is not a file: {path}")
        if not os.access(path, os.R_OK):
            raise InvalidInputError(f"cannot read {path}: permission denied")
    if suffix not in SUPPORTED_SUFFIXES:
        raise InvalidInputError(
            f"unsupported file type {excerpt(suffix, 20)} for {excerpt(source)} (use .csv or .parquet)")


def load(uri: str | os.PathLike[str] | None = None) -> Dataset:
    """Load a table into the canonical schema and compute its data version.

    ``None`` or ``"embedded:ai4i2020"`` loads the vendored AI4I 2020 dataset.
    """
    source = str(uri) if uri is not None else EMBEDDED_DATASET
    location = str(embedded_path()) if source == EMBEDDED_DATASET else source
    raw, name = _read_bytes(location)
    frame = canonicalize(read_table(raw, name))
    if frame.empty:
        raise InvalidInputError(f"{source} holds no rows")
    return Dataset(frame=frame, version=data_version(frame), source=source)
