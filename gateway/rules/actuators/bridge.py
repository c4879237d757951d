"""An OUTPUT_SET command to a sensor board over the firmware bridge (RSB).

The board's serial port belongs to the gateway's sensor reader of that ``[[sensors]]``
entry (protocol ``rsb``); :class:`BridgePorts` is how the rules reach it: it queues the
request on that port, writes it at once and waits for the board's OUTPUT_STATE answer.
The command carries the output's fail-safe value and a lease: the board applies the
fail-safe value by itself when the lease runs out without a refresh (the gateway
stopped, crashed or lost the cable), so the board's output is safe even after a
``kill -9``. The output worker refreshes the value every ``lease_s / 3``.
"""

from __future__ import annotations

from typing import Protocol

from gateway.config.rules import BridgeAction
from gateway.rules.actuators.base import ActuatorError, WriteContext
from gateway.rules.types import OutputValue


class BridgePorts(Protocol):
    """The gateway's RSB ports, by sensor id."""

    def output_set(
        self,
        sensor: str,
        node: int,
        output: int,
        value: float,
        *,
        fail_safe: float,
        lease_ms: int,
        timeout_s: float,
    ) -> float:
        """Send OUTPUT_SET and wait for the board's answer; return the value it reports.

        Raises:
            ActuatorError: no such port, the port is closed, no answer in time, or the
                board refused (unknown output, bad value).
        """


class BridgeActuator:
    """One board output."""

    def __init__(self, cfg: BridgeAction, ports: BridgePorts | None) -> None:
        self.cfg = cfg
        self.ports = ports

    def open(self) -> None:
        """Check that the gateway passed its bridge ports."""
        if self.ports is None:
            raise ActuatorError(f"bridge {self.cfg.target()}: no firmware-bridge ports")

    def write(self, value: OutputValue, context: WriteContext) -> None:
        """Send the value with the fail-safe value and lease; require the board's echo."""
        cfg = self.cfg
        if self.ports is None:
            raise ActuatorError(f"bridge {cfg.target()}: no firmware-bridge ports")
        wanted = float(value)
        got = self.ports.output_set(
            cfg.sensor,
            cfg.node,
            cfg.output,
            wanted,
            fail_safe=cfg.fail_safe,
            lease_ms=round(context.lease_s * 1000),
            timeout_s=context.timeout_s,
        )
        if abs(got - wanted) > 1e-6 * max(1.0, abs(wanted)):
            raise ActuatorError(f"bridge {cfg.target()}: board reports {got}, not {wanted}")

    def close(self) -> None:
        """Nothing held: the port belongs to the sensor reader."""
