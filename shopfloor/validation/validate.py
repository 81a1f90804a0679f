"""Validate a canonical sensor table with the versioned Great Expectations suite.

The suite lives in ``sensor_suite.json`` (GE's own suite JSON, ``suite_version`` in its meta) and
the reference numbers its drift checks compare against live in ``reference_profile.json``; both
are versioned with the code. This module turns a table plus those two files into a
:class:`ValidationReport`, and never lets GE crash on bad input: checks on a column that is
missing or not numeric are skipped and reported, while the root cause fails loudly.

Speed (1,000,000 rows in ~1.7 s, see ``benchmarks/bench_validation.py``): one ephemeral GE
context and batch definition per process (module cache), the parsed suite cached, one
consolidated copy of the table, and ``BASIC`` results with five partial unexpected values.
``SUMMARY`` would add unexpected-index lists and queries that filter the whole table once per
column check (about twice the time) for row indices the report does not need.
"""

from __future__ import annotations

import copy
import functools
import json
from importlib import resources
from typing import Any

import numpy as np
import pandas as pd

from shopfloor.data import schema
from shopfloor.errors import IntegrityError
from shopfloor.validation.profile import (
    TEMPERATURE_DELTA,
    expectation_parameters,
    load_reference_profile,
    temperature_delta,
)
from shopfloor.validation.report import Failure, ValidationReport, jsonable

SUITE_FILE = "sensor_suite.json"
MAX_EXAMPLES = 5
RESULT_FORMAT: dict[str, Any] = {"result_format": "BASIC", "partial_unexpected_count": MAX_EXAMPLES}
#: Meta key tagging each expectation with its position in the suite file (maps results back).
_INDEX_KEY = "shopfloor_index"
#: Expectations that compare numbers: skipped (not crashed) when their column is not numeric.
_NUMERIC_ONLY = frozenset(
    {
        "expect_column_values_to_be_between",
        "expect_column_median_to_be_between",
        "expect_column_kl_divergence_to_be_less_than",
        "expect_column_pair_values_a_to_be_greater_than_b",
    }
)
#: Comparisons with the reference profile: meaningless (and NaN inside GE) on an empty table.
_DISTRIBUTION = frozenset(
    {"expect_column_median_to_be_between", "expect_column_kl_divergence_to_be_less_than"}
)
_DELTA_SOURCES = (schema.PROCESS_TEMPERATURE, schema.AIR_TEMPERATURE)


@functools.cache
def suite_document() -> dict[str, Any]:
    """The shipped suite file as parsed JSON (cached: treat as read-only)."""
    text = (resources.files("shopfloor.validation") / SUITE_FILE).read_text(encoding="utf-8")
    document: dict[str, Any] = json.loads(text)
    return document


def _configs() -> list[dict[str, Any]]:
    """Expectation configs from the suite file, each tagged with its index."""
    configs = copy.deepcopy(suite_document()["expectations"])
    for index, config in enumerate(configs):
        config["meta"] = {**config.get("meta", {}), _INDEX_KEY: index}
    return configs


def _build_suite(configs: list[dict[str, Any]]) -> Any:
    """An ExpectationSuite from configs; GE only logs invalid ones, so insist none were dropped."""
    import great_expectations as gx

    document = suite_document()
    suite = gx.ExpectationSuite(name=document["name"], expectations=configs, meta=dict(document["meta"]))
    if len(suite.expectations) != len(configs):
        raise IntegrityError(
            f"{SUITE_FILE}: GE accepted {len(suite.expectations)} of {len(configs)} expectations "
            "(see the GE log for the invalid configuration)"
        )
    return suite


def load_suite() -> Any:
    """Build the ExpectationSuite from the shipped JSON (fresh object, safe to modify)."""
    return _build_suite(_configs())


@functools.cache
def _full_suite() -> Any:
    return load_suite()


@functools.cache
def _batch_definition() -> Any:
    """One in-memory GE context, pandas data source and whole-dataframe batch definition."""
    import great_expectations as gx
    from great_expectations.data_context.types.base import (
        DataContextConfig,
        InMemoryStoreBackendDefaults,
        ProgressBarsConfig,
    )

    config = DataContextConfig(
        store_backend_defaults=InMemoryStoreBackendDefaults(init_temp_docs_sites=False),
        analytics_enabled=False,
        progress_bars=ProgressBarsConfig(globally=False),
    )
    context = gx.get_context(project_config=config, mode="ephemeral")
    asset = context.data_sources.add_pandas("shopfloor_validation").add_dataframe_asset("sensor_table")
    return asset.add_batch_definition_whole_dataframe("whole_table")


def _columns_of(config: dict[str, Any]) -> list[str]:
    kwargs = config["kwargs"]
    if "column" in kwargs:
        return [kwargs["column"]]
    if "column_A" in kwargs:
        return [kwargs["column_A"], kwargs["column_B"]]
    return list(kwargs.get("column_list", []))


def _column_label(config: dict[str, Any]) -> str | None:
    columns = _columns_of(config)
    return ", ".join(columns) if columns else None


def _declared_numeric(configs: list[dict[str, Any]]) -> set[str]:
    """Columns the suite types as numeric, plus the derived temperature difference."""
    typed = {c["kwargs"]["column"] for c in configs if c["type"] == "expect_column_values_to_be_in_type_list"}
    return typed | {TEMPERATURE_DELTA}


def _is_numeric(series: pd.Series) -> bool:
    return pd.api.types.is_numeric_dtype(series.dtype) and not pd.api.types.is_bool_dtype(series.dtype)


def _column_problems(frame: pd.DataFrame, numeric: set[str]) -> tuple[dict[str, str], dict[str, str]]:
    """Columns that cannot carry their checks: (missing, present but not numeric), with reasons."""
    missing = {c: f"column {c} missing" for c in schema.CANONICAL_COLUMNS if c not in frame.columns}
    not_numeric = {
        c: f"column {c} is not numeric (dtype {frame[c].dtype})"
        for c in sorted(numeric - {TEMPERATURE_DELTA})
        if c in frame.columns and not _is_numeric(frame[c])
    }
    sources = [reason for c in _DELTA_SOURCES for reason in (missing.get(c), not_numeric.get(c)) if reason]
    if sources:
        not_numeric[TEMPERATURE_DELTA] = f"{TEMPERATURE_DELTA} not derivable: " + "; ".join(sources)
    return missing, not_numeric


def _skip_reason(
    config: dict[str, Any], missing: dict[str, str], not_numeric: dict[str, str], n_rows: int
) -> str | None:
    """Why an expectation cannot run on this table (None: run it); the cause fails elsewhere."""
    kind = config["type"]
    if kind in ("expect_column_to_exist", "expect_table_columns_to_match_set"):
        return None
    if n_rows == 0 and kind in _DISTRIBUTION:
        return "no rows to compare with the reference"
    for column in _columns_of(config):
        if column in missing:
            return missing[column]
        if column in not_numeric and kind in _NUMERIC_ONLY:
            return not_numeric[column]
    return None


def _batch_frame(frame: pd.DataFrame, derivable: bool) -> pd.DataFrame:
    """Optional columns set aside (allowed, no content rules), derived difference added.

    The result is one consolidated copy: GE filters the whole table once per column check, and
    an unconsolidated frame would make pandas re-merge its blocks on every one of those copies.
    """
    keep = [c for c in frame.columns if c not in schema.OPTIONAL_COLUMNS]
    delta = temperature_delta(frame).to_numpy() if derivable else np.nan
    return frame[keep].assign(**{TEMPERATURE_DELTA: delta}).copy()


def _dedupe(values: list[Any]) -> list[Any]:
    seen: list[Any] = []
    for value in values:
        if value not in seen:
            seen.append(value)
    return seen[:MAX_EXAMPLES]


def _non_numeric_examples(series: pd.Series) -> list[Any]:
    """Values that do not parse as numbers (the cause of a text dtype), not just any value."""
    parsed = pd.to_numeric(series, errors="coerce")
    bad = series[parsed.isna() & series.notna()]
    return _dedupe(bad.head(1000).tolist())


def _describe(
    config: dict[str, Any], outcome: dict[str, Any], frame: pd.DataFrame, parameters: dict[str, Any]
) -> tuple[Any, str, list[Any]]:
    """Observed value, a short failure message and examples for one GE result."""
    kind, kwargs = config["type"], config["kwargs"]
    column = kwargs.get("column")
    result: dict[str, Any] = outcome.get("result") or {}
    observed = result.get("observed_value")
    examples = _dedupe(list(result.get("partial_unexpected_list") or []))
    count, total = result.get("unexpected_count") or 0, result.get("element_count") or 0
    if "unexpected_count" in result:
        observed = f"{count} unexpected of {total}"
    message = ""
    if kind == "expect_table_columns_to_match_set":
        mismatched = (result.get("details") or {}).get("mismatched") or {}
        missing, unexpected = mismatched.get("missing", []), mismatched.get("unexpected", [])
        parts = [f"missing {missing}" if missing else "", f"unexpected {unexpected}" if unexpected else ""]
        message = ", ".join(part for part in parts if part)
        examples = [*missing, *unexpected][:MAX_EXAMPLES]
    elif kind == "expect_column_to_exist":
        message, examples = "column missing", [column]
    elif kind == "expect_column_values_to_not_be_null":
        message = f"{count} of {total} values are null (examples are row labels)"
        if column in frame.columns:
            examples = [f"row {i}" for i in frame.index[frame[column].isna()][:MAX_EXAMPLES]]
    elif kind == "expect_column_values_to_be_in_type_list":
        message = f"dtype {frame[column].dtype if column in frame.columns else 'n/a'} is not numeric"
        if column in frame.columns:
            examples = _non_numeric_examples(frame[column])
            if not examples:  # every value parses: numbers stored as text
                message += " (numbers stored as text)"
                examples = _dedupe(frame[column].dropna().head(MAX_EXAMPLES).tolist())
    elif kind == "expect_column_values_to_be_between":
        message = f"{count} of {total} values outside [{kwargs['min_value']}, {kwargs['max_value']}]"
    elif kind == "expect_column_values_to_be_in_set":
        message = f"{count} of {total} values not in {kwargs['value_set']}"
    elif kind == "expect_column_values_to_be_unique":
        message = f"{count} of {total} values are duplicates"
    elif kind == "expect_column_pair_values_a_to_be_greater_than_b":
        message = f"{count} of {total} rows have {kwargs['column_A']} <= {kwargs['column_B']}"
    elif kind == "expect_column_kl_divergence_to_be_less_than":
        shown = "infinite (values outside the reference support)" if observed is None else f"{observed:.4g}"
        message = f"KL divergence from reference {shown} > {kwargs['threshold']}"
    elif kind == "expect_column_median_to_be_between":
        low = parameters.get(f"reference_median_min__{column}")
        high = parameters.get(f"reference_median_max__{column}")
        shown_median = f"{observed:.6g}" if isinstance(observed, float) else observed
        message = f"median {shown_median} outside reference band [{low}, {high}]"
    elif kind == "expect_table_row_count_to_be_between":
        message = f"{observed} rows"
    return observed, message, examples


def validate(
    frame: pd.DataFrame, data_version: str = "", profile: dict[str, Any] | None = None
) -> ValidationReport:
    """Validate a canonical table against the shipped suite and a reference profile.

    ``profile`` None uses the shipped ``reference_profile.json``. Never raises for bad data:
    everything wrong with the table is in the returned report.
    """
    document = suite_document()
    configs = _configs()
    missing, not_numeric = _column_problems(frame, _declared_numeric(configs))
    skipped = {
        i: why for i, c in enumerate(configs) if (why := _skip_reason(c, missing, not_numeric, len(frame)))
    }
    suite = (
        _full_suite() if not skipped else _build_suite([c for i, c in enumerate(configs) if i not in skipped])
    )

    parameters = expectation_parameters(profile if profile is not None else load_reference_profile())
    batch = _batch_definition().get_batch(
        batch_parameters={"dataframe": _batch_frame(frame, derivable=TEMPERATURE_DELTA not in not_numeric)}
    )
    suite_result = batch.validate(suite, result_format=RESULT_FORMAT, expectation_parameters=parameters)

    outcomes: dict[int, dict[str, Any]] = {}
    for item in suite_result.results:
        described = item.to_json_dict()
        outcomes[int(described["expectation_config"]["meta"][_INDEX_KEY])] = described

    results: list[dict[str, Any]] = []
    failures: list[Failure] = []
    for index, config in enumerate(configs):
        entry: dict[str, Any] = {
            "expectation": config["type"],
            "column": _column_label(config),
            "why": config.get("meta", {}).get("why", ""),
        }
        if index in skipped:
            entry.update(success=None, skipped=skipped[index], observed_value=None, examples=[], message="")
            results.append(entry)
            continue
        outcome = outcomes[index]
        observed, message, examples = _describe(config, outcome, frame, parameters)
        error = (outcome.get("exception_info") or {}).get("exception_message")
        if error and (outcome.get("exception_info") or {}).get("raised_exception"):
            message = f"could not evaluate: {error.splitlines()[0]}"
        success = bool(outcome.get("success"))
        entry.update(
            success=success, skipped=None, observed_value=jsonable(observed), examples=jsonable(examples)
        )
        entry["message"] = "" if success else message
        results.append(entry)
        if not success:
            failures.append(Failure(config["type"], entry["column"], message, entry["examples"]))

    return ValidationReport(
        success=not failures,
        suite_name=str(document["name"]),
        suite_version=str(document["meta"]["suite_version"]),
        data_version=data_version,
        n_rows=len(frame),
        failures=failures,
        results=results,
    )
