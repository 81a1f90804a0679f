"""Refused requests: every one counted, at most ``burst`` logged per window, each line short."""

from __future__ import annotations

import logging

import pytest

from shopfloor.inference.refusals import LINE_CHARS, RefusalLog


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_counts_everything_logs_a_bounded_burst_then_summarises(caplog: pytest.LogCaptureFixture) -> None:
    clock = Clock()
    log = RefusalLog(logging.getLogger("test.refused"), burst=3, window=10.0, clock=clock)
    with caplog.at_level(logging.WARNING, logger="test.refused"):
        for i in range(50):
            log.refused("rest", 400, f"bad value {'x' * 10_000_000 if i == 0 else i}")
        log.refused("grpc", "INVALID_ARGUMENT", "short")
        assert len(caplog.records) == 3  # the burst; the rest counted only
        clock.now += 10.0
        log.refused("rest", 413, "too large")
    assert log.counts() == {("rest", "400"): 50, ("grpc", "INVALID_ARGUMENT"): 1, ("rest", "413"): 1}
    lines = [r.getMessage() for r in caplog.records]
    assert len(lines) == 5
    assert lines[3] == "48 more refused requests were not logged in the last 10 s"
    assert lines[4] == "refused rest request (413): too large"
    assert all(len(line) <= LINE_CHARS + 60 and "\n" not in line for line in lines)
    assert lines[0].startswith("refused rest request (400): bad value xxx") and lines[0].endswith("…")
