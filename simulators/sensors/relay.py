"""A Modbus RTU relay board / sign controller: coils and holding registers on a pty.

``socat`` makes a linked pty pair; pymodbus's serial server answers on one end and the
gateway opens :attr:`RelayBoard.path`. Every write (functions 05 and 06) is recorded with
its arrival time on the wall clock and the monotonic clock, so tests and
``gateway bench rules`` can see what an output did and when, from the device's side.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from pymodbus.server import ModbusSerialServer, ModbusTcpServer
from pymodbus.simulator import DataType, SimData, SimDevice

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


class RelayBoard:
    """A relay board / sign controller: ``size`` coils and holding registers on ``unit``.

    ``path`` is the pty a client opens (RTU); with ``tcp_port`` the board is a Modbus TCP
    device on ``127.0.0.1:tcp_port`` instead. :attr:`writes` records every write with
    its arrival time (monotonic and wall clock).
    """

    def __init__(
        self, unit: int = 1, baud: int = 115200, size: int = 16, tcp_port: int | None = None
    ) -> None:
        self.tcp_port = tcp_port
        if tcp_port is None and shutil.which("socat") is None:
            raise RuntimeError("socat is needed (apt install socat)")
        self._tmp = tempfile.mkdtemp(prefix="rules-modbus-")
        self.path = os.path.join(self._tmp, "ttyRELAY")
        self.server_path = os.path.join(self._tmp, "ttyRELAY.server")
        self.unit = unit
        self.baud = baud
        self.writes: list[Write] = []
        self.coils = [False] * size
        self.registers = [0] * size
        self.size = size
        self._lock = threading.Lock()
        self._socat: subprocess.Popen[bytes] | None = None
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._server: Any = None

    def start(self) -> RelayBoard:
        if self.tcp_port is not None:
            self.start_server()
            return self
        self._socat = subprocess.Popen(
            [
                "socat",
                f"pty,raw,echo=0,link={self.server_path}",
                f"pty,raw,echo=0,link={self.path}",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        while not (os.path.exists(self.path) and os.path.exists(self.server_path)):
            if self._socat.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("socat did not create the pty pair")
            time.sleep(0.02)
        self.start_server()
        return self

    def start_server(self) -> None:
        ready = threading.Event()
        self._thread = threading.Thread(target=self._serve, args=(ready,), daemon=True)
        self._thread.start()
        if not ready.wait(10):
            raise RuntimeError("modbus server did not start")

    def stop_server(self) -> None:
        """Stop answering (the pty stays: requests time out)."""
        loop, server = self._loop, self._server
        if loop is not None and server is not None:
            with contextlib.suppress(Exception):
                asyncio.run_coroutine_threadsafe(server.shutdown(), loop).result(10)
        if self._thread is not None:
            self._thread.join(10)
        self._thread = self._loop = self._server = None

    def stop(self) -> None:
        self.stop_server()
        if self._socat is not None:
            self._socat.terminate()
            self._socat.wait(5)
        shutil.rmtree(self._tmp, ignore_errors=True)

    def coil_writes(self, address: int) -> list[Write]:
        with self._lock:
            return [w for w in self.writes if w.function == FC_WRITE_COIL and w.address == address]

    def register_writes(self, address: int) -> list[Write]:
        with self._lock:
            return [
                w for w in self.writes if w.function == FC_WRITE_REGISTER and w.address == address
            ]

    def wait(self, predicate: Callable[[], object], timeout: float = 20.0) -> bool:
        """Poll ``predicate`` until true or ``timeout`` (a hang guard, not a timer)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if predicate():
                return True
            time.sleep(0.005)
        return bool(predicate())

    def _serve(self, ready: threading.Event) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        try:
            loop.run_until_complete(self._main(ready))
        finally:
            loop.close()

    async def _main(self, ready: threading.Event) -> None:
        blocks = (
            [SimData(0, count=self.size, values=0, datatype=DataType.BITS)],
            [SimData(0, count=self.size, values=0, datatype=DataType.BITS)],
            [SimData(0, count=self.size, values=0, datatype=DataType.REGISTERS)],
            [SimData(0, count=self.size, values=0, datatype=DataType.REGISTERS)],
        )
        device = SimDevice(id=self.unit, simdata=blocks, action=self._action)
        server: Any
        if self.tcp_port is not None:
            server = ModbusTcpServer(device, address=("127.0.0.1", self.tcp_port))
        else:
            server = ModbusSerialServer(device, port=self.server_path, baudrate=self.baud)
        self._server = server
        await server.serve_forever(background=True)
        ready.set()
        with contextlib.suppress(asyncio.CancelledError):
            await server.serving

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
