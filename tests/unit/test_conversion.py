"""Conversion to LiteRT: equivalence verdicts, the int8 pitfall, golden self-tests, atomicity.

Two tiny Keras models are trained once per module on synthetic data with ~3 % positives:
one on standardised inputs (what the pipeline ships), one with normalisation inside the model
fed raw-scale columns (the pitfall int8 must be caught on).
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from shopfloor import contract
from shopfloor.conversion.convert import (
    ConversionError,
    calibration_rows,
    convert,
)
from shopfloor.conversion.equivalence import (
    check_equivalence,
    equivalence_limits,
    measure_latency,
    self_test,
    write_golden,
)
from shopfloor.inference.runtime import LiteRTModel
from shopfloor.training.export import export_saved_model_with_logits

FLOAT32_FILE, INT8_FILE = contract.litert_file("float32"), contract.litert_file("int8")

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # TF is imported lazily, in the fixtures
N_TRAIN, N_TEST = 6000, 3000


def _labels(logit: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Bernoulli labels with the intercept tuned so ~3 % are positive."""
    shift = np.quantile(logit, 0.97)
    return (rng.random(len(logit)) < 1 / (1 + np.exp(-(logit - shift) * 1.5))).astype(int)


def _fit(model: Any, x: np.ndarray, y: np.ndarray) -> None:
    model.compile(optimizer="adam", loss="binary_crossentropy")
    model.fit(x, y.astype(np.float32), epochs=6, batch_size=64, verbose=0, class_weight={0: 1.0, 1: 5.0})


def _threshold(reference: np.ndarray) -> float:
    """An operating point the reference alone decides: alarm on its top 3 %."""
    return float(np.quantile(reference, 0.97))


@pytest.fixture(scope="module")
def standardised(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    import keras

    keras.utils.set_random_seed(7)
    rng = np.random.default_rng(7)
    x = rng.standard_normal((N_TRAIN + N_TEST, 6)).astype(np.float32)
    y = _labels(3 * x[:, 0] - 2 * x[:, 1] + 1.5 * x[:, 2] * x[:, 3], rng)
    inputs = keras.Input((6,), name="features")
    h = keras.layers.Dense(16, activation="relu")(inputs)
    h = keras.layers.Dense(8, activation="relu")(h)
    model = keras.Model(inputs, keras.layers.Dense(1, activation="sigmoid")(h))
    _fit(model, x[:N_TRAIN], y[:N_TRAIN])
    root = tmp_path_factory.mktemp("standardised")
    export_saved_model_with_logits(model, root / "saved_model")
    files = convert(root / "saved_model", x[:N_TRAIN], root / "tflite")
    x_test, y_test = x[N_TRAIN:], y[N_TRAIN:]
    return {"root": root, "files": files, "x_test": x_test, "y_test": y_test,
            "reference": np.asarray(model(x_test, training=False)).reshape(-1)}


@pytest.fixture(scope="module")
def pitfall(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """Normalisation inside the model, raw kelvin / rpm / wear×torque-scale inputs."""
    import keras

    keras.utils.set_random_seed(11)
    rng = np.random.default_rng(11)
    n = N_TRAIN + N_TEST
    z = rng.standard_normal((n, 3))
    raw = np.column_stack([300 + 2 * z[:, 0], 1500 + 180 * z[:, 1], 10000 + 3000 * z[:, 2]])
    raw = raw.astype(np.float32)
    y = _labels(3 * z[:, 0] + 1.5 * z[:, 2], rng)  # the kelvin column carries most of the signal
    norm = keras.layers.Normalization()
    norm.adapt(raw[:N_TRAIN])
    inputs = keras.Input((3,), name="features")
    h = keras.layers.Dense(16, activation="relu")(norm(inputs))
    model = keras.Model(inputs, keras.layers.Dense(1, activation="sigmoid")(h))
    _fit(model, raw[:N_TRAIN], y[:N_TRAIN])
    root = tmp_path_factory.mktemp("pitfall")
    model.export(str(root / "saved_model"), verbose=False)
    files = convert(root / "saved_model", raw[:N_TRAIN], root / "tflite")
    x_test, y_test = raw[N_TRAIN:], y[N_TRAIN:]
    return {"files": files, "x_test": x_test, "y_test": y_test,
            "reference": np.asarray(model(x_test, training=False)).reshape(-1)}


def _report(data: dict[str, Any], fmt: str) -> Any:
    candidate = LiteRTModel(data["files"][fmt]).predict_proba(data["x_test"])
    return check_equivalence(data["reference"], candidate, data["y_test"], _threshold(data["reference"]),
                             equivalence_limits(fmt), fmt)


def test_convert_writes_both_files_and_nothing_else(standardised: dict[str, Any]) -> None:
    out = standardised["root"] / "tflite"
    assert sorted(p.name for p in out.iterdir()) == sorted([FLOAT32_FILE, INT8_FILE])
    assert not [p for p in standardised["root"].iterdir() if "converting" in p.name]
    int8 = LiteRTModel(standardised["files"]["int8"])
    assert int8.outputs_logits  # converted from the logits signature, sigmoid applied in float
    assert not LiteRTModel(standardised["files"]["float32"]).outputs_logits


def test_float32_conversion_is_equivalent(standardised: dict[str, Any]) -> None:
    report = _report(standardised, "float32")
    assert report.passed, report.reasons
    assert report.max_abs_probability_diff < 1e-5


def test_int8_conversion_of_standardised_inputs_passes_int8_limits(standardised: dict[str, Any]) -> None:
    report = _report(standardised, "int8")
    assert report.passed, report.reasons
    assert report.to_dict()["passed"] is True


def test_int8_with_normalisation_inside_fails_equivalence(pitfall: dict[str, Any]) -> None:
    assert _report(pitfall, "float32").passed  # the float model is fine ...
    report = _report(pitfall, "int8")  # ... int8 of raw-scale inputs is not
    assert report.reference_pr_auc > 0.5, "reference model must be good for the pitfall to mean anything"
    assert not report.passed
    assert any(r.startswith("max_pr_auc_drop") for r in report.reasons), report.reasons
    assert report.pr_auc_drop.value > 0.05


def test_single_row_path_matches_batch_and_survives_resizes(standardised: dict[str, Any]) -> None:
    x = standardised["x_test"][:50]
    for fmt in ("float32", "int8"):
        model = LiteRTModel(standardised["files"][fmt])
        batch = model.predict_proba(x)
        single = np.array([model.predict_one(r) for r in x])
        np.testing.assert_allclose(single, batch, atol=1e-6)
        np.testing.assert_allclose(model.predict_proba(x[:7]), batch[:7], atol=1e-6)
        assert model.predict_one(x[0].astype(np.float64)) == pytest.approx(batch[0], abs=1e-6)
        with pytest.raises(ValueError, match="expected input"):
            model.predict_proba(x[:, :3])


def test_measure_latency_reports_median_p90_and_size(standardised: dict[str, Any]) -> None:
    model = LiteRTModel(standardised["files"]["int8"])
    result = measure_latency(model, standardised["x_test"][0], n=500, warmup=50)
    assert 0 < result["median_us"] <= result["p90_us"]
    assert result["size_bytes"] == standardised["files"]["int8"].stat().st_size
    assert result["median_us"] < 200  # loose sanity bound; the real figure is in the benchmark


def test_golden_self_test_passes_and_catches_swapped_or_corrupt_models(
    standardised: dict[str, Any], tmp_path: Path
) -> None:
    files = standardised["files"]
    model_dir = tmp_path / "edge"
    model_dir.mkdir()
    int8_path = model_dir / INT8_FILE
    shutil.copy(files["int8"], int8_path)
    x = standardised["x_test"][np.argsort(standardised["reference"])[:: len(standardised["x_test"]) // 64]]
    write_golden(model_dir, x, LiteRTModel(int8_path).predict_proba(x), fmt="int8")
    assert sorted(p.name for p in model_dir.iterdir()) == sorted([INT8_FILE, *contract.golden_files("int8")])
    golden = contract.load_golden(model_dir, "int8")  # the contract's strict reader accepts it
    assert (golden.n, golden.n_features) == x.shape
    assert self_test(int8_path, model_dir, fmt="int8")
    assert not self_test(int8_path, model_dir, fmt="float32")  # no golden files for that format

    float_out = LiteRTModel(files["float32"]).predict_proba(x)
    assert np.abs(float_out - LiteRTModel(int8_path).predict_proba(x)).max() > 5e-3  # a real swap
    shutil.copy(files["float32"], int8_path)
    assert not self_test(int8_path, model_dir, fmt="int8")

    data = bytearray(files["int8"].read_bytes())
    int8_path.write_bytes(bytes(data[: len(data) // 2]))
    assert not self_test(int8_path, model_dir, fmt="int8")
    int8_path.unlink()
    assert not self_test(int8_path, model_dir, fmt="int8")


@pytest.mark.parametrize("kind", ["missing", "corrupt"])
def test_bad_saved_model_gives_clear_error_and_writes_nothing(tmp_path: Path, kind: str) -> None:
    saved = tmp_path / "saved_model"
    if kind == "corrupt":
        saved.mkdir()
        (saved / "saved_model.pb").write_bytes(b"\x00not a protobuf\xff" * 10)
    out = tmp_path / "out"
    with pytest.raises(ConversionError, match="saved_model" if kind == "corrupt" else "not found"):
        convert(saved, np.zeros((10, 3), np.float32), out)
    assert not out.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == (["saved_model"] if kind == "corrupt" else [])


def test_failed_conversion_leaves_existing_output_untouched(tmp_path: Path) -> None:
    saved = tmp_path / "saved_model"
    saved.mkdir()
    (saved / "saved_model.pb").write_bytes(b"garbage")
    out = tmp_path / "out"
    out.mkdir()
    (out / INT8_FILE).write_bytes(b"previous model")
    with pytest.raises(ConversionError):
        convert(saved, np.zeros((10, 3), np.float32), out)
    assert [p.name for p in out.iterdir()] == [INT8_FILE]
    assert (out / INT8_FILE).read_bytes() == b"previous model"


def test_check_equivalence_names_each_failed_limit() -> None:
    rng = np.random.default_rng(0)
    y = (rng.random(2000) < 0.05).astype(int)
    ref = np.clip(0.8 * y + 0.2 * rng.random(2000), 0, 1)
    limits = {"min_agreement_ci_low": 0.99, "max_abs_probability_diff": 0.01, "max_pr_auc_drop": 0.01}
    same = check_equivalence(ref, ref.copy(), y, 0.5, limits, "float32", n_resamples=50)
    assert same.passed and same.reasons == [] and same.agreement.value == 1.0
    noisy = check_equivalence(ref, rng.random(2000), y, 0.5, limits, "int8", n_resamples=50)
    assert not noisy.passed
    assert sorted(r.split(":")[0] for r in noisy.reasons) == sorted(limits)
    with pytest.raises(ValueError, match="lack"):
        check_equivalence(ref, ref, y, 0.5, {"max_pr_auc_drop": 0.01}, "int8")


def test_calibration_rows_keep_column_extremes() -> None:
    x = np.random.default_rng(0).standard_normal((5000, 4)).astype(np.float32)
    rows = calibration_rows(x, max_rows=200)
    assert len(rows) == 200
    np.testing.assert_array_equal(rows.min(axis=0), x.min(axis=0))
    np.testing.assert_array_equal(rows.max(axis=0), x.max(axis=0))
