"""Engineered physical features: ONE code path for training, cloud serving and the edge.

Failures of a milling machine follow physics (heat dissipation needs a temperature gap,
power is torque x angular speed, overstrain is wear x torque), so the model sees those
quantities directly. Standardisation happens here, in numpy, outside the model: a full-integer
int8 model then quantises unit-scale inputs instead of raw kelvin next to raw min·Nm on one
scale, which is what wrecks int8 accuracy.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass
from functools import cached_property
from pathlib import Path

import numpy as np
import pandas as pd

from shopfloor.data import schema

FEATURE_SPEC_VERSION = "1"
#: Engineered and raw numeric features, in model-input order (before the type one-hots).
NUMERIC_FEATURES: tuple[str, ...] = (
    "air_temperature_k",
    "process_temperature_k",
    "rotational_speed_rpm",
    "torque_nm",
    "tool_wear_min",
    "temperature_difference_k",
    "power_w",
    "strain_min_nm",
    "overstrain_ratio",
    "heat_dissipation_k_rpm",
)
#: Overstrain limit of wear x torque per product variant (min·Nm): a tool specification a
#: plant knows per variant; as a ratio the model sees one scale across variants.
STRAIN_LIMIT_MIN_NM: dict[str, float] = {"L": 11_000.0, "M": 12_000.0, "H": 13_000.0}
TYPE_FEATURES: tuple[str, ...] = tuple(f"type_{t}" for t in schema.PRODUCT_TYPES)
FEATURE_NAMES: tuple[str, ...] = (*NUMERIC_FEATURES, *TYPE_FEATURES)


def physical_features(frame: pd.DataFrame | dict[str, np.ndarray]) -> np.ndarray:
    """Raw canonical readings -> unscaled feature matrix (float64, rows x FEATURE_NAMES).

    Accepts a DataFrame or a dict of equal-length arrays (what a predictor decodes from a
    request), so training and serving share this exact function. Written column by column
    into one preallocated matrix: a single-row call is on the predictor's hot path.
    """
    air = np.asarray(frame[schema.AIR_TEMPERATURE], dtype=np.float64)
    process = np.asarray(frame[schema.PROCESS_TEMPERATURE], dtype=np.float64)
    speed = np.asarray(frame[schema.ROTATIONAL_SPEED], dtype=np.float64)
    torque = np.asarray(frame[schema.TORQUE], dtype=np.float64)
    wear = np.asarray(frame[schema.TOOL_WEAR], dtype=np.float64)
    product_type = np.asarray(frame[schema.PRODUCT_TYPE]).astype(str)
    one_hot = product_type[:, None] == _TYPES
    if not one_hot.any(axis=1).all():
        unknown = sorted(set(product_type[~one_hot.any(axis=1)].tolist()))
        raise ValueError(f"unknown product_type {unknown}; expected one of {list(schema.PRODUCT_TYPES)}")
    out = np.empty((len(air), len(FEATURE_NAMES)))
    out[:, 0], out[:, 1], out[:, 2], out[:, 3], out[:, 4] = air, process, speed, torque, wear
    np.subtract(process, air, out=out[:, 5])
    out[:, 6] = torque * speed * (2.0 * math.pi / 60.0)
    np.multiply(wear, torque, out=out[:, 7])
    out[:, 8] = out[:, 7] / (one_hot @ _STRAIN_LIMITS)
    np.multiply(out[:, 5], speed, out=out[:, 9])
    out[:, 10:] = one_hot
    return out


_TYPES = np.array(schema.PRODUCT_TYPES)
_STRAIN_LIMITS = np.array([STRAIN_LIMIT_MIN_NM[t] for t in schema.PRODUCT_TYPES])


@dataclass(frozen=True)
class FeatureSpec:
    """Standardisation fitted on the training split; saved beside every model."""

    names: tuple[str, ...]
    mean: tuple[float, ...]
    scale: tuple[float, ...]
    version: str = FEATURE_SPEC_VERSION

    @classmethod
    def fit(cls, frame: pd.DataFrame) -> FeatureSpec:
        """Fit z-scores of numeric features; one-hots keep 0/1 (mean 0, scale 1)."""
        raw = physical_features(frame)
        n_numeric = len(NUMERIC_FEATURES)
        mean = np.zeros(raw.shape[1])
        scale = np.ones(raw.shape[1])
        mean[:n_numeric] = raw[:, :n_numeric].mean(axis=0)
        sd = raw[:, :n_numeric].std(axis=0)
        scale[:n_numeric] = np.where(sd > 0, sd, 1.0)
        return cls(FEATURE_NAMES, tuple(map(float, mean)), tuple(map(float, scale)))

    def transform(self, frame: pd.DataFrame | dict[str, np.ndarray]) -> np.ndarray:
        """Raw readings -> standardised float32 model input."""
        raw = physical_features(frame)
        raw -= self._mean
        raw /= self._scale
        return raw.astype(np.float32)

    @cached_property
    def _mean(self) -> np.ndarray:
        return np.asarray(self.mean)

    @cached_property
    def _scale(self) -> np.ndarray:
        return np.asarray(self.scale)

    def save(self, path: Path) -> None:
        path.write_text(json.dumps(asdict(self), indent=2) + "\n")

    @classmethod
    def load(cls, path: Path) -> FeatureSpec:
        data = json.loads(Path(path).read_text())
        if data.get("version") != FEATURE_SPEC_VERSION:
            raise ValueError(
                f"{path}: feature spec version {data.get('version')!r}, "
                f"this code reads {FEATURE_SPEC_VERSION!r}"
            )
        return cls(tuple(data["names"]), tuple(data["mean"]), tuple(data["scale"]), data["version"])
