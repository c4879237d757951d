"""A synthetic event source: ``sensor_reading`` events at a fixed rate (tests, demos).

Enabled by ``[events] synthetic_events_per_s`` (or ``GATEWAY_EVENTS__SYNTHETIC_EVENTS_PER_S``).
Each event carries a counter ``n`` so gaps are visible downstream.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

from gateway.events.envelope import Draft

SOURCE = "synthetic"
_TICK_S = 0.01


class SyntheticSource:
    """Calls ``emit`` with batches of drafts so that ``rate`` events/s leave on average."""

    def __init__(self, emit: Callable[[Sequence[Draft]], Any], rate: float) -> None:
        self.emit = emit
        self.rate = rate
        self.count = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        """Start emitting."""
        self._thread = threading.Thread(target=self._run, name="synthetic", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop emitting."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(5.0)
            self._thread = None

    def _run(self) -> None:
        start = time.monotonic()
        while not self._stop.wait(_TICK_S):
            due = int((time.monotonic() - start) * self.rate) - self.count
            if due <= 0:
                continue
            now = time.time()
            drafts = [
                Draft(
                    "sensor_reading",
                    SOURCE,
                    now,
                    {
                        "sensor": SOURCE,
                        "protocol": SOURCE,
                        "values": {"n": self.count + i + 1},
                        "extra": {},
                    },
                )
                for i in range(min(due, 10_000))
            ]
            self.emit(drafts)
            self.count += len(drafts)
