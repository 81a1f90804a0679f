"""One result shape for the pipeline's library steps, and one way a failed step says why.

Every step function (ingest, validate, train, evaluate, convert, register) returns a
:class:`StepResult`: a verdict (pass, fail or inconclusive), a one-line reason, flat numeric
metrics (what a component logs to KFP) and named outputs (paths and identifiers). Components
stay thin: they call the step, log its metrics and, when the verdict is not a pass, raise the
one typed error :meth:`StepResult.raise_for_verdict` gives.

A component runs in its own process, and a runner only learns that it failed. So the
component body runs inside :func:`recorded_failure`, which leaves a small
:class:`StepFailure` (step, error category, one-line reason) in the task's directory before
the error propagates; :func:`read_failure` is how the local runner learns the reason, with no
log parsing. Standard library only: every component imports this module.
"""

from __future__ import annotations

import json
import math
import numbers
import os
import sys
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from types import MappingProxyType
from typing import Any

from shopfloor.errors import CATEGORIES, GateFailedError, InvalidInputError, ShopfloorError, bounded

#: File a failed component leaves in its task directory (beside its output artifacts).
FAILURE_FILE = "step_failure.json"
#: Largest failure record read back: the reason is one bounded line, the rest is small.
MAX_FAILURE_BYTES = 16_384


class Verdict(StrEnum):
    """What a step concluded about its input."""

    PASS = "pass"
    FAIL = "fail"
    #: The step ran but could not decide (e.g. an interval is undefined): not a pass.
    INCONCLUSIVE = "inconclusive"


def _frozen(mapping: Mapping[str, Any] | None) -> Mapping[str, Any]:
    return MappingProxyType(dict(mapping or {}))


@dataclass(frozen=True)
class StepResult:
    """What a step returns: its verdict and reason, metrics to log, outputs to pass on."""

    step: str
    verdict: Verdict
    reason: str
    #: Flat numeric figures (what a component logs as KFP metrics).
    metrics: Mapping[str, float] = field(default_factory=dict)
    #: Named outputs: artifact paths and identifiers such as the data version.
    outputs: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        verdict = Verdict(self.verdict)
        metrics: dict[str, float] = {}
        for name, value in (self.metrics or {}).items():
            if isinstance(value, bool) or not isinstance(value, numbers.Real):
                raise InvalidInputError(
                    f"{self.step}: metric {name!r} must be a number, got {type(value).__name__}")
            metrics[str(name)] = float(value)
        outputs = {str(k): str(v) for k, v in (self.outputs or {}).items()}
        object.__setattr__(self, "verdict", verdict)
        object.__setattr__(self, "metrics", _frozen(metrics))
        object.__setattr__(self, "outputs", _frozen(outputs))

    @property
    def passed(self) -> bool:
        return self.verdict is Verdict.PASS

    def raise_for_verdict(self) -> None:
        """Raise :class:`GateFailedError` with the reason unless the verdict is a pass."""
        if not self.passed:
            raise GateFailedError(self.reason)

    def finite_metrics(self) -> dict[str, float]:
        """The metrics that are finite numbers (KFP refuses NaN and infinities)."""
        return {k: v for k, v in self.metrics.items() if math.isfinite(v)}

    def to_dict(self) -> dict[str, Any]:
        return {"step": self.step, "verdict": self.verdict.value, "reason": self.reason,
                "metrics": dict(self.metrics), "outputs": dict(self.outputs)}


@dataclass(frozen=True)
class StepFailure:
    """Why a step's task failed: the step, the error's category and a one-line reason."""

    step: str
    category: str
    reason: str

    @classmethod
    def of(cls, step: str, error: BaseException) -> StepFailure:
        """The record of an error: a ShopfloorError keeps its category and message; anything
        else is an unexpected ``error`` named by its type."""
        if isinstance(error, ShopfloorError):
            return cls(step, error.category, bounded(str(error)))
        text = str(error)
        return cls(step, ShopfloorError.category, bounded(f"{type(error).__name__}: {text}" if text
                                                          else type(error).__name__))

    def to_error(self) -> ShopfloorError:
        """The error of the recorded category, e.g. for a CLI that maps categories to exit codes."""
        for kind in CATEGORIES:
            if kind.category == self.category:
                return kind(self.reason)
        return ShopfloorError(self.reason)

    def to_dict(self) -> dict[str, str]:
        return {"step": self.step, "category": self.category, "reason": self.reason}

    @classmethod
    def from_dict(cls, data: Any) -> StepFailure | None:
        if not isinstance(data, Mapping):
            return None
        step, category, reason = (data.get(k) for k in ("step", "category", "reason"))
        if not isinstance(step, str) or not isinstance(category, str) or not isinstance(reason, str):
            return None
        return cls(bounded(step, 100), bounded(category, 100), bounded(reason))


def write_failure(task_dir: Path, failure: StepFailure) -> Path | None:
    """Leave ``failure`` in ``task_dir`` (atomically). Best effort: a record that cannot be
    written must never hide the error being reported, so an OSError returns None."""
    from shopfloor.lineage import write_json_atomic

    target = Path(task_dir) / FAILURE_FILE
    try:
        write_json_atomic(target, failure.to_dict())
    except OSError:
        return None
    return target


def executor_task_dir(argv: list[str] | None = None) -> Path | None:
    """The running KFP task's directory, from the executor input KFP passes a lightweight
    component (``--executor_input``; its ``outputs.outputFile`` lies in the task directory).
    None outside a KFP task."""
    args = sys.argv if argv is None else argv
    try:
        document = json.loads(args[args.index("--executor_input") + 1])
        return Path(document["outputs"]["outputFile"]).parent
    except (ValueError, IndexError, KeyError, TypeError):
        return None


@contextmanager
def recorded_failure(step: str, output_path: str | os.PathLike[str] | None = None) -> Iterator[None]:
    """Run a component body; if it raises, record why in the task directory, then re-raise.

    ``output_path`` is any output artifact's path of the task: its parent is the task's
    directory (``<run>/<task>/`` under kfp.local). A component without output artifacts
    passes None: the directory then comes from KFP's executor input. On a cluster the record
    lands beside the task's local files and is not uploaded; KFP shows the raised error there.
    """
    try:
        yield
    except Exception as exc:
        task_dir = Path(output_path).parent if output_path is not None else executor_task_dir()
        if task_dir is not None:
            write_failure(task_dir, StepFailure.of(step, exc))
        raise


def read_failure(run_dir: Path, tasks: tuple[str, ...] = ()) -> StepFailure | None:
    """The failure recorded by a task of a local run: the first of ``tasks`` (pipeline
    order) that left one, else any other task's; None when no task recorded a failure."""
    root = Path(run_dir)
    candidates = [root / task / FAILURE_FILE for task in tasks]
    candidates += sorted(p for p in root.glob(f"*/{FAILURE_FILE}") if p not in candidates)
    for path in candidates:
        try:
            with open(path, "rb") as fh:
                raw = fh.read(MAX_FAILURE_BYTES + 1)
        except OSError:
            continue
        if len(raw) > MAX_FAILURE_BYTES:
            continue
        try:
            failure = StepFailure.from_dict(json.loads(raw.decode("utf-8")))
        except (UnicodeDecodeError, ValueError):
            continue
        if failure is not None:
            return failure
    return None
