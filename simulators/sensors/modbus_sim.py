"""A Modbus RTU device (a roadside weather/noise station) served by pymodbus on a pty.

``socat`` makes a linked pty pair; pymodbus's serial server answers on one end and
readers open the other. The holding registers (function 03) change slowly:

=======  =====  ===================================  ========================
address  count  meaning                              config (scale, signed)
=======  =====  ===================================  ========================
0        1      air temperature, 0.1 deg C           scale 0.1, signed
1        1      relative humidity, 0.1 %             scale 0.1
2        2      air pressure, Pa (high word first)   count 2
4        1      wind speed, 0.01 m/s                 scale 0.01
5        1      noise level, 0.1 dB(A)               scale 0.1
=======  =====  ===================================  ========================

Any other address answers with exception 02 (illegal data address). Faults:
``badcrc`` damages the CRC of a share of responses, ``silence`` stops answering for a
while every ``fault_period_s``; :meth:`ModbusSimulator.stop_server` stops the server.
"""

from __future__ import annotations

import random
import time
from typing import Any

from pymodbus.server import ModbusSerialServer
from pymodbus.simulator import DataType, SimData, SimDevice

from simulators.sensors.generators import Walk, diurnal
from simulators.sensors.modbus_server import ServedDevice, SocatPair, require_socat

REGISTER_COUNT = 6
MODBUS_FAULTS = ("badcrc", "silence")


def default_register_map() -> list[dict[str, Any]]:
    """Return the register map of this device as config entries (``sensors.modbus``)."""
    return [
        {"name": "temperature_c", "address": 0, "signed": True, "scale": 0.1, "unit": "C"},
        {"name": "humidity_pct", "address": 1, "scale": 0.1, "unit": "%"},
        {"name": "pressure_pa", "address": 2, "count": 2, "unit": "Pa"},
        {"name": "wind_mps", "address": 4, "scale": 0.01, "unit": "m/s"},
        {"name": "noise_dba", "address": 5, "scale": 0.1, "unit": "dB(A)"},
    ]


class WeatherModel:
    """Slowly varying station values."""

    def __init__(self, seed: int | None = None) -> None:
        self.rng = random.Random(seed)
        self.temp = Walk(self.rng, 12.0, 0.05)
        self.hum = Walk(self.rng, 60.0, 0.2)
        self.press = Walk(self.rng, 101325.0, 3.0)
        self.wind = Walk(self.rng, 2.0, 0.2)
        self.noise = Walk(self.rng, 60.0, 0.8)

    def registers(self, now: float) -> list[int]:
        """Return the 6 register words for time ``now``."""
        temp = self.temp.next(diurnal(now, 4.0, 18.0, peak_hour=14.0), -40, 60)
        hum = self.hum.next(diurnal(now, 80.0, 45.0, peak_hour=14.0), 0, 100)
        press = self.press.next(101325.0, 95000, 105000)
        wind = self.wind.next(3.0, 0, 40)
        noise = self.noise.next(diurnal(now, 45.0, 72.0), 30, 110)
        pa = round(press)
        return [
            round(temp * 10) & 0xFFFF,
            round(hum * 10),
            pa >> 16,
            pa & 0xFFFF,
            round(wind * 100),
            round(noise * 10),
        ]


class ModbusSimulator(ServedDevice):
    """Serves the station on the server end of a socat pty pair; readers use :attr:`path`."""

    def __init__(
        self,
        link: str | None = None,
        *,
        slave: int = 1,
        seed: int | None = None,
        baud: int = 9600,
        faults: frozenset[str] = frozenset(),
        fault_probability: float = 0.25,
        fault_period_s: float = 10.0,
        silence_s: float = 3.0,
    ) -> None:
        unknown = sorted(faults - set(MODBUS_FAULTS))
        if unknown:
            raise ValueError(
                f"unknown modbus fault(s) {', '.join(unknown)}; known: {', '.join(MODBUS_FAULTS)}"
            )
        require_socat("the Modbus simulator")
        self.slave = slave
        self.baud = baud
        self.model = WeatherModel(seed)
        self.faults = faults
        self.fault_probability = fault_probability
        self.fault_period_s = fault_period_s
        self.silence_s = silence_s
        self.responses = 0
        self.corrupted = 0
        self.silenced = 0
        self._rng = random.Random(seed)
        self._t0 = time.monotonic()
        super().__init__(SocatPair("modbus-sim-", "ttyMB0", link), "modbus-sim")

    def start(self) -> str:
        """Start socat and the server; return the path readers open."""
        self._pair.start()
        self.start_server()
        return self.path

    def _make_server(self) -> ModbusSerialServer:
        device = SimDevice(
            id=self.slave,
            simdata=[SimData(0, count=REGISTER_COUNT, values=0, datatype=DataType.REGISTERS)],
            action=self._action,
        )
        return ModbusSerialServer(
            device, port=self.server_path, baudrate=self.baud, trace_packet=self._trace
        )

    async def _action(  # noqa: PLR0917 (pymodbus calls actions positionally)
        self,
        function_code: int,
        start_address: int,
        address: int,
        count: int,
        registers: list[int],
        set_values: list[int] | list[bool] | None,
    ) -> None:
        for i, word in enumerate(self.model.registers(time.time())):
            at = i - start_address
            if 0 <= at < len(registers):
                registers[at] = word

    def _silent_now(self) -> bool:
        if "silence" not in self.faults:
            return False
        phase = (time.monotonic() - self._t0) % (self.fault_period_s + self.silence_s)
        return phase >= self.fault_period_s

    def _trace(self, sending: bool, data: bytes) -> bytes:
        if not sending or not data:
            return data
        if self._silent_now():
            self.silenced += 1
            return b""
        self.responses += 1
        if "badcrc" in self.faults and self._rng.random() < self.fault_probability:
            self.corrupted += 1
            return data[:-1] + bytes([data[-1] ^ 0xFF])
        return data
