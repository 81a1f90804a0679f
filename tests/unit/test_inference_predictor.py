"""The predictor core: a version directory read through the contract, thread-safe answers,
refusals by name, and no kserve / pandas / TensorFlow / FastAPI anywhere in its imports."""

from __future__ import annotations

import contextlib
import json
import shutil
import subprocess
import sys
import threading
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from shopfloor import contract
from shopfloor.data import schema
from shopfloor.errors import IntegrityError, InvalidInputError, NotFoundError
from shopfloor.inference import codec
from shopfloor.inference.features import Featurizer
from shopfloor.inference.predictor import Predictor
from shopfloor.inference.runtime import LiteRTModel
from tests.fixtures.versions import SCHEMA1_REGISTRY, as_tree_version

#: A real version published by the code before the contract (LiteRT files from real training).
PUBLISHED = SCHEMA1_REGISTRY / "ai4i-failure" / "v0001"
HEAVY = ("kserve", "pandas", "tensorflow", "fastapi", "starlette", "uvicorn", "grpc", "keras", "sklearn")


@pytest.fixture
def version(tmp_path: Path) -> Path:
    """A writable copy of the published version."""
    return Path(shutil.copytree(PUBLISHED, tmp_path / "v0001"))


def _columns(frame: pd.DataFrame) -> codec.Columns:
    return {name: frame[name].to_numpy() for name in schema.INPUT_COLUMNS}


@pytest.mark.parametrize("fmt", contract.LITERT_FORMATS)
def test_answers_what_the_published_model_says(real_frame: pd.DataFrame, fmt: str) -> None:
    predictor = Predictor.load(PUBLISHED, fmt)
    decision = contract.load_decision(PUBLISHED)
    assert (predictor.version, predictor.threshold) == ("v0001", decision.threshold)
    assert predictor.platform == "tflite"
    rows = real_frame.sample(400, random_state=5)
    prediction = predictor.predict(_columns(rows))
    features = Featurizer.from_version(PUBLISHED).transform(rows)
    expected = LiteRTModel(PUBLISHED / contract.litert_file(fmt)).predict_proba(features)
    np.testing.assert_array_equal(prediction.probability, expected)
    np.testing.assert_array_equal(prediction.predicted, expected >= decision.threshold)
    assert prediction.predicted.any() and not prediction.predicted.all()


def test_without_a_format_it_runs_the_version_s_own(version: Path, real_frame: pd.DataFrame) -> None:
    """No int8 assumed: an MLP version runs int8, a tree version float32 (its only LiteRT
    file), also where int8 is preferred; a preference the version has wins."""
    mlp = Predictor.load(PUBLISHED)
    assert (mlp.fmt, mlp.platform) == ("int8", "tflite")
    assert Predictor.load(PUBLISHED, prefer="float32").fmt == "float32"
    tree = as_tree_version(version)
    rows = real_frame.sample(200, random_state=3)
    expected = LiteRTModel(tree / contract.litert_file("float32")).predict_proba(
        Featurizer.from_version(tree).transform(rows))
    for loaded in (Predictor.load(tree), Predictor.load(tree, prefer="int8")):
        assert (loaded.fmt, loaded.platform) == ("float32", "tflite")
        np.testing.assert_array_equal(loaded.predict(_columns(rows)).probability, expected)


def test_an_explicit_format_the_version_lacks_is_refused_naming_what_it_has(version: Path) -> None:
    tree = as_tree_version(version)
    with pytest.raises(NotFoundError) as refused:
        Predictor.load(tree, "int8")
    assert str(refused.value) == "version v0001 (hist-gbt) has no int8 model; it has saved_model, float32"
    manifest = contract.load_manifest(tree)
    no_litert = replace(manifest, formats=("saved_model",))
    (tree / contract.MANIFEST).write_text(contract.dumps(no_litert.to_dict()))
    with pytest.raises(NotFoundError) as refused_too:
        Predictor.load(tree)
    assert str(refused_too.value) == "version v0001 has no LiteRT model to run; it has saved_model (name one)"


def test_a_whole_v2_exchange(real_frame: pd.DataFrame) -> None:
    rows = real_frame.head(3)
    body = {"id": "q", "inputs": [
        {"name": n, "datatype": "BYTES" if n == schema.PRODUCT_TYPE else "FP64", "shape": [3],
         "data": rows[n].tolist()} for n in schema.INPUT_COLUMNS]}
    predictor = Predictor.load(PUBLISHED)
    answer, json_length, prediction = predictor.answer_v2(codec.parse_request(json.dumps(body).encode()), "m")
    document = json.loads(answer)
    assert json_length is None and document["id"] == "q" and document["model_version"] == "v0001"
    outputs = {o["name"]: o["data"] for o in document["outputs"]}
    assert outputs[codec.PREDICTED] == prediction.predicted.tolist()
    served = np.float32(outputs[codec.PROBABILITY])
    np.testing.assert_array_equal(served, prediction.probability.astype(np.float32))


def test_concurrent_threads_each_get_their_own_answer(real_frame: pd.DataFrame) -> None:
    """One interpreter, many threads, batches of different sizes (each call resizes the
    interpreter): every thread must get the answer for its own rows."""
    predictor = Predictor.load(PUBLISHED)
    batches = [_columns(real_frame.iloc[i * 37 : i * 37 + 1 + i % 9]) for i in range(16)]
    expected = [predictor.predict(b).probability for b in batches]
    wrong: list[str] = []
    start = threading.Barrier(8)

    def work(worker: int) -> None:
        start.wait()
        for round_ in range(300):
            i = (worker * 5 + round_) % len(batches)
            got = predictor.predict(batches[i]).probability
            if got.shape != expected[i].shape or not np.array_equal(got, expected[i]):
                wrong.append(f"worker {worker} round {round_} batch {i}")

    threads = [threading.Thread(target=work, args=(w,)) for w in range(8)]
    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)  # switch threads often, so an unlocked interpreter shows its race
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    finally:
        sys.setswitchinterval(interval)
    assert not wrong, wrong[:5]


class _SharedStateModel:
    """Works like a LiteRT interpreter: the input is stored, the model runs, the output is read
    back, as separate steps on state shared by every caller. Another thread can run between
    the steps (``sleep(0)`` gives it the chance every time, where the real one gets it rarely)."""

    def __init__(self) -> None:
        self._input: np.ndarray | None = None

    def __call__(self, features: np.ndarray) -> np.ndarray:
        self._input = features
        time.sleep(0)
        assert self._input is not None
        return 1.0 / (1.0 + np.exp(-self._input[:, 3].astype(np.float64)))


@pytest.mark.parametrize("locked", [True, False], ids=["predictor", "no-lock-control"])
def test_the_lock_keeps_a_shared_model_s_answers_apart(real_frame: pd.DataFrame, locked: bool) -> None:
    """With the predictor's lock every thread gets the answer for its own rows; the control
    without it shows the race the lock is there for."""
    featurizer = Featurizer.from_version(PUBLISHED)
    predictor = Predictor(featurizer, _SharedStateModel(), contract.load_decision(PUBLISHED), version="v1",
                          fmt="float32")
    if not locked:
        predictor._lock = contextlib.nullcontext()  # type: ignore[assignment]
    batches = [_columns(real_frame.iloc[i * 11 : i * 11 + 1 + i % 5]) for i in range(8)]
    expected = [1.0 / (1.0 + np.exp(-featurizer.transform(b)[:, 3].astype(np.float64))) for b in batches]
    wrong: list[int] = []

    def work(worker: int) -> None:
        for _ in range(200):
            got = predictor.predict(batches[worker]).probability
            if got.shape != expected[worker].shape or not np.array_equal(got, expected[worker]):
                wrong.append(worker)

    threads = [threading.Thread(target=work, args=(w,)) for w in range(len(batches))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert (not wrong) == locked, f"{len(wrong)} wrong answers"


def _break_manifest(v: Path) -> None:
    (v / contract.MANIFEST).unlink()


def _break_decision(v: Path) -> None:
    (v / contract.DECISION).write_text('{"threshold": "high"}')


def _other_features(v: Path) -> None:
    spec = contract.FeatureSpec(("torque_nm",), (40.0,), (10.0,))
    (v / contract.FEATURE_SPEC).write_text(contract.dumps(spec.to_dict()))


def _drop_int8(v: Path) -> None:
    (v / contract.litert_file("int8")).unlink()


def _garbage_int8(v: Path) -> None:
    (v / contract.litert_file("int8")).write_bytes(b"not a flatbuffer" * 10)


def _other_inputs(v: Path) -> None:
    decision = contract.Decision(threshold=0.5, inputs=("torque_nm",))
    (v / contract.DECISION).write_text(contract.dumps(decision.to_dict()))


@pytest.mark.parametrize(
    ("damage", "error", "needle"),
    [
        (_break_manifest, IntegrityError, "manifest.json is missing"),
        (_break_decision, IntegrityError, "decision.json: field 'threshold'"),
        (_other_features, IntegrityError, "not the ones this code computes"),
        (_drop_int8, IntegrityError, "int8 model missing"),
        (_garbage_int8, IntegrityError, "model_int8.tflite is not a LiteRT model"),
        (_other_inputs, IntegrityError, "the model takes inputs ['torque_nm']"),
    ],
    ids=lambda v: getattr(v, "__name__", None),
)
def test_refuses_a_version_that_does_not_hold_together(version: Path, damage, error, needle: str) -> None:
    damage(version)
    with pytest.raises(error) as refused:
        Predictor.load(version)
    assert needle in str(refused.value)


def test_refuses_unknown_formats_missing_directories_and_tensorflow_formats(tmp_path: Path) -> None:
    with pytest.raises(InvalidInputError, match=r"model format 'onnx' is not one of \['auto', 'int8'"):
        Predictor.load(PUBLISHED, "onnx")
    with pytest.raises(NotFoundError, match="not found"):
        Predictor.load(tmp_path / "v9999")
    with pytest.raises(InvalidInputError, match="needs a model loader"):
        Predictor.load(PUBLISHED, "saved_model")
    opened: list[Path] = []

    def loader(path: Path):
        opened.append(path)
        return lambda x: np.full(len(x), 0.9)

    loaded = Predictor.load(PUBLISHED, "saved_model", model_loader=loader)
    assert opened == [PUBLISHED / contract.SAVED_MODEL_DIR] and loaded.platform == "tensorflow_savedmodel"
    row = pd.DataFrame({n: ["L"] if n == schema.PRODUCT_TYPE else [1.0] for n in schema.INPUT_COLUMNS})
    assert loaded.predict(_columns(row)).predicted.tolist() == [True]


def test_the_core_imports_no_serving_framework_pandas_or_tensorflow() -> None:
    """The edge runtime and any other adapter get the core without kserve, pandas, TensorFlow,
    FastAPI: import every module of the package and answer a request in a fresh interpreter."""
    script = f"""
import json, pkgutil, importlib, sys
import shopfloor.inference as core
for info in pkgutil.iter_modules(core.__path__, "shopfloor.inference."):
    importlib.import_module(info.name)
from shopfloor.inference import Predictor, codec
body = json.dumps({{"inputs": [
    {{"name": "product_type", "datatype": "BYTES", "shape": [1], "data": ["L"]}},
    *[{{"name": n, "datatype": "FP64", "shape": [1], "data": [v]}} for n, v in (
        ("air_temperature_k", 298.1), ("process_temperature_k", 308.6), ("rotational_speed_rpm", 1551.0),
        ("torque_nm", 42.8), ("tool_wear_min", 0.0))]]}}).encode()
answer, _, _ = Predictor.load({str(PUBLISHED)!r}).answer_v2(codec.parse_request(body), "m")
assert json.loads(answer)["outputs"][0]["name"] == "failure_probability"
print(json.dumps(sorted({{m.split(".")[0] for m in sys.modules}} & set({list(HEAVY)!r}))))
"""
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120,
                            check=False)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout.strip().splitlines()[-1]) == []
