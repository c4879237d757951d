"""Slow console actions run one at a time off the web threads: doctor's checks, model verify.

A :class:`Task` keeps its last result and whether it runs; starting it again while it
runs does nothing. The page polls the result.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

# The doctor's checks that are safe on a running unit: the others open what the running
# gateway holds (cameras, serial ports) or connect as it (the broker may then drop the
# unit's own connection); the console shows those parts live instead.
SAFE_DOCTOR_CHECKS = ("models", "disk", "clock")


class Task:
    """One background job with its last outcome."""

    def __init__(self, name: str, run: Callable[[], Any]) -> None:
        self.name = name
        self._run = run
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self.result: Any = None
        self.error: str | None = None
        self.started_at: float | None = None
        self.finished_at: float | None = None

    @property
    def running(self) -> bool:
        """Whether the job runs now."""
        with self._lock:
            return self._thread is not None and self._thread.is_alive()

    def start(self) -> bool:
        """Start the job; False when it already runs."""
        with self._lock:
            if self._thread is not None and self._thread.is_alive():
                return False
            self.started_at = time.time()
            self.finished_at = None
            self._thread = threading.Thread(
                target=self._body, name=f"console-{self.name}", daemon=True
            )
            self._thread.start()
            return True

    def join(self, timeout: float | None = None) -> None:
        """Wait for the job (tests, shutdown)."""
        thread = self._thread
        if thread is not None:
            thread.join(timeout)

    def _body(self) -> None:
        try:
            result, error = self._run(), None
        except Exception as exc:  # shown on the page, the console goes on
            result, error = None, f"{type(exc).__name__}: {exc}"
        self.result, self.error, self.finished_at = result, error, time.time()

    def as_dict(self) -> dict[str, Any]:
        """The task's state for the page."""
        return {
            "running": self.running,
            "started_at": self.started_at,
            "finished_at": self.finished_at,
            "error": self.error,
            "result": self.result,
        }
