"""Waiting in tests for something another thread or process does: one poll loop.

A timeout here is a hang guard, never a timer: :func:`wait_for` returns as soon as the
condition holds (assert its result), :func:`wait_until` raises when it never does.
"""

from __future__ import annotations

import time
from collections.abc import Callable


def wait_for(done: Callable[[], object], timeout: float = 20.0, interval: float = 0.05) -> bool:
    """Poll ``done`` every ``interval`` s until it is true or ``timeout`` s pass; its last word."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if done():
            return True
        time.sleep(interval)
    return bool(done())


def wait_until(done: Callable[[], object], timeout: float = 20.0, what: str = "condition") -> None:
    """Like :func:`wait_for`; ``AssertionError`` naming ``what`` when it never holds."""
    if not wait_for(done, timeout):
        raise AssertionError(f"timed out waiting for {what} ({timeout} s)")
