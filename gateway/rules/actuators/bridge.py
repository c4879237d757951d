"""An OUTPUT_SET command to a sensor board over the firmware bridge (RSB).

The board's serial port belongs to the gateway's sensor reader of that ``[[sensors]]``
entry (protocol ``rsb``); :class:`ReaderBridgePorts` is how the rules reach it: it
queues the request on that port, writes it at once and waits for the board's
OUTPUT_STATE answer.

The command carries the output's fail-safe value and a lease: the board applies the
fail-safe value by itself when the lease runs out without a refresh (the gateway
stopped, crashed or lost the cable), so the board's output is safe even after a
``kill -9``. The output worker refreshes the value every ``lease_s / 3``.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Protocol

from firmware_bridge.messages import OUTPUT_BAD_VALUE, OUTPUT_OK, OUTPUT_UNKNOWN, Nack, OutputState
from gateway.actuation import OutputValue
from gateway.config.rules import BridgeAction
from gateway.rules.actuators.base import ActuatorError, WriteContext


class BridgeActuator:
    """One board output."""

    def __init__(self, cfg: BridgeAction, ports: ReaderBridgePorts | None) -> None:
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


class BridgePort(Protocol):
    """What the rules need of one rsb sensor reader (``gateway.serialports.reader``)."""

    @property
    def decoder(self) -> object:
        """The port's decoder (a ``gateway.sensors.rsb.BridgeDecoder`` for rsb)."""

    def write_now(self) -> bool:
        """Write the queued requests now; False when the port is not open."""


PORT_WAIT_S = 0.02


class ReaderBridgePorts:
    """The gateway's rsb ports: its sensor readers, found by sensor id."""

    def __init__(self, lookup: Callable[[str], BridgePort | None]) -> None:
        self._lookup = lookup

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
        """Send OUTPUT_SET on the sensor's port and wait for OUTPUT_STATE; the value it reports.

        Raises:
            ActuatorError: no such port, the port is closed, no answer in time, or the
                board refused (unknown output, bad value).
        """
        from gateway.sensors.rsb import BridgeDecoder

        where = f"bridge {sensor} node {node} output {output}"
        deadline = time.monotonic() + timeout_s
        reader = self._lookup(sensor)
        decoder = getattr(reader, "decoder", None)
        if reader is None or not isinstance(decoder, BridgeDecoder):
            raise ActuatorError(f"{where}: no running rsb sensor {sensor!r}")
        seq = decoder.output_set(node, output, value, fail_safe=fail_safe, lease_ms=lease_ms)
        try:
            while not reader.write_now():  # the port is (re)opening: wait for it, bounded
                if time.monotonic() >= deadline:
                    raise ActuatorError(f"{where}: port not open")
                time.sleep(PORT_WAIT_S)
        except OSError as exc:
            raise ActuatorError(f"{where}: {exc}") from exc
        answer = decoder.wait_answer(node, seq, max(deadline - time.monotonic(), 0.0))
        if answer is None:
            raise ActuatorError(f"{where}: no OUTPUT_STATE in {timeout_s} s")
        body = answer.body
        if isinstance(body, Nack):
            raise ActuatorError(f"{where}: board refused (NACK reason {body.reason})")
        if not isinstance(body, OutputState):
            raise ActuatorError(f"{where}: unexpected answer {type(body).__name__}")
        if body.status != OUTPUT_OK:
            name = {OUTPUT_UNKNOWN: "unknown output", OUTPUT_BAD_VALUE: "bad value"}
            raise ActuatorError(f"{where}: {name.get(body.status, f'status {body.status}')}")
        return float(body.value)
