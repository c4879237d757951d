"""Helpers of the rules tests."""

from __future__ import annotations

import time
from collections.abc import Callable

from simulators.sensors.relay import RelayBoard as ModbusDevice

__all__ = ["ModbusDevice", "wait_for"]


def wait_for(predicate: Callable[[], object], timeout: float = 20.0) -> bool:
    """Poll ``predicate`` until it is true or ``timeout`` passes (a hang guard, not a timer)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.005)
    return bool(predicate())
