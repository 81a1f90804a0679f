"""The factory simulator reproduces the AI4I 2020 process and its drift scenarios."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from shopfloor.data import schema
from shopfloor.data.loader import load
from shopfloor.data.simulator import SCENARIOS, scenarios, simulate

SEEDS = range(20)
ROWS = 10_000  # the size of the real file: one realisation per seed is comparable to it
FAMILY_ALPHA = 0.01
#: Half a reading's resolution: the floor of the interval for statistics the process pins by
#: construction (the normalised walks give mean 300 K / sd 2 K exactly; the file has 300.005).
RESOLUTION_FLOOR = {
    schema.AIR_TEMPERATURE: 0.05,
    schema.PROCESS_TEMPERATURE: 0.05,
    schema.ROTATIONAL_SPEED: 0.5,
    schema.TORQUE: 0.05,
    schema.TOOL_WEAR: 0.5,
}


def _statistics(frame: pd.DataFrame) -> dict[str, float]:
    out = {f"rate {c}": float(frame[c].mean()) for c in schema.LABEL_COLUMNS}
    for c in schema.SENSOR_COLUMNS:
        out[f"mean {c}"] = float(frame[c].mean())
        out[f"sd {c}"] = float(frame[c].std())
    for t in schema.PRODUCT_TYPES:
        out[f"share {t}"] = float((frame[schema.PRODUCT_TYPE] == t).mean())
    return out


@pytest.fixture(scope="module")
def baseline() -> pd.DataFrame:
    return simulate(50_000, seed=7)


def test_matches_real_file_within_prediction_interval() -> None:
    """The real file must look like one more draw of the simulator.

    The real file is a single 10,000-row realisation, so it is compared with the distribution of
    the simulator's 10,000-row realisations (k = 20 seeds), not with their mean's standard error.
    For each statistic (6 label rates, mean and sd of 5 sensor columns, 3 product shares: m = 19)
    the real value must lie in the two-sided prediction interval

        mean_k ± t(1 - α/(2m), k-1) · s_k · sqrt(1 + 1/k)     (α = 0.01 family-wise, Bonferroni),

    with mean_k, s_k the mean and sd over seeds (s_k already holds binomial and random-walk noise),
    widened to at least half a reading's resolution for the sensor statistics.
    """
    real = _statistics(load().frame)
    sims = pd.DataFrame([_statistics(simulate(ROWS, seed=s)) for s in SEEDS])
    k, m = len(SEEDS), len(real)
    t_crit = float(stats.t.ppf(1 - FAMILY_ALPHA / (2 * m), df=k - 1))
    failures = []
    for name, value in real.items():
        column = name.split(" ", 1)[1]
        half = max(t_crit * sims[name].std() * math.sqrt(1 + 1 / k), RESOLUTION_FLOOR.get(column, 0.0))
        centre = sims[name].mean()
        if not centre - half <= value <= centre + half:
            failures.append(f"{name}: real {value:.5g} outside {centre:.5g} ± {half:.3g}")
    assert not failures, "\n".join(failures)


def test_columns_dtypes_and_formats(baseline: pd.DataFrame) -> None:
    assert tuple(baseline.columns) == (*schema.CANONICAL_COLUMNS, schema.MACHINE_ID)
    real = load().frame
    for c in schema.CANONICAL_COLUMNS:
        assert baseline[c].dtype == real[c].dtype, c
    assert baseline[schema.ID].is_unique
    assert baseline[schema.PRODUCT_ID].str.fullmatch(r"[LMH]\d{5,}").all()
    assert (baseline[schema.PRODUCT_ID].str[0] == baseline[schema.PRODUCT_TYPE]).all()
    for c in (schema.AIR_TEMPERATURE, schema.PROCESS_TEMPERATURE, schema.TORQUE):
        tenths = baseline[c].to_numpy() * 10
        np.testing.assert_allclose(tenths, np.round(tenths), atol=1e-6)
    assert (baseline[schema.TORQUE] >= 0).all()
    assert set(np.unique(baseline[list(schema.LABEL_COLUMNS)].to_numpy())) <= {0, 1}


def test_labels_follow_the_published_rules(baseline: pd.DataFrame) -> None:
    f = baseline
    diff = f[schema.PROCESS_TEMPERATURE] - f[schema.AIR_TEMPERATURE]
    speed = f[schema.ROTATIONAL_SPEED]
    power = f[schema.TORQUE] * speed * 2 * np.pi / 60
    limit = f[schema.PRODUCT_TYPE].map({"L": 11_000, "M": 12_000, "H": 13_000})
    assert (f["hdf"] == ((diff < 8.6) & (speed < 1380))).all()
    assert (f["pwf"] == ((power < 3500) | (power > 9000))).all()
    assert (f["osf"] == (f[schema.TOOL_WEAR] * f[schema.TORQUE] > limit)).all()
    modes = f[["twf", "hdf", "pwf", "osf"]].any(axis=1)
    assert (f.loc[modes, schema.TARGET] == 1).all()
    # File quirk: RNF alone does not set machine_failure.
    assert (f.loc[(f["rnf"] == 1) & ~modes, schema.TARGET] == 0).all()


def test_tool_wear_accumulates_per_type_and_resets(baseline: pd.DataFrame) -> None:
    wear = baseline[schema.TOOL_WEAR].to_numpy()
    step = np.diff(wear)
    expected = baseline[schema.PRODUCT_TYPE].map({"L": 2, "M": 3, "H": 5}).to_numpy()[:-1]
    reset = wear[1:] == 0
    assert (step[~reset] == expected[~reset]).all()
    assert wear[0] == 0
    assert wear[:-1][reset].min() >= 195 and wear[:-1][reset].max() <= 280
    twf_rows = np.flatnonzero(baseline["twf"].to_numpy()[:-1])
    assert reset[twf_rows].all(), "a tool-wear failure is always followed by a new tool"
    assert 0.25 < baseline["twf"].sum() / reset.sum() < 0.55  # file: 46 of 119 replacements


def test_same_seed_same_frame_and_seeds_differ() -> None:
    pd.testing.assert_frame_equal(simulate(2_000, seed=3), simulate(2_000, seed=3))
    pd.testing.assert_frame_equal(
        simulate(500, n_machines=3, seed=3, scenario="slow_spindle"),
        simulate(500, n_machines=3, seed=3, scenario="slow_spindle"),
    )
    a, b = simulate(2_000, seed=3), simulate(2_000, seed=4)
    for c in (schema.AIR_TEMPERATURE, schema.TORQUE, schema.PRODUCT_TYPE):
        assert not a[c].equals(b[c]), c


def test_machines_split_rows_with_own_walks_and_tools() -> None:
    f = simulate(10_003, n_machines=4, seed=1)
    assert f[schema.MACHINE_ID].value_counts().sort_index().tolist() == [2501, 2501, 2501, 2500]
    assert f[schema.MACHINE_ID].is_monotonic_increasing
    assert f[schema.ID].tolist() == list(range(1, 10_004))
    for _, rows in f.groupby(schema.MACHINE_ID):
        assert rows[schema.TOOL_WEAR].iloc[0] == 0
        assert rows[schema.AIR_TEMPERATURE].std() == pytest.approx(2.0, abs=0.01)
        assert rows[schema.AIR_TEMPERATURE].mean() == pytest.approx(300.0, abs=0.01)
    assert len(simulate(1, seed=0)) == 1
    assert len(simulate(5, n_machines=5, seed=0)) == 5


def test_scenario_registry_lists_descriptions() -> None:
    listed = scenarios()
    assert {"baseline", "process_temp_offset_3k", "product_mix_h_heavy", "slow_spindle"} <= set(listed)
    assert listed.keys() == SCENARIOS.keys()
    assert all(description for description in listed.values())


def test_process_temp_offset_is_a_sensor_fault_only(baseline: pd.DataFrame) -> None:
    drifted = simulate(50_000, seed=7, scenario="process_temp_offset_3k")
    shift = drifted[schema.PROCESS_TEMPERATURE] - baseline[schema.PROCESS_TEMPERATURE]
    np.testing.assert_allclose(shift, 3.0, atol=1e-6)
    untouched = [c for c in drifted.columns if c != schema.PROCESS_TEMPERATURE]
    pd.testing.assert_frame_equal(drifted[untouched], baseline[untouched])


def test_slow_spindle_lowers_speed_and_raises_heat_failures(baseline: pd.DataFrame) -> None:
    drifted = simulate(50_000, seed=7, scenario="slow_spindle")
    ratio = drifted[schema.ROTATIONAL_SPEED].mean() / baseline[schema.ROTATIONAL_SPEED].mean()
    assert ratio == pytest.approx(0.9, abs=0.002)
    assert drifted["hdf"].mean() > 2 * baseline["hdf"].mean()
    assert drifted[schema.TARGET].mean() > baseline[schema.TARGET].mean()
    speed = drifted[schema.ROTATIONAL_SPEED]
    diff = drifted[schema.PROCESS_TEMPERATURE] - drifted[schema.AIR_TEMPERATURE]
    assert (drifted["hdf"] == ((diff < 8.6) & (speed < 1380))).all()


def test_product_mix_h_heavy_changes_mix_and_wear(baseline: pd.DataFrame) -> None:
    drifted = simulate(50_000, seed=7, scenario="product_mix_h_heavy")
    share = drifted[schema.PRODUCT_TYPE].value_counts(normalize=True)
    assert share["H"] == pytest.approx(0.5, abs=0.01)
    assert share["L"] == pytest.approx(0.2, abs=0.01)
    assert drifted["twf"].mean() > baseline["twf"].mean()  # 5 min per H process: tools last fewer rows


def test_fast_tool_wear_doubles_replacements(baseline: pd.DataFrame) -> None:
    drifted = simulate(50_000, seed=7, scenario="fast_tool_wear")
    steps = set(np.unique(np.diff(drifted[schema.TOOL_WEAR].to_numpy())).tolist())
    assert {4, 6, 10} <= steps and not steps & {2, 3, 5}
    resets = (drifted[schema.TOOL_WEAR] == 0).sum() / (baseline[schema.TOOL_WEAR] == 0).sum()
    assert 1.8 < resets < 2.2


def test_product_mix_argument_overrides_the_default() -> None:
    f = simulate(1_000, seed=0, product_mix={"H": 1.0})
    assert (f[schema.PRODUCT_TYPE] == "H").all()


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"n_rows": 0}, "n_rows"),
        ({"n_rows": -5}, "n_rows"),
        ({"n_rows": 2.5}, "n_rows"),
        ({"n_rows": 10, "n_machines": 0}, "n_machines"),
        ({"n_rows": 3, "n_machines": 4}, "n_machines"),
        ({"n_rows": 10, "scenario": "meltdown"}, "unknown scenario 'meltdown'.*baseline.*slow_spindle"),
        ({"n_rows": 10, "product_mix": {"L": 0.5, "M": 0.3}}, "sum to 1"),
        ({"n_rows": 10, "product_mix": {"L": 0.5, "X": 0.5}}, r"unknown product types \['X'\].*'L'"),
        ({"n_rows": 10, "product_mix": {"L": 1.5, "M": -0.5}}, ">= 0"),
    ],
)
def test_bad_arguments_raise(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        simulate(**kwargs)  # type: ignore[arg-type]
