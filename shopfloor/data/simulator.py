"""Factory simulator: the published AI4I 2020 generation process, for any rows and machines.

Why: the real file is one 10,000-row realisation of one machine. Pipelines, drift monitors and
load tests need more (and shifted) data that still behaves like it. :func:`simulate` reproduces
the process from the dataset's description (Matzka 2020, see ``shopfloor/datasets/ai4i2020/README.md``)
and is calibrated where the description is vague or differs from the published file. Every
constant below cites the fact it reproduces; "file" means numbers measured on the embedded
``ai4i2020.csv`` (10,000 rows).

Semantics kept from the file:

* One row is one process on one machine; a machine's rows are consecutive processes.
* ``tool_wear_min`` is the wear *before* the process; the process then adds 2/3/5 min (L/M/H).
  When the tool reaches its life it is replaced after that row, and the next row reads 0.
* Labels are evaluated on the rounded readings with the published thresholds; the file's
  HDF/PWF/OSF flags match those rules exactly on its published values.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace

import numpy as np
import pandas as pd

from shopfloor.data import schema
from shopfloor.errors import InvalidInputError

# --- calibration (facts from the description, numbers measured on the file) -----------------

#: Product mix of the file: L 6,000 / M 2,997 / H 1,003 of 10,000. The description's 50/30/20
#: does not match the file, so the default follows the file.
FILE_PRODUCT_MIX: dict[str, float] = {"L": 0.6, "M": 0.3, "H": 0.1}
#: Product-ID serial = base + UDI per type in the file (M14860 is UDI 1, L47181 UDI 2, H29424 UDI 11).
_SERIAL_BASE: dict[str, int] = {"L": 47179, "M": 14859, "H": 29413}

#: "Air temperature: random walk normalised to sd 2 K around 300 K" (file: 300.0, sd 2.0).
AIR_MEAN_K, AIR_SD_K = 300.0, 2.0
#: "Process temperature: random walk normalised to sd 1 K, added to air temperature + 10 K"
#: (file: process - air has mean 10.0, sd 1.0).
PROCESS_OFFSET_K, PROCESS_SD_K = 10.0, 1.0

#: "Torque normal around 40 Nm, sd 10 Nm, no negative values" (file: 40.0, sd 9.97, skew 0.0).
TORQUE_MEAN_NM, TORQUE_SD_NM = 40.0, 10.0

#: Speed given torque. The description says "computed from a power of 2,860 W with normal noise"
#: but gives no formula, and a constant-power hyperbola does not fit the file. So the file's
#: conditional mean speed per torque bin (piecewise linear between bin means) and conditional
#: sd are used: noise sd ~51 rpm above 16 Nm, ~6 rpm below 12 Nm (file: speed 1538.8, sd 179.3,
#: 1168-2886, corr(speed, torque) = -0.88; residuals show no lag-1 correlation).
_SPEED_KNOTS_NM = np.array(
    [0.0, 12.0, 13.2, 15.2, 17.1, 19.2, 21.4, 23.9, 26.4, 28.9, 31.3, 33.8, 36.3, 38.8, 41.3,
     43.8, 46.3, 48.7, 51.2, 53.7, 56.2, 58.7, 61.4, 64.5, 68.0, 75.0]
)  # fmt: skip
_SPEED_MEAN_RPM = np.array(
    [2994.0, 2645.0, 2537.0, 2298.0, 2164.0, 2042.0, 1932.0, 1840.0, 1760.0, 1692.0, 1641.5,
     1594.0, 1551.5, 1513.0, 1485.0, 1454.0, 1433.0, 1411.0, 1389.0, 1373.0, 1355.0, 1344.0,
     1323.0, 1303.0, 1283.5, 1262.0]
)  # fmt: skip
_SPEED_SD_KNOTS_NM = np.array([12.0, 16.0])
_SPEED_SD_RPM = np.array([6.0, 51.0])

#: "Variants H/M/L add 5/3/2 minutes of tool wear per process" (file: increments 2/3/5 exactly,
#: keyed by the type of the row before, i.e. the wear reading precedes the process).
WEAR_INCREMENT_MIN: dict[str, int] = {"L": 2, "M": 3, "H": 5}
#: Tool life. The description says replacement "at a random wear between 200 and 240 min"; the
#: file's 119 replacements happen at wear 198-253, mean 215.7, sd 10.6, right-skewed, which a
#: uniform 200-240 does not give (mean ~221). Life = 198 + Gamma(shape, scale) fitted to it.
TOOL_LIFE_MIN_MIN, TOOL_LIFE_SHAPE, TOOL_LIFE_SCALE_MIN = 198.0, 2.4, 6.7
#: Only some replacements are failures: the file has 46 TWF among 119 replacements.
TWF_PER_REPLACEMENT = 46 / 119

#: HDF: "air-process temperature difference below 8.6 K and rotational speed below 1,380 rpm".
HDF_MAX_DIFF_K, HDF_MAX_SPEED_RPM = 8.6, 1380
#: PWF: "power (torque x angular speed) below 3,500 W or above 9,000 W".
PWF_MIN_W, PWF_MAX_W = 3500.0, 9000.0
#: OSF: "tool wear x torque above 11,000 (L), 12,000 (M), 13,000 (H) min*Nm".
OSF_LIMIT_MIN_NM: dict[str, float] = {"L": 11_000.0, "M": 12_000.0, "H": 13_000.0}
#: RNF: the description says 0.1 %, the file has 19 in 10,000 (P(>=19 | 0.1 %) < 1 %), so the
#: file's rate is used.
RNF_PROBABILITY = 0.0019
#: File quirks: RNF does not set ``machine_failure`` (18 of 19 RNF rows are 0; the 19th also
#: has TWF), and 9 of 10,000 rows fail with no mode set. Both are reproduced.
UNEXPLAINED_FAILURE_PROBABILITY = 0.0009


# --- scenarios ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Process:
    """Parameters of the generation process that a scenario may change."""

    product_mix: Mapping[str, float]
    speed_factor: float = 1.0
    process_temp_sensor_offset_k: float = 0.0
    wear_increment_factor: int = 1


@dataclass(frozen=True)
class Scenario:
    """A named drift: what it means on the shop floor and how it changes the process."""

    description: str
    transform: Callable[[Process], Process]


SCENARIOS: dict[str, Scenario] = {
    "baseline": Scenario("the AI4I 2020 process as calibrated to the real file", lambda p: p),
    "process_temp_offset_3k": Scenario(
        "process-temperature sensor reads +3 K (sensor fault); physics and labels follow the true"
        " temperature",
        lambda p: replace(p, process_temp_sensor_offset_k=3.0),
    ),
    "product_mix_h_heavy": Scenario(
        "new order book: product mix L 20 % / M 30 % / H 50 % (more tool wear per process)",
        lambda p: replace(p, product_mix={"L": 0.2, "M": 0.3, "H": 0.5}),
    ),
    "slow_spindle": Scenario(
        "spindle runs 10 % slower at the same torque (worn drive); power, HDF and PWF follow",
        lambda p: replace(p, speed_factor=0.9),
    ),
    "fast_tool_wear": Scenario(
        "harder workpiece material: tools wear twice as fast per process (4/6/10 min for L/M/H),"
        " so tools are replaced and fail twice as often",
        lambda p: replace(p, wear_increment_factor=2),
    ),
}


def scenarios() -> dict[str, str]:
    """Scenario names and what each one simulates."""
    return {name: scenario.description for name, scenario in SCENARIOS.items()}


# --- simulation -----------------------------------------------------------------------------


def _check_mix(product_mix: Mapping[str, float]) -> dict[str, float]:
    unknown = sorted(set(product_mix) - set(schema.PRODUCT_TYPES))
    if unknown:
        raise InvalidInputError(
            f"unknown product types {unknown} in product_mix; valid types: {schema.PRODUCT_TYPES}"
        )
    mix = {t: float(product_mix.get(t, 0.0)) for t in schema.PRODUCT_TYPES}
    if any(not math.isfinite(v) or v < 0 for v in mix.values()):
        raise InvalidInputError(f"product_mix shares must be finite and >= 0, got {dict(product_mix)}")
    if not math.isclose(sum(mix.values()), 1.0, abs_tol=1e-6):
        raise InvalidInputError(
            f"product_mix shares must sum to 1, got {sum(mix.values()):.6g} from {dict(product_mix)}"
        )
    return mix


def _segment_walk(steps: np.ndarray, starts: np.ndarray, lengths: np.ndarray, sd: float) -> np.ndarray:
    """Random walk per machine normalised to mean 0 and the given sd, as the description states.

    Normalising makes the spread independent of length, so a long run drifts more slowly but keeps
    the published 2 K / 1 K spread.
    """
    walk = np.cumsum(steps)
    offsets = np.repeat(walk[starts] - steps[starts], lengths)
    walk = walk - offsets
    mean = np.add.reduceat(walk, starts) / lengths
    centred = walk - np.repeat(mean, lengths)
    spread = np.sqrt(np.add.reduceat(centred**2, starts) / lengths)
    scale = np.divide(sd, spread, out=np.zeros_like(spread), where=spread > 0)
    return np.asarray(centred * np.repeat(scale, lengths))


def _tool_wear(
    increments: np.ndarray, starts: np.ndarray, lengths: np.ndarray, life: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Wear readings and replacement rows: a tool starts at 0 and is replaced after the first
    process whose reading is at or above its life; each machine starts with a fresh tool."""
    n = increments.size
    before = np.concatenate(([0], np.cumsum(increments)))  # wear accumulated before row i
    # Integer wear reaches a life L exactly when it reaches ceil(L); searching an int64 array for
    # an int keeps searchsorted from converting the whole array on every call.
    life_min = np.ceil(life).astype(np.int64)
    replaced = np.zeros(n, dtype=bool)
    tool_start = np.zeros(n, dtype=bool)
    # All machines advance one tool per round, so the loop runs once per tool of the busiest machine.
    current, ends = starts.copy(), starts + lengths
    while current.size:
        tool_start[current] = True
        end_of_tool = np.searchsorted(before, before[current] + life_min[current], side="left")
        alive = end_of_tool < ends
        current, ends = end_of_tool[alive], ends[alive]
        replaced[current] = True
        current = current + 1
        keep = current < ends
        current, ends = current[keep], ends[keep]
    first = np.maximum.accumulate(np.where(tool_start, np.arange(n), 0))
    return before[:n] - before[first], replaced


def simulate(
    n_rows: int,
    *,
    n_machines: int = 1,
    seed: int = 0,
    scenario: str = "baseline",
    product_mix: dict[str, float] | None = None,
) -> pd.DataFrame:
    """Simulate ``n_rows`` processes split over ``n_machines`` machines, in the canonical schema.

    Same arguments give an identical frame. Rows are split as evenly as possible; machine ``k``
    (1-based ``machine_id``) owns one consecutive block with its own temperature walks and tool.
    ``udi`` is 1..n_rows across all machines. ``product_mix`` (shares of L/M/H summing to 1)
    overrides the scenario's mix; the default is the file's L 60 / M 30 / H 10.
    All random draws are made in the same order whatever the scenario, so two scenarios with the
    same seed differ only by what the scenario changes.
    """
    if isinstance(n_rows, bool) or not isinstance(n_rows, int | np.integer) or n_rows < 1:
        raise InvalidInputError(f"n_rows must be an integer >= 1, got {n_rows!r}")
    if isinstance(n_machines, bool) or not isinstance(n_machines, int | np.integer) or n_machines < 1:
        raise InvalidInputError(f"n_machines must be an integer >= 1, got {n_machines!r}")
    if n_machines > n_rows:
        raise InvalidInputError(f"n_machines ({n_machines}) must not exceed n_rows ({n_rows})")
    if scenario not in SCENARIOS:
        raise InvalidInputError(f"unknown scenario {scenario!r}; valid scenarios: {sorted(SCENARIOS)}")
    process = SCENARIOS[scenario].transform(Process(product_mix=FILE_PRODUCT_MIX))
    mix = _check_mix(product_mix if product_mix is not None else process.product_mix)

    n, m = int(n_rows), int(n_machines)
    lengths = np.full(m, n // m, dtype=np.int64)
    lengths[: n % m] += 1
    starts = np.concatenate(([0], np.cumsum(lengths)[:-1]))

    rng = np.random.default_rng(seed)
    type_u = rng.random(n)
    torque_z = rng.standard_normal(n)
    speed_z = rng.standard_normal(n)
    air_steps = rng.standard_normal(n)
    process_steps = rng.standard_normal(n)
    life_u = rng.gamma(TOOL_LIFE_SHAPE, TOOL_LIFE_SCALE_MIN, n)
    twf_u = rng.random(n)
    rnf_u = rng.random(n)
    unexplained_u = rng.random(n)

    types = np.array(schema.PRODUCT_TYPES)
    cumulative = np.cumsum([mix[t] for t in schema.PRODUCT_TYPES])
    type_idx = np.minimum(np.searchsorted(cumulative, type_u, side="right"), len(types) - 1)
    product_type = types[type_idx]

    # Temperatures: true values drive physics; only the reading carries a sensor offset.
    air = np.round(AIR_MEAN_K + _segment_walk(air_steps, starts, lengths, AIR_SD_K), 1)
    process_true = np.round(
        air + PROCESS_OFFSET_K + _segment_walk(process_steps, starts, lengths, PROCESS_SD_K), 1
    )
    process_reading = np.round(process_true + process.process_temp_sensor_offset_k, 1)

    torque = np.round(np.abs(TORQUE_MEAN_NM + TORQUE_SD_NM * torque_z), 1)
    speed_mean = np.interp(torque, _SPEED_KNOTS_NM, _SPEED_MEAN_RPM)
    speed_sd = np.interp(torque, _SPEED_SD_KNOTS_NM, _SPEED_SD_RPM)
    speed = np.rint((speed_mean + speed_sd * speed_z) * process.speed_factor).astype(np.int64)
    speed = np.maximum(speed, 1)

    increment_by_type = np.array([WEAR_INCREMENT_MIN[t] for t in schema.PRODUCT_TYPES], dtype=np.int64)
    increments = increment_by_type[type_idx] * process.wear_increment_factor
    life = TOOL_LIFE_MIN_MIN + life_u
    wear, replaced = _tool_wear(increments, starts, lengths, life)

    twf = replaced & (twf_u < TWF_PER_REPLACEMENT)
    hdf = ((process_true - air) < HDF_MAX_DIFF_K) & (speed < HDF_MAX_SPEED_RPM)
    power = torque * speed * (2.0 * np.pi / 60.0)
    pwf = (power < PWF_MIN_W) | (power > PWF_MAX_W)
    osf_limit = np.array([OSF_LIMIT_MIN_NM[t] for t in schema.PRODUCT_TYPES])[type_idx]
    osf = wear * torque > osf_limit
    rnf = rnf_u < RNF_PROBABILITY
    failure = twf | hdf | pwf | osf | (unexplained_u < UNEXPLAINED_FAILURE_PROBABILITY)

    udi = np.arange(1, n + 1, dtype=np.int64)
    serial = np.array([_SERIAL_BASE[t] for t in schema.PRODUCT_TYPES], dtype=np.int64)[type_idx] + udi
    product_id = np.char.add(product_type.astype("U1"), serial.astype("U"))

    def label(flag: np.ndarray) -> np.ndarray:
        return flag.astype(np.int64)

    columns: dict[str, np.ndarray] = {
        schema.ID: udi,
        schema.PRODUCT_ID: product_id.astype(object),
        schema.PRODUCT_TYPE: product_type.astype(object),
        schema.AIR_TEMPERATURE: air,
        schema.PROCESS_TEMPERATURE: process_reading,
        schema.ROTATIONAL_SPEED: speed,
        schema.TORQUE: torque,
        schema.TOOL_WEAR: wear.astype(np.int64),
        schema.TARGET: label(failure),
        "twf": label(twf),
        "hdf": label(hdf),
        "pwf": label(pwf),
        "osf": label(osf),
        "rnf": label(rnf),
        schema.MACHINE_ID: np.repeat(np.arange(1, m + 1, dtype=np.int64), lengths),
    }
    return pd.DataFrame(columns)
