"""Refused requests: counted always, logged as one short line, at a bounded rate.

A predictor on a plant network gets bad requests from broken clients and from anyone who
can reach its port. Logging each in full (a traceback, the rejected value) lets a burst of
them fill the disk and slow the predictor down; logging none hides a broken client. So each
refusal is counted (every surface exposes the counts as a metric) and logged as one line of
at most :data:`LINE_CHARS` characters, at most ``burst`` lines per ``window`` seconds; the
first line of the next window says how many were left out. Standard library only.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from shopfloor.errors import bounded

#: Longest message a refusal log line carries (the client sees the same bounded message).
LINE_CHARS = 200


class RefusalLog:
    """Counts refusals by (surface, status) and logs them, rate-limited."""

    def __init__(
        self,
        logger: logging.Logger | None = None,
        burst: int = 10,
        window: float = 10.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.logger = logger or logging.getLogger("shopfloor.refused")
        self.burst = burst
        self.window = window
        self._clock = clock
        self._lock = threading.Lock()
        self._counts: dict[tuple[str, str], int] = {}
        self._window_start = clock()
        self._logged = 0
        self._suppressed = 0

    def refused(self, surface: str, status: str | int, message: str) -> None:
        """Record one refused request; log it unless this window's budget is spent."""
        key = (surface, str(status))
        with self._lock:
            self._counts[key] = self._counts.get(key, 0) + 1
            now = self._clock()
            suppressed = 0
            if now - self._window_start >= self.window:
                suppressed, self._suppressed = self._suppressed, 0
                self._window_start, self._logged = now, 0
            if self._logged >= self.burst:
                self._suppressed += 1
                return
            self._logged += 1
        if suppressed:
            self.logger.warning("%d more refused requests were not logged in the last %.0f s",
                                suppressed, self.window)
        self.logger.warning("refused %s request (%s): %s", surface, status, bounded(message, LINE_CHARS))

    def counts(self) -> dict[tuple[str, str], int]:
        """Refusals so far by (surface, status): the source of the refused-requests metric."""
        with self._lock:
            return dict(self._counts)
