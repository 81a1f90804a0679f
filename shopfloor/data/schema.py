"""The canonical sensor schema: snake_case names in physical units.

Every step (validation, features, serving, edge) speaks this schema, so a plant system's raw
readings and the training data mean the same thing. The AI4I 2020 column names map onto it.
"""

from __future__ import annotations

from dataclasses import dataclass

ID = "udi"
PRODUCT_ID = "product_id"
PRODUCT_TYPE = "product_type"
AIR_TEMPERATURE = "air_temperature_k"
PROCESS_TEMPERATURE = "process_temperature_k"
ROTATIONAL_SPEED = "rotational_speed_rpm"
TORQUE = "torque_nm"
TOOL_WEAR = "tool_wear_min"
TARGET = "machine_failure"
FAILURE_MODES: tuple[str, ...] = ("twf", "hdf", "pwf", "osf", "rnf")

PRODUCT_TYPES: tuple[str, ...] = ("L", "M", "H")

#: Raw sensor readings a model consumes (what a plant system sends to the predictor).
SENSOR_COLUMNS: tuple[str, ...] = (
    AIR_TEMPERATURE,
    PROCESS_TEMPERATURE,
    ROTATIONAL_SPEED,
    TORQUE,
    TOOL_WEAR,
)
#: Model inputs in canonical order: product type plus the sensor readings.
INPUT_COLUMNS: tuple[str, ...] = (PRODUCT_TYPE, *SENSOR_COLUMNS)
LABEL_COLUMNS: tuple[str, ...] = (TARGET, *FAILURE_MODES)
#: Optional columns a canonical table may carry (the simulator writes which machine a row is from).
MACHINE_ID = "machine_id"
OPTIONAL_COLUMNS: tuple[str, ...] = (MACHINE_ID,)
#: Every column of a canonical labelled table, in order.
CANONICAL_COLUMNS: tuple[str, ...] = (ID, PRODUCT_ID, *INPUT_COLUMNS, *LABEL_COLUMNS)

#: AI4I 2020 published names -> canonical names.
AI4I_TO_CANONICAL: dict[str, str] = {
    "UDI": ID,
    "Product ID": PRODUCT_ID,
    "Type": PRODUCT_TYPE,
    "Air temperature [K]": AIR_TEMPERATURE,
    "Process temperature [K]": PROCESS_TEMPERATURE,
    "Rotational speed [rpm]": ROTATIONAL_SPEED,
    "Torque [Nm]": TORQUE,
    "Tool wear [min]": TOOL_WEAR,
    "Machine failure": TARGET,
    "TWF": "twf",
    "HDF": "hdf",
    "PWF": "pwf",
    "OSF": "osf",
    "RNF": "rnf",
}
CANONICAL_TO_AI4I: dict[str, str] = {v: k for k, v in AI4I_TO_CANONICAL.items()}


@dataclass(frozen=True)
class PhysicalRange:
    """Physically plausible bounds of a reading, used by validation (not by training)."""

    column: str
    unit: str
    low: float
    high: float


#: Plausible ranges: a milling machine on a shop floor. Kelvin bounds reject Celsius data.
PHYSICAL_RANGES: tuple[PhysicalRange, ...] = (
    PhysicalRange(AIR_TEMPERATURE, "K", 250.0, 350.0),
    PhysicalRange(PROCESS_TEMPERATURE, "K", 250.0, 400.0),
    PhysicalRange(ROTATIONAL_SPEED, "rpm", 0.0, 10_000.0),
    PhysicalRange(TORQUE, "Nm", 0.0, 200.0),
    PhysicalRange(TOOL_WEAR, "min", 0.0, 1_000.0),
)
