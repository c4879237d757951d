"""Publish at most one reading per sensor per interval (``sensors[].publish_interval_s``).

A PMS5003 sends a frame every second and a GPS a fix every second; the city needs
one value every few seconds. Readings inside the interval are counted and dropped;
the first reading after the interval has passed is published.
"""

from __future__ import annotations

import time
from collections.abc import Callable


class ReadingThrottle:
    """Admit one reading per ``interval_s`` seconds; 0 admits every reading."""

    def __init__(self, interval_s: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.interval_s = interval_s
        self._clock = clock
        self._last: float | None = None
        self.admitted = 0
        self.suppressed = 0

    def admit(self) -> bool:
        """True when a reading arriving now is to be published."""
        now = self._clock()
        if self.interval_s <= 0 or self._last is None or now - self._last >= self.interval_s:
            self._last = now
            self.admitted += 1
            return True
        self.suppressed += 1
        return False
