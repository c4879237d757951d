"""Modbus outputs: coils (function 05) and holding registers (function 06), RTU or TCP.

Outputs on the same serial port (or TCP device) share one pymodbus client, so writes to
one RS-485 bus never interleave; each write waits for the device's echo (the Modbus
confirmation) at most ``timeout_s``. pymodbus's own retries are off: the output worker
retries with the project's back-off.
"""

from __future__ import annotations

import logging
import threading
from typing import Any

from pymodbus.client import ModbusSerialClient, ModbusTcpClient
from pymodbus.exceptions import ModbusException

from gateway.actuation import OutputValue
from gateway.config.rules import ModbusCoilAction, ModbusLink, ModbusRegisterAction
from gateway.rules.actuators.base import ActuatorError, WriteContext


class ModbusConnection:
    """One pymodbus client (a serial port or a TCP device), shared by its outputs."""

    def __init__(self, link: ModbusLink, timeout_s: float) -> None:
        self.link = link
        self.timeout_s = timeout_s
        self.lock = threading.Lock()
        self._client: Any = None
        logging.getLogger("pymodbus").setLevel(logging.CRITICAL)  # failures are reported

    def client(self) -> Any:
        """The connected client (call with :attr:`lock` held)."""
        if self._client is not None:
            return self._client
        link = self.link
        client: Any
        if link.transport == "tcp":
            assert link.host is not None
            client = ModbusTcpClient(
                link.host, port=link.tcp_port, timeout=self.timeout_s, retries=0
            )
        else:
            assert link.port is not None
            client = ModbusSerialClient(
                link.port,
                baudrate=link.baud,
                parity=link.parity,
                stopbits=link.stopbits,
                timeout=self.timeout_s,
                retries=0,
            )
        if not client.connect():
            client.close()
            raise ActuatorError(f"cannot open modbus {link.endpoint()}")
        self._client = client
        return client

    def reset(self) -> None:
        """Close the client; the next write reconnects (call with :attr:`lock` held)."""
        client, self._client = self._client, None
        if client is not None:
            client.close()


class ModbusPool:
    """The shared connections, by endpoint."""

    def __init__(self) -> None:
        self._connections: dict[str, ModbusConnection] = {}
        self._lock = threading.Lock()

    def get(self, link: ModbusLink, timeout_s: float) -> ModbusConnection:
        """The connection of ``link``'s endpoint (the first output's ``timeout_s`` is used)."""
        with self._lock:
            key = link.endpoint()
            if key not in self._connections:
                self._connections[key] = ModbusConnection(link, timeout_s)
            return self._connections[key]

    def close(self) -> None:
        """Close every connection."""
        with self._lock:
            for connection in self._connections.values():
                with connection.lock:
                    connection.reset()


class ModbusActuator:
    """Writes one coil or one holding register."""

    def __init__(
        self, cfg: ModbusCoilAction | ModbusRegisterAction, connection: ModbusConnection
    ) -> None:
        self.cfg = cfg
        self.connection = connection

    def open(self) -> None:
        """Connect the shared client (no-op when connected)."""
        with self.connection.lock:
            self.connection.client()

    def write(self, value: OutputValue, context: WriteContext) -> None:
        """Write and wait for the device's confirmation."""
        cfg = self.cfg
        with self.connection.lock:
            client = self.connection.client()
            try:
                if isinstance(cfg, ModbusCoilAction):
                    response = client.write_coil(cfg.address, bool(value), device_id=cfg.unit)
                else:
                    response = client.write_register(cfg.address, int(value), device_id=cfg.unit)
            except ModbusException as exc:  # timeout, lost port, garbled answer
                self.connection.reset()
                raise ActuatorError(f"modbus {cfg.target()}: {exc}") from exc
            except OSError as exc:
                self.connection.reset()
                raise ActuatorError(f"modbus {cfg.target()}: {exc}") from exc
        if response.isError():
            code = getattr(response, "exception_code", "?")
            raise ActuatorError(f"modbus {cfg.target()}: exception response {code}")
        # RTU has no transaction ids: a late answer to an earlier, timed-out request can
        # arrive in place of this one's. The echo must be of this write.
        echo = response.bits[:1] if isinstance(cfg, ModbusCoilAction) else response.registers[:1]
        wanted = bool(value) if isinstance(cfg, ModbusCoilAction) else int(value)
        if getattr(response, "address", cfg.address) != cfg.address or echo != [wanted]:
            with self.connection.lock:
                self.connection.reset()  # drop what else may be in the line's buffers
            raise ActuatorError(f"modbus {cfg.target()}: echo {echo} is not of this write")

    def close(self) -> None:
        """Nothing of its own: the pool closes the shared client."""
