"""Features and split: physics computed right, one code path (the serving core's), seeded stratification."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from shopfloor import contract
from shopfloor.data import schema
from shopfloor.data.split import stratified_split
from shopfloor.errors import IntegrityError, InvalidInputError
from shopfloor.inference import features


def test_physical_features_follow_the_physics(real_frame: pd.DataFrame) -> None:
    row = real_frame.iloc[[0]]  # M, 298.1 K, 308.6 K, 1551 rpm, 42.8 Nm, 0 min
    x = features.physical_features(row)[0]
    named = dict(zip(features.FEATURE_NAMES, x, strict=True))
    assert named["temperature_difference_k"] == pytest.approx(10.5)
    assert named["power_w"] == pytest.approx(42.8 * 1551 * 2 * math.pi / 60)
    assert named["strain_min_nm"] == 0.0
    assert named["type_M"] == 1.0 and named["type_L"] == 0.0


def test_dict_input_equals_frame_input(real_frame: pd.DataFrame) -> None:
    """Serving decodes requests into dicts of arrays; it must get the training features."""
    rows = real_frame.iloc[:50]
    spec = features.Featurizer.fit(real_frame)
    as_dict = {c: rows[c].to_numpy() for c in schema.INPUT_COLUMNS}
    np.testing.assert_array_equal(spec.transform(rows), spec.transform(as_dict))


def test_spec_standardises_and_round_trips_through_the_contract(
    tmp_path: Path, real_frame: pd.DataFrame
) -> None:
    featurizer = features.Featurizer.fit(real_frame)
    x = featurizer.transform(real_frame)
    n = len(features.NUMERIC_FEATURES)
    np.testing.assert_allclose(x[:, :n].mean(axis=0), 0, atol=1e-4)
    np.testing.assert_allclose(x[:, :n].std(axis=0), 1, atol=1e-3)
    assert isinstance(featurizer.spec, contract.FeatureSpec)
    featurizer.save(tmp_path / contract.FEATURE_SPEC)
    assert contract.load_feature_spec(tmp_path) == featurizer.spec
    again = features.Featurizer.from_version(tmp_path)
    assert again == featurizer
    np.testing.assert_array_equal(again.transform(real_frame).view(np.uint32), x.view(np.uint32))


def test_features_equal_the_published_model_s_own(real_frame: pd.DataFrame) -> None:
    """A version written by the code before the move (schema-1 fixture) gets the same features:
    its golden inputs are the standardised features of real rows, reproduced bit for bit."""
    from tests.fixtures.versions import SCHEMA1_REGISTRY

    version = SCHEMA1_REGISTRY / "ai4i-failure" / "v0001"
    featurizer = features.Featurizer.from_version(version)
    golden = np.load(version / contract.golden_files("float32")[1])
    x = golden["inputs"]
    assert x.shape[1] == len(features.FEATURE_NAMES)
    # Every golden row is one of the real rows, standardised with this spec.
    table = featurizer.transform(real_frame)
    found = {tuple(row) for row in table.view(np.uint32)}
    assert all(tuple(row) in found for row in x.astype(np.float32).view(np.uint32))


def test_featurizer_refuses_a_spec_of_other_features() -> None:
    spec = contract.FeatureSpec(("torque_nm",), (0.0,), (1.0,))
    with pytest.raises(IntegrityError, match="not the ones this code computes"):
        features.Featurizer(spec)


def test_unknown_product_type_is_named(real_frame: pd.DataFrame) -> None:
    bad = real_frame.iloc[:3].copy()
    bad.loc[bad.index[1], schema.PRODUCT_TYPE] = "X"
    with pytest.raises(InvalidInputError, match=r"unknown product_type \['X'\]"):
        features.physical_features(bad)
    bad.loc[bad.index[1], schema.PRODUCT_TYPE] = "Z" * 100_000
    with pytest.raises(InvalidInputError) as info:
        features.physical_features(bad)
    assert len(str(info.value)) < 200  # a bounded excerpt, not the value


def test_split_is_stratified_seeded_and_disjoint(real_frame: pd.DataFrame) -> None:
    parts = stratified_split(real_frame, seed=7)
    assert sum(len(p) for p in parts.values()) == len(real_frame)
    ids = [set(p[schema.ID]) for p in parts.values()]
    assert not (ids[0] & ids[1]) and not (ids[0] & ids[2]) and not (ids[1] & ids[2])
    rate = real_frame[schema.TARGET].mean()
    for part in parts.values():
        assert abs(part[schema.TARGET].mean() - rate) < 0.002
    again = stratified_split(real_frame, seed=7)
    pd.testing.assert_frame_equal(parts["test"], again["test"])
    assert not stratified_split(real_frame, seed=8)["test"].equals(parts["test"])


@pytest.mark.parametrize(("val", "test"), [(0.5, 0.5), (0.0, 0.2), (0.2, 1.2)])
def test_split_rejects_impossible_fractions(real_frame: pd.DataFrame, val: float, test: float) -> None:
    with pytest.raises(ValueError, match="fraction"):
        stratified_split(real_frame, validation_fraction=val, test_fraction=test)


def test_train_params_from_kfp_struct() -> None:
    """KFP hands dict parameters over as protobuf Structs: every number arrives as a float."""
    from shopfloor.training.train import params_from_dict

    params = params_from_dict({"epochs": 5.0, "hidden_units": [16.0, 8.0], "learning_rate": 0.01})
    assert params.epochs == 5 and isinstance(params.epochs, int)
    assert params.hidden_units == (16, 8)
    with pytest.raises(ValueError, match="epochs must be an integer"):
        params_from_dict({"epochs": 2.5})
    with pytest.raises(ValueError, match=r"unknown training parameters \['epoch'\]"):
        params_from_dict({"epoch": 3})
