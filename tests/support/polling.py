"""Waiting in tests for something another thread or process does: one poll loop.

A timeout here is a hang guard, never a timer: :func:`wait_for` returns as soon as the
condition holds (assert its result), :func:`wait_until` raises when it never does, and
:func:`wait_value` returns the condition's first true value (raising when there is none).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


def wait_value(
    condition: Callable[[], T], timeout: float = 20.0, interval: float = 0.05, what: str = ""
) -> T:
    """Poll ``condition`` until it returns something true; that value (``AssertionError``
    after ``timeout`` s, naming ``what`` when given)."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value or time.monotonic() >= deadline:
            break
        time.sleep(interval)
    if not value:
        raise AssertionError(f"timed out waiting for {what or 'condition'} ({timeout} s)")
    return value


def wait_for(done: Callable[[], object], timeout: float = 20.0, interval: float = 0.05) -> bool:
    """Poll ``done`` every ``interval`` s until it is true or ``timeout`` s pass; its last word."""
    try:
        wait_value(done, timeout, interval)
    except AssertionError:
        return False
    return True


def wait_until(done: Callable[[], object], timeout: float = 20.0, what: str = "condition") -> None:
    """Like :func:`wait_for`; ``AssertionError`` naming ``what`` when it never holds."""
    wait_value(done, timeout, what=what)
