"""Loader: canonical schema, byte-order mark, formats, data version, unreadable input."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from shopfloor.data import loader, schema
from shopfloor.errors import InvalidInputError, NotFoundError, ShopfloorError


def test_embedded_data_is_canonical_and_versioned(real_frame: pd.DataFrame) -> None:
    assert list(real_frame.columns) == list(schema.CANONICAL_COLUMNS)
    assert len(real_frame) == 10_000
    assert real_frame[schema.TARGET].sum() == 339  # published count
    # The file starts with a BOM; the first column must still be named udi, not '\ufeffUDI'.
    assert loader.embedded_path().read_bytes()[:3] == b"\xef\xbb\xbf"
    assert real_frame[schema.ID].iloc[0] == 1


def test_same_content_same_version_across_formats(tmp_path: Path, real_frame: pd.DataFrame) -> None:
    csv, parquet = tmp_path / "d.csv", tmp_path / "d.parquet"
    real_frame.rename(columns=schema.CANONICAL_TO_AI4I).to_csv(csv, index=False)
    real_frame.to_parquet(parquet, index=False)
    v_csv, v_parquet = loader.load(csv).version, loader.load(parquet).version
    assert v_csv == v_parquet == loader.load().version
    changed = real_frame.copy()
    changed.loc[5, schema.TORQUE] += 0.1
    changed.to_parquet(parquet, index=False)
    assert loader.load(parquet).version != v_csv


def test_unknown_columns_are_kept_for_validation(tmp_path: Path, real_frame: pd.DataFrame) -> None:
    path = tmp_path / "d.csv"
    real_frame.rename(columns={schema.TORQUE: "torque"}).to_csv(path, index=False)
    frame = loader.load(path).frame
    assert "torque" in frame.columns and schema.TORQUE not in frame.columns


@pytest.mark.parametrize(
    ("name", "content", "error", "message"),
    [
        ("missing.csv", None, NotFoundError, "data file not found"),
        ("data.xlsx", b"whatever", InvalidInputError, "unsupported file type '.xlsx'"),
        ("broken.parquet", b"not parquet at all", InvalidInputError, "cannot parse broken.parquet"),
        ("empty.csv", b"UDI,Type\n", InvalidInputError, "holds no rows"),
    ],
)
def test_unreadable_input_is_named(
    tmp_path: Path, name: str, content: bytes | None, error: type[ShopfloorError], message: str
) -> None:
    """A missing file is 'not found'; anything that cannot be read as a table is invalid input."""
    path = tmp_path / name
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(error, match=message) as raised:
        loader.load(path)
    assert "\n" not in str(raised.value)


def test_unsupported_scheme() -> None:
    with pytest.raises(InvalidInputError, match="unsupported URI scheme 'http'"):
        loader.load("http://example.invalid/data.csv")


def test_loader_errors_need_no_loader_import() -> None:
    """s3.py raises the same categories without importing the loader (the old import cycle)."""
    import ast
    import inspect

    from shopfloor.data import s3

    tree = ast.parse(inspect.getsource(s3))
    imported = {node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)}
    assert "shopfloor.data.loader" not in imported
    assert not hasattr(loader, "DataLoadError")


def test_check_source_is_cheap_and_names_the_problem(tmp_path: Path) -> None:
    loader.check_source(None)
    loader.check_source(loader.embedded_path())
    (tmp_path / "garbage.parquet").write_bytes(b"not parsed by the pre-flight")
    loader.check_source(tmp_path / "garbage.parquet")  # existence and type only: ingest parses
    with pytest.raises(NotFoundError, match="data file not found"):
        loader.check_source(tmp_path / "nope.csv")
    with pytest.raises(InvalidInputError, match="data path is not a file"):
        loader.check_source(tmp_path)
    (tmp_path / "d.xlsx").write_bytes(b"x")
    with pytest.raises(InvalidInputError, match=r"unsupported file type '\.xlsx'"):
        loader.check_source(tmp_path / "d.xlsx")
    with pytest.raises(InvalidInputError, match="unsupported URI scheme 'ftp'"):
        loader.check_source("ftp://plant/data.csv")


def test_two_columns_meaning_one_field_are_refused(tmp_path: Path, real_frame: pd.DataFrame) -> None:
    """An AI4I name beside its canonical name would become two columns of one name (pyarrow
    then failed with a traceback at ingest)."""
    path = tmp_path / "d.csv"
    real_frame.head(20).assign(**{"Rotational speed [rpm]": 1500}).to_csv(path, index=False)
    both = r"'rotational_speed_rpm' and 'Rotational speed \[rpm\]' both mean 'rotational_speed_rpm'"
    with pytest.raises(InvalidInputError, match=both):
        loader.load(path)
