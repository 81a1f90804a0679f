"""Engineered physical features: ONE code path for training, cloud serving and the edge.

Failures of a milling machine follow physics (heat dissipation needs a temperature gap,
power is torque x angular speed, overstrain is wear x torque), so the model sees those
quantities directly. Standardisation happens here, in numpy, outside the model: a full-integer
int8 model then quantises unit-scale inputs instead of raw kelvin next to raw min·Nm on one
scale, which is what wrecks int8 accuracy.

The feature code lives in the serving core (numpy only), not in training: the predictors and
the edge runtime import it without pandas or TensorFlow, and training imports it from here.
The fitted standardisation is :class:`shopfloor.contract.FeatureSpec` (data only, read and
written through the contract); :class:`Featurizer` is the code that applies it.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from shopfloor import contract, lineage
from shopfloor.data import schema
from shopfloor.errors import IntegrityError, InvalidInputError, excerpt

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


class Readings(Protocol):
    """Raw readings by field name: a pandas DataFrame or a dict of equal-length 1-D arrays."""

    def __getitem__(self, key: str, /) -> Any: ...


_TYPES = np.array(schema.PRODUCT_TYPES)
_STRAIN_LIMITS = np.array([STRAIN_LIMIT_MIN_NM[t] for t in schema.PRODUCT_TYPES])
_ROW_FIELDS = (schema.AIR_TEMPERATURE, schema.PROCESS_TEMPERATURE, schema.ROTATIONAL_SPEED, schema.TORQUE,
               schema.TOOL_WEAR)
_FLOAT64 = np.dtype(np.float64)
_RAD_PER_S = 2.0 * math.pi / 60.0


def physical_features(frame: Readings) -> np.ndarray:
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
    product_type = np.asarray(frame[schema.PRODUCT_TYPE])
    if product_type.dtype.kind != "U":  # decoded columns are text already: no copy
        product_type = product_type.astype(str)
    one_hot = product_type[:, None] == _TYPES
    if not one_hot.any(axis=1).all():
        unknown = sorted(set(product_type[~one_hot.any(axis=1)].tolist()))
        shown = ", ".join(excerpt(u, 20) for u in unknown[:5])
        raise InvalidInputError(
            f"unknown product_type [{shown}]; expected one of {list(schema.PRODUCT_TYPES)}"
        )
    out = np.empty((len(air), len(FEATURE_NAMES)))
    out[:, 0], out[:, 1], out[:, 2], out[:, 3], out[:, 4] = air, process, speed, torque, wear
    np.subtract(process, air, out=out[:, 5])
    out[:, 6] = torque * speed * (2.0 * math.pi / 60.0)
    np.multiply(wear, torque, out=out[:, 7])
    out[:, 8] = out[:, 7] / (one_hot @ _STRAIN_LIMITS)
    np.multiply(out[:, 5], speed, out=out[:, 9])
    out[:, 10:] = one_hot
    return out


def fit_spec(frame: Readings) -> contract.FeatureSpec:
    """Fit z-scores of numeric features on training rows; one-hots keep 0/1 (mean 0, scale 1)."""
    raw = physical_features(frame)
    n_numeric = len(NUMERIC_FEATURES)
    mean = np.zeros(raw.shape[1])
    scale = np.ones(raw.shape[1])
    mean[:n_numeric] = raw[:, :n_numeric].mean(axis=0)
    sd = raw[:, :n_numeric].std(axis=0)
    scale[:n_numeric] = np.where(sd > 0, sd, 1.0)
    return contract.FeatureSpec(FEATURE_NAMES, tuple(map(float, mean)), tuple(map(float, scale)))


class Featurizer:
    """Raw readings -> standardised float32 model input, for one fitted feature spec.

    Refuses a spec whose feature names are not the ones this code computes: a spec from
    other feature code would standardise the wrong columns without any error.
    """

    def __init__(self, spec: contract.FeatureSpec) -> None:
        if tuple(spec.names) != FEATURE_NAMES:
            raise IntegrityError(
                f"{contract.FEATURE_SPEC}: features {excerpt(list(spec.names), 200)} are not the ones "
                f"this code computes {list(FEATURE_NAMES)}",
                contract.FEATURE_SPEC,
            )
        self.spec = spec
        self._mean = np.asarray(spec.mean, dtype=np.float64)
        self._scale = np.asarray(spec.scale, dtype=np.float64)
        self._mean_list: list[float] = self._mean.tolist()
        self._scale_list: list[float] = self._scale.tolist()

    @classmethod
    def fit(cls, frame: Readings) -> Featurizer:
        return cls(fit_spec(frame))

    @classmethod
    def load(cls, path: Path) -> Featurizer:
        """A feature spec file (any name), parsed strictly by the contract."""
        return cls(contract.FeatureSpec.from_dict(contract.read_json(Path(path), contract.FEATURE_SPEC)))

    @classmethod
    def from_version(cls, version_dir: Path) -> Featurizer:
        """The feature spec of a model version (or a step output) directory."""
        return cls(contract.load_feature_spec(Path(version_dir)))

    @property
    def names(self) -> tuple[str, ...]:
        return self.spec.names

    def save(self, path: Path) -> None:
        """Write the spec in the contract's JSON form (atomically)."""
        lineage.write_text_atomic(Path(path), contract.dumps(self.spec.to_dict()))

    def transform(self, frame: Readings) -> np.ndarray:
        """Raw readings -> standardised float32 model input."""
        if type(frame) is dict:
            row = self._one_row(frame)
            if row is not None:
                return row
        raw = physical_features(frame)
        raw -= self._mean
        raw /= self._scale
        return raw.astype(np.float32)

    def _one_row(self, columns: dict[str, Any]) -> np.ndarray | None:
        """One decoded row (float64 readings, a known type) in Python floats; None otherwise.

        Every step is the IEEE double operation :func:`physical_features` and :meth:`transform`
        apply element-wise, in the same order, so the result is bit-identical; for one row it
        skips some thirty numpy calls. Anything else takes the array path.
        """
        values = []
        for name in _ROW_FIELDS:
            column = columns.get(name)
            if type(column) is not np.ndarray or column.shape != (1,) or column.dtype != _FLOAT64:
                return None
            values.append(float(column[0]))
        kind = columns.get(schema.PRODUCT_TYPE)
        if type(kind) is not np.ndarray or kind.shape != (1,) or kind.dtype.kind != "U":
            return None
        limit = STRAIN_LIMIT_MIN_NM.get(str(kind[0]))
        if limit is None:
            return None
        air, process, speed, torque, wear = values
        difference = process - air
        strain = wear * torque
        features = [air, process, speed, torque, wear, difference, torque * speed * _RAD_PER_S,
                    strain, strain / limit, difference * speed]
        features += [1.0 if t == kind[0] else 0.0 for t in schema.PRODUCT_TYPES]
        return np.array(
            [[(f - m) / s for f, m, s in zip(features, self._mean_list, self._scale_list, strict=True)]],
            dtype=np.float32,
        )

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Featurizer) and other.spec == self.spec

    __hash__ = None  # type: ignore[assignment]
