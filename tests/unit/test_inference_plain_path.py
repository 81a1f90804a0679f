"""The one-pass path for common JSON requests must be invisible: for every body, the same
columns, features and response bytes as the strict path, and no answer where the strict
path refuses (the strict path then words the refusal)."""

from __future__ import annotations

import copy
import json
import random
from typing import Any

import numpy as np
import orjson
import pandas as pd
import pytest

from shopfloor.data import schema
from shopfloor.errors import InvalidInputError
from shopfloor.inference import codec
from shopfloor.inference.features import FEATURE_NAMES, Featurizer
from shopfloor.inference.predictor import Predictor
from tests.fixtures.versions import SCHEMA1_REGISTRY

PUBLISHED = SCHEMA1_REGISTRY / "ai4i-failure" / "v0001"


def _document(rows: pd.DataFrame, rng: random.Random) -> dict[str, Any]:
    """A valid request with the variations clients send: order, [N] or [N, 1], ints, FP32, id."""
    names = list(schema.INPUT_COLUMNS)
    rng.shuffle(names)
    inputs = []
    for name in names:
        data = rows[name].tolist()
        datatype = "BYTES" if name == schema.PRODUCT_TYPE else rng.choice(["FP64", "FP32"])
        if name != schema.PRODUCT_TYPE and rng.random() < 0.3:
            data = [round(v) for v in data]
            datatype = rng.choice(["INT32", "INT64", "FP64"])
        elif name != schema.PRODUCT_TYPE and rng.random() < 0.2 and data:
            data = [*data[:-1], round(data[-1])]  # mixed ints and floats
        shape = [len(data), 1] if rng.random() < 0.3 else [len(data)]
        inputs.append({"name": name, "datatype": datatype, "shape": shape, "data": data})
    document: dict[str, Any] = {"inputs": inputs}
    if rng.random() < 0.5:
        document["id"] = rng.choice(["", "q-1", "é\"\\\n", "x" * 256])
    return document


def _damaged(document: dict[str, Any], rng: random.Random) -> dict[str, Any]:
    """One small change, valid or not: the plain path must agree with the strict one either way."""
    doc = copy.deepcopy(document)
    item = rng.choice(doc["inputs"])
    change = rng.randrange(16)
    if change == 0:
        item["data"][0] = True
    elif change == 1:
        item["data"][0] = "1.5"
    elif change == 2:
        item["shape"] = [len(item["data"]) + 1]
    elif change == 3:
        item["shape"] = [True]
    elif change == 4:
        item["name"] = "nope"
    elif change == 5:
        item["datatype"] = "INT32"
        item["data"][0] = 1.5
    elif change == 6:
        item["parameters"] = {}
    elif change == 7:
        doc["outputs"] = [{"name": codec.PROBABILITY}]
    elif change == 8:
        doc["id"] = 7
    elif change == 9:
        doc["inputs"].append(copy.deepcopy(item))
    elif change == 10:
        item["data"] = [[v] for v in item["data"]]
    elif change == 11:
        item["data"][0] = None
    elif change == 12:
        item["data"][0] = 2**64
    elif change == 13:
        doc["inputs"] = doc["inputs"][1:]
    elif change == 14:
        item["datatype"] = "BOOL"
    else:
        doc["parameters"] = {"binary_data_output": False}
    return doc


def _strict(body: bytes, predictor: Predictor) -> tuple[bytes, int | None] | InvalidInputError:
    try:
        answer, json_length, _ = predictor.answer_v2(codec.parse_request(body), "ai4i-failure")
    except InvalidInputError as exc:
        return exc
    return answer, json_length


@pytest.mark.parametrize("decision_datatype", ["BOOL", "INT32"])
def test_plain_and_strict_paths_give_the_same_bytes_or_the_same_refusal(
    real_frame: pd.DataFrame, decision_datatype: str
) -> None:
    rng = random.Random(11)
    predictor = Predictor.load(PUBLISHED, max_batch=64)
    plain_answers = 0
    for _ in range(300):
        rows = real_frame.sample(rng.choice([1, 1, 2, 7, 64]), random_state=rng.randrange(10**6))
        document = _document(rows, rng)
        damaged = rng.random() < 0.5
        if damaged:
            document = _damaged(document, rng)
        body = json.dumps(document).encode() if damaged or rng.random() < 0.5 else orjson.dumps(document)
        strict = _strict(body, predictor) if decision_datatype == "BOOL" else None
        try:
            expected = predictor.answer_v2(codec.parse_request(body), "ai4i-failure", decision_datatype)
        except InvalidInputError as exc:
            assert codec.plain_json_columns(body, 64) is None, document
            with pytest.raises(InvalidInputError) as raised:
                predictor.answer_v2_body(body, None, "ai4i-failure", decision_datatype)
            assert str(raised.value) == str(exc)
            continue
        if strict is not None:
            assert strict == expected[:2]
        plain_answers += codec.plain_json_columns(body, 64) is not None
        answer, json_length, prediction = predictor.answer_v2_body(
            body, None, "ai4i-failure", decision_datatype
        )
        assert (answer, json_length) == expected[:2]
        np.testing.assert_array_equal(prediction.probability, expected[2].probability)
    assert plain_answers > 50  # the plain path did take most valid requests


def test_plain_columns_are_the_strict_columns_bit_for_bit(real_frame: pd.DataFrame) -> None:
    rng = random.Random(3)
    for _ in range(200):
        rows = real_frame.sample(rng.choice([1, 3, 64]), random_state=rng.randrange(10**6))
        body = orjson.dumps(_document(rows, rng))
        strict = codec.decode_columns(codec.parse_request(body).inputs, 64)
        plain = codec.plain_json_columns(body, 64)
        assert plain is not None
        assert list(plain[0]) == list(strict)
        for name, column in strict.items():
            assert plain[0][name].dtype == column.dtype and plain[0][name].shape == column.shape
            assert plain[0][name].tobytes() == column.tobytes()


def test_single_row_features_match_the_array_code_bit_for_bit(real_frame: pd.DataFrame) -> None:
    featurizer = Featurizer.from_version(PUBLISHED)
    rows = real_frame.sample(500, random_state=1)
    for i in range(len(rows)):
        columns = {n: rows[n].to_numpy()[i : i + 1] for n in schema.INPUT_COLUMNS}
        columns = {n: c if n == schema.PRODUCT_TYPE else c.astype(np.float64) for n, c in columns.items()}
        one = featurizer.transform(columns)
        array = featurizer.transform(pd.DataFrame(columns))  # not a dict: the array path
        assert one.dtype == array.dtype == np.float32 and one.shape == array.shape == (1, len(FEATURE_NAMES))
        assert one.tobytes() == array.tobytes()
    values = [-0.0, 1e308, 5e-324, -1e300, 3.3]
    extreme = {n: np.array([v]) for n, v in zip(schema.SENSOR_COLUMNS, values, strict=True)}
    extreme[schema.PRODUCT_TYPE] = np.array(["H"])
    assert featurizer.transform(extreme).tobytes() == featurizer.transform(pd.DataFrame(extreme)).tobytes()


def test_orjson_refuses_what_would_not_be_finite() -> None:
    """The plain path skips the finiteness check because orjson refuses these bodies."""
    for text in (b"[NaN]", b"[Infinity]", b"[-Infinity]", b"[1e400]", b"[-1e309]"):
        with pytest.raises(orjson.JSONDecodeError):
            orjson.loads(text)
