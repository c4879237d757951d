"""What every actuator implements, and its one error type."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from gateway.actuation import Cause, OutputValue, RuleState
from gateway.errors import GatewayError


class ActuatorError(GatewayError):
    """A write that did not take effect (timeout, refused, device gone); it is retried."""


@dataclass(frozen=True, slots=True)
class WriteContext:
    """What a write is for: the rule, the state, why, and its time limit."""

    rule: str
    state: RuleState
    cause: Cause
    timeout_s: float
    lease_s: float = 0.0


class Actuator(Protocol):
    """One output device (a coil, a register, a board output, a topic, a URL, a line).

    ``write`` returns once the device took the value, or raises :class:`ActuatorError`
    within about ``context.timeout_s``. ``open`` may be called again after a failure
    (``close`` is called first), so a vanished device is re-opened on the next retry.
    """

    def open(self) -> None:
        """Connect (may raise :class:`ActuatorError`)."""

    def write(self, value: OutputValue, context: WriteContext) -> None:
        """Write one value."""

    def close(self) -> None:
        """Release the device (safe to call twice)."""
