"""Data validation: the shipped suite and profile, bad inputs, drift, and the written report."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from shopfloor.data import loader, schema
from shopfloor.validation import (
    Failure,
    ValidationReport,
    build_reference_profile,
    load_reference_profile,
    load_suite,
    validate,
    write_report,
)
from shopfloor.validation.validate import suite_document


@pytest.fixture(scope="module")
def real() -> pd.DataFrame:
    return loader.load().frame


@pytest.fixture(scope="module")
def clean_report(real: pd.DataFrame) -> ValidationReport:
    return validate(real, data_version="sha256:test")


def _failure(report: ValidationReport, expectation: str, column: str | None) -> Failure:
    matches = [f for f in report.failures if f.expectation == expectation and f.column == column]
    assert matches, f"no {expectation}({column}) failure in: {report.reason()}"
    return matches[0]


def _bootstrap(frame: pd.DataFrame, n: int, seed: int) -> pd.DataFrame:
    """Fresh i.i.d. rows from the real file's distribution, with new unique ids."""
    rows = np.random.default_rng(seed).integers(0, len(frame), n)
    sample = frame.iloc[rows].reset_index(drop=True)
    sample[schema.ID] = np.arange(1, n + 1)
    return sample


# --- the shipped suite and profile -----------------------------------------------------------


def test_clean_real_file_passes(clean_report: ValidationReport, real: pd.DataFrame) -> None:
    assert clean_report.success, clean_report.reason()
    assert clean_report.failures == []
    assert clean_report.n_rows == len(real)
    assert clean_report.data_version == "sha256:test"
    assert clean_report.suite_version == suite_document()["meta"]["suite_version"]
    assert len(clean_report.results) == len(suite_document()["expectations"])
    assert all(r["success"] is True for r in clean_report.results)
    assert clean_report.reason().startswith("validation passed")


def test_shipped_profile_equals_profile_of_embedded_data(real: pd.DataFrame) -> None:
    assert load_reference_profile() == build_reference_profile(real)


def test_suite_file_builds_every_expectation() -> None:
    suite = load_suite()
    assert len(suite.expectations) == len(suite_document()["expectations"])
    assert suite.meta["suite_version"]


def test_suite_file_agrees_with_schema() -> None:
    expectations = suite_document()["expectations"]

    def kwargs_of(kind: str) -> list[dict]:
        return [e["kwargs"] for e in expectations if e["type"] == kind]

    ranges = {
        k["column"]: (k["min_value"], k["max_value"]) for k in kwargs_of("expect_column_values_to_be_between")
    }
    assert ranges == {r.column: (r.low, r.high) for r in schema.PHYSICAL_RANGES}
    assert {k["column"] for k in kwargs_of("expect_column_to_exist")} == set(schema.CANONICAL_COLUMNS)
    assert {k["column"] for k in kwargs_of("expect_column_values_to_not_be_null")} == set(
        schema.CANONICAL_COLUMNS
    )
    value_sets = {k["column"]: k["value_set"] for k in kwargs_of("expect_column_values_to_be_in_set")}
    assert value_sets[schema.PRODUCT_TYPE] == list(schema.PRODUCT_TYPES)
    assert all(value_sets[c] == [0, 1] for c in schema.LABEL_COLUMNS)


# --- bad input -------------------------------------------------------------------------------


def _set(column: str, rows: list[int], value: Any) -> Callable[[pd.DataFrame], pd.DataFrame]:
    def corrupt(frame: pd.DataFrame) -> pd.DataFrame:
        bad = frame.copy()
        bad.loc[rows, column] = value
        return bad

    return corrupt


def _celsius(frame: pd.DataFrame) -> pd.DataFrame:
    bad = frame.copy()
    bad[schema.AIR_TEMPERATURE] -= 273.15
    bad[schema.PROCESS_TEMPERATURE] -= 273.15
    return bad


BAD_INPUTS = {
    "missing column": (
        lambda f: f.drop(columns=schema.TORQUE),
        "expect_column_to_exist",
        "torque_nm",
        "torque_nm",
    ),
    "renamed column": (
        lambda f: f.rename(columns={schema.TORQUE: "torque"}),
        "expect_table_columns_to_match_set",
        None,
        "torque",
    ),
    "celsius": (_celsius, "expect_column_values_to_be_between", "air_temperature_k", 24.95),
    "nan in sensor": (
        _set(schema.TORQUE, [3, 7], np.nan),
        "expect_column_values_to_not_be_null",
        "torque_nm",
        "row 3",
    ),
    "unknown product type": (
        _set(schema.PRODUCT_TYPE, [5], "X"),
        "expect_column_values_to_be_in_set",
        "product_type",
        "X",
    ),
    "negative speed": (
        _set(schema.ROTATIONAL_SPEED, [9], -120),
        "expect_column_values_to_be_between",
        "rotational_speed_rpm",
        -120,
    ),
    "duplicate udi": (_set(schema.ID, [10, 11], 1), "expect_column_values_to_be_unique", "udi", 1),
}


@pytest.mark.parametrize("case", BAD_INPUTS)
def test_bad_input_fails_naming_the_problem(real: pd.DataFrame, case: str) -> None:
    corrupt, expectation, column, example = BAD_INPUTS[case]
    report = validate(corrupt(real))
    assert not report.success
    failure = _failure(report, expectation, column)
    assert any(
        e == pytest.approx(example) if isinstance(example, float) else e == example for e in failure.examples
    )
    assert expectation in report.reason()
    # GE evaluated everything it ran; nothing crashed into an exception result.
    assert not any(f.message.startswith("could not evaluate") for f in report.failures)


def test_missing_column_skips_its_checks_and_names_it(real: pd.DataFrame) -> None:
    report = validate(real.drop(columns=schema.TORQUE))
    table = _failure(report, "expect_table_columns_to_match_set", None)
    assert "missing ['torque_nm']" in table.message
    skipped = [r for r in report.results if r["skipped"]]
    assert skipped, "checks on the missing column should be reported as skipped"
    assert all(r["column"] == schema.TORQUE and "torque_nm missing" in r["skipped"] for r in skipped)
    assert all(r["success"] is None for r in skipped)


def test_renamed_column_reports_missing_and_unexpected(real: pd.DataFrame) -> None:
    report = validate(real.rename(columns={schema.TORQUE: "torque"}))
    message = _failure(report, "expect_table_columns_to_match_set", None).message
    assert "missing ['torque_nm']" in message and "unexpected ['torque']" in message


def test_non_numeric_value_in_numeric_column(real: pd.DataFrame, tmp_path: Path) -> None:
    """A text cell in a CSV turns the column to text; report the cell, skip numeric checks."""
    raw = pd.read_csv(loader.embedded_path())
    raw["Torque [Nm]"] = raw["Torque [Nm]"].astype(object)
    raw.loc[42, "Torque [Nm]"] = "12,5"  # a decimal comma
    path = tmp_path / "bad.csv"
    raw.to_csv(path, index=False)
    report = validate(loader.load(path).frame)
    assert not report.success
    failure = _failure(report, "expect_column_values_to_be_in_type_list", schema.TORQUE)
    assert failure.examples == ["12,5"]
    skipped = {r["expectation"] for r in report.results if r["skipped"]}
    assert "expect_column_values_to_be_between" in skipped
    assert not any(f.message.startswith("could not evaluate") for f in report.failures)


def test_optional_machine_id_allowed_but_unknown_column_not(real: pd.DataFrame) -> None:
    assert validate(real.assign(**{schema.MACHINE_ID: "m-1"})).success
    report = validate(real.assign(extra=1))
    assert "unexpected ['extra']" in _failure(report, "expect_table_columns_to_match_set", None).message


def test_physics_process_hotter_than_air(real: pd.DataFrame) -> None:
    report = validate(_set(schema.PROCESS_TEMPERATURE, [0], 290.0)(real))
    failure = _failure(
        report, "expect_column_pair_values_a_to_be_greater_than_b", "process_temperature_k, air_temperature_k"
    )
    assert "1 of 10000" in failure.message


def test_empty_table_fails_without_raising(real: pd.DataFrame) -> None:
    report = validate(real.iloc[:0])
    assert not report.success
    _failure(report, "expect_table_row_count_to_be_between", None)
    # With no rows the comparisons with the reference are meaningless: skipped, never failed.
    distribution = {"expect_column_median_to_be_between", "expect_column_kl_divergence_to_be_less_than"}
    compared = [r for r in report.results if r["expectation"] in distribution]
    assert len(compared) >= 6
    assert all(r["skipped"] == "no rows to compare with the reference" and r["success"] is None
               for r in compared)
    assert not {f.expectation for f in report.failures} & distribution
    assert not any(f.message.startswith("could not evaluate") for f in report.failures)


# --- distribution checks ---------------------------------------------------------------------


def _offset(frame: pd.DataFrame, kelvin: float = 3.0) -> pd.DataFrame:
    shifted = frame.copy()
    shifted[schema.PROCESS_TEMPERATURE] += kelvin
    return shifted


def test_process_temperature_offset_on_real_file_fails(real: pd.DataFrame) -> None:
    report = validate(_offset(real))
    failure = _failure(report, "expect_column_median_to_be_between", "temperature_delta_k")
    assert "12.8" in failure.message
    # Only drift checks fail: the shifted data is still schema-valid and physically plausible.
    assert {f.expectation for f in report.failures} == {"expect_column_median_to_be_between"}


@pytest.mark.parametrize("n_rows", [1_000, 1_000_000])
def test_distribution_checks_hold_at_any_size(real: pd.DataFrame, n_rows: int) -> None:
    fresh = _bootstrap(real, n_rows, seed=n_rows)
    report = validate(fresh)
    assert report.success, report.reason()
    assert not validate(_offset(fresh)).success


@pytest.mark.parametrize("start", [0, 4_000, 5_000, 9_000])
def test_contiguous_windows_of_real_file_pass(real: pd.DataFrame, start: int) -> None:
    """Temperatures random-walk, so a short window sits off-centre; that is not drift."""
    report = validate(real.iloc[start : start + 1_000])
    assert report.success, report.reason()


def test_fresh_simulated_data_passes_and_offset_scenario_fails() -> None:
    simulator = pytest.importorskip("shopfloor.data.simulator")
    for n_rows, seed in ((1_000, 11), (50_000, 12)):
        fresh = simulator.simulate(n_rows, n_machines=1, seed=seed)
        report = validate(fresh)
        assert report.success, report.reason()
        drifted = simulator.simulate(n_rows, n_machines=1, seed=seed, scenario="process_temp_offset_3k")
        assert not validate(drifted).success


def test_profile_argument_replaces_shipped_reference(real: pd.DataFrame) -> None:
    shifted = _offset(real)
    assert validate(shifted, profile=build_reference_profile(shifted)).success
    assert not validate(real, profile=build_reference_profile(shifted)).success


# --- report ----------------------------------------------------------------------------------


def test_reason_is_one_line_naming_expectation_column_and_examples(real: pd.DataFrame) -> None:
    report = validate(_celsius(real))
    reason = report.reason()
    assert "\n" not in reason
    assert reason.startswith("validation failed: ")
    assert "expect_column_values_to_be_between(air_temperature_k)" in reason
    assert "e.g. [24.95" in reason


def test_write_report_json_and_html(real: pd.DataFrame, tmp_path: Path) -> None:
    report = validate(_set(schema.PRODUCT_TYPE, [5], "<X>")(real), data_version="v1")
    json_path, html_path = tmp_path / "out" / "validation.json", tmp_path / "out" / "validation.html"
    json_path.parent.mkdir()
    json_path.write_text("stale")
    write_report(report, json_path, html_path)

    stored = json.loads(json_path.read_text())
    assert stored["success"] is False and stored["data_version"] == "v1"
    assert len(stored["results"]) == len(report.results)
    assert stored["failures"][0]["examples"] == ["<X>"]
    page = html_path.read_text()
    assert page.count("<tr>") == len(report.results) + 1
    assert "FAIL" in page and "&lt;X&gt;" in page and "<X>" not in page
    assert sorted(p.name for p in json_path.parent.iterdir()) == ["validation.html", "validation.json"]
    assert json_path.stat().st_mode & 0o044 == 0o044, "reports must be readable by other users"


def test_to_dict_is_strict_json(clean_report: ValidationReport) -> None:
    text = json.dumps(clean_report.to_dict(), allow_nan=False)
    assert json.loads(text)["suite_name"] == clean_report.suite_name
