"""The statistical assertions of one test run: settings, the family, the test being run.

Standard library only: the pytest plugin imports this module whenever pytest starts, also in
an environment without numpy, where no assertion will ever be recorded.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, NoReturn

from shopfloor.errors import InvalidInputError

INCONCLUSIVE_MODES: tuple[str, ...] = ("fail", "xfail", "warn")
#: Most records one run keeps (each is a handful of numbers); beyond it the run refuses more.
MAX_RECORDS = 100_000


@dataclass(frozen=True)
class Settings:
    """How a run decides: one-sided alpha of the family, its correction, the session seed and
    what an inconclusive verdict does to its test."""

    alpha: float = 0.05
    correction: str = "holm"
    seed: int = 0
    inconclusive: str = "fail"


@dataclass
class Record:
    """One statistical assertion as it ran, and its verdict after the family correction."""

    nodeid: str
    index: int
    assertion: str
    result: Any  # a Judgement or a DriftResult
    in_family: bool
    adjusted_p: float | None = None
    adjusted_verdict: str | None = None

    @property
    def verdict(self) -> str:
        return str(self.result.verdict.value)

    @property
    def changed(self) -> bool:
        return self.adjusted_verdict is not None and self.adjusted_verdict != self.verdict

    @property
    def label(self) -> str:
        return f"{self.nodeid}#{self.index}"


@dataclass
class Run:
    """The family of one test run (or the default outside pytest, which keeps nothing)."""

    settings: Settings = field(default_factory=Settings)
    keep: bool = False
    records: list[Record] = field(default_factory=list)
    nodeid: str = ""
    properties: list[tuple[str, object]] | None = None
    xfail: Callable[[str], NoReturn] | None = None
    #: Tests deselected (-k, -m) in this run: the family is only what ran.
    deselected: int = 0
    _counts: dict[str, int] = field(default_factory=dict)

    def begin(self, nodeid: str, properties: list[tuple[str, object]] | None) -> None:
        self.nodeid, self.properties = nodeid, properties

    def end(self) -> None:
        self.nodeid, self.properties = "", None

    def next_index(self) -> int:
        index = self._counts.get(self.nodeid, 0) + 1
        self._counts[self.nodeid] = index
        return index

    def seed_for(self, index: int) -> int:
        """The resampling seed of the ``index``-th assertion of the running test: from the
        session seed and the test's node id, so a rerun draws the same resamples."""
        text = f"{self.settings.seed}\x00{self.nodeid}\x00{index}".encode()
        return int.from_bytes(hashlib.sha256(text).digest()[:8], "big")

    def add(self, record: Record) -> None:
        if not self.keep:
            return
        if len(self.records) >= MAX_RECORDS:
            raise InvalidInputError(f"more than {MAX_RECORDS} statistical assertions in one run")
        self.records.append(record)


_DEFAULT = Run()
_STACK: list[Run] = []


def current() -> Run:
    """The innermost active run (pytest's), else the default run."""
    return _STACK[-1] if _STACK else _DEFAULT


def push(run: Run) -> None:
    _STACK.append(run)


def pop(run: Run) -> None:
    if run in _STACK:
        _STACK.remove(run)
