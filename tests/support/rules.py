"""Helpers of the rules tests."""

from __future__ import annotations

from collections.abc import Callable

from simulators.sensors.relay import RelayBoard as ModbusDevice
from tests.support import polling

__all__ = ["ModbusDevice", "wait_for"]


def wait_for(predicate: Callable[[], object], timeout: float = 20.0) -> bool:
    """:func:`tests.support.polling.wait_for` every 5 ms (the rules tests watch short states)."""
    return polling.wait_for(predicate, timeout, interval=0.005)
