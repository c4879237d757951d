"""A Modbus RTU relay board / sign controller: coils and holding registers on a pty.

``socat`` makes a linked pty pair; pymodbus's serial server answers on one end and the
gateway opens :attr:`RelayBoard.path`. Every write (functions 05 and 06) is recorded with
its arrival time on the wall clock and the monotonic clock, so tests and
``gateway bench rules`` can see what an output did and when, from the device's side.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass

from pymodbus.server import ModbusSerialServer, ModbusTcpServer
from pymodbus.simulator import DataType, SimData, SimDevice

from simulators.sensors.modbus_server import ServedDevice, SocatPair, require_socat

FC_WRITE_COIL = 5
FC_WRITE_REGISTER = 6


@dataclass(frozen=True)
class Write:
    """One write the device received."""

    mono: float
    wall: float
    function: int
    address: int
    value: int


class RelayBoard(ServedDevice):
    """A relay board / sign controller: ``size`` coils and holding registers on ``unit``.

    ``path`` is the pty a client opens (RTU); with ``tcp_port`` the board is a Modbus TCP
    device on ``127.0.0.1:tcp_port`` instead. :attr:`writes` records every write with
    its arrival time (monotonic and wall clock).
    """

    def __init__(
        self, unit: int = 1, baud: int = 115200, size: int = 16, tcp_port: int | None = None
    ) -> None:
        self.tcp_port = tcp_port
        if tcp_port is None:
            require_socat("the relay board")
        self.unit = unit
        self.baud = baud
        self.writes: list[Write] = []
        self.coils = [False] * size
        self.registers = [0] * size
        self.size = size
        self._lock = threading.Lock()
        super().__init__(SocatPair("rules-modbus-", "ttyRELAY"), "relay-board")

    def start(self) -> RelayBoard:
        """Start socat (RTU) and the server; return the board."""
        if self.tcp_port is None:
            self._pair.start()
        self.start_server()
        return self

    def coil_writes(self, address: int) -> list[Write]:
        with self._lock:
            return [w for w in self.writes if w.function == FC_WRITE_COIL and w.address == address]

    def register_writes(self, address: int) -> list[Write]:
        with self._lock:
            return [
                w for w in self.writes if w.function == FC_WRITE_REGISTER and w.address == address
            ]

    def _make_server(self) -> ModbusSerialServer | ModbusTcpServer:
        blocks = (
            [SimData(0, count=self.size, values=0, datatype=DataType.BITS)],
            [SimData(0, count=self.size, values=0, datatype=DataType.BITS)],
            [SimData(0, count=self.size, values=0, datatype=DataType.REGISTERS)],
            [SimData(0, count=self.size, values=0, datatype=DataType.REGISTERS)],
        )
        device = SimDevice(id=self.unit, simdata=blocks, action=self._action)
        if self.tcp_port is not None:
            return ModbusTcpServer(device, address=("127.0.0.1", self.tcp_port))
        return ModbusSerialServer(device, port=self.server_path, baudrate=self.baud)

    async def _action(  # noqa: PLR0917 (pymodbus calls actions positionally)
        self,
        function_code: int,
        start_address: int,
        address: int,
        count: int,
        registers: list[int],
        set_values: list[int] | list[bool] | None,
    ) -> None:
        if set_values is None or function_code not in (FC_WRITE_COIL, FC_WRITE_REGISTER):
            return
        value = int(set_values[0])
        with self._lock:
            self.writes.append(Write(time.monotonic(), time.time(), function_code, address, value))
            if function_code == FC_WRITE_COIL:
                self.coils[address] = bool(value)
            else:
                self.registers[address] = value
