"""Modbus RTU polling (function 03, read holding registers) with pymodbus.

The register map comes from config: each entry names a 16-bit register or a 32-bit
register pair (high word first), signed or not, scaled as ``raw * scale + offset``.
Contiguous entries are read in one request. Timeouts, exception responses and
responses with a bad CRC are counted separately; a poll that got at least one value
yields a :class:`~gateway.sensors.types.Reading` of the named, scaled values.
"""

from __future__ import annotations

import logging
import time
from dataclasses import asdict, dataclass, field
from typing import Any

from pymodbus.client import ModbusSerialClient
from pymodbus.exceptions import ConnectionException, ModbusIOException

from gateway.config.sensors import ModbusRegister, SensorConfig
from gateway.errors import SensorError, UsageError
from gateway.sensors.types import Reading

MAX_REGISTERS_PER_REQUEST = 125
_FC_READ_HOLDING = 0x03


def crc16(data: bytes) -> int:
    """Modbus RTU CRC-16 (polynomial 0xA001 reflected, initial 0xFFFF)."""
    crc = 0xFFFF
    for byte in data:
        crc ^= byte
        for _ in range(8):
            crc = (crc >> 1) ^ 0xA001 if crc & 1 else crc >> 1
    return crc


def crc_ok(frame: bytes) -> bool:
    """Whether an RTU frame's last two bytes (little-endian) are the CRC of the rest."""
    return len(frame) >= 4 and crc16(frame[:-2]) == int.from_bytes(frame[-2:], "little")


@dataclass(frozen=True, slots=True)
class Block:
    """A run of contiguous registers read by one request."""

    start: int
    count: int
    entries: tuple[ModbusRegister, ...]


def plan_blocks(registers: list[ModbusRegister]) -> list[Block]:
    """Group the register map into contiguous requests of at most 125 registers."""
    blocks: list[Block] = []
    run: list[ModbusRegister] = []
    for reg in sorted(registers, key=lambda r: r.address):
        if run:
            end = run[-1].address + run[-1].count
            if reg.address < end:
                raise UsageError(f"modbus registers {run[-1].name} and {reg.name} overlap")
            if reg.address == end and end + reg.count - run[0].address <= MAX_REGISTERS_PER_REQUEST:
                run.append(reg)
                continue
            blocks.append(_block(run))
        run = [reg]
    if run:
        blocks.append(_block(run))
    return blocks


def _block(run: list[ModbusRegister]) -> Block:
    start = run[0].address
    return Block(start, run[-1].address + run[-1].count - start, tuple(run))


def scale(reg: ModbusRegister, words: list[int]) -> float:
    """Turn one entry's raw register words into its scaled value."""
    raw = words[0] if reg.count == 1 else (words[0] << 16) | words[1]
    bits = 16 * reg.count
    if reg.signed and raw >= 1 << (bits - 1):
        raw -= 1 << bits
    value = raw * reg.scale + reg.offset
    return round(value, 9)


@dataclass
class ModbusCounters:
    """What happened to the polls."""

    polls: int = 0
    requests: int = 0
    good: int = 0
    timeouts: int = 0
    exceptions: int = 0
    bad_crc: int = 0
    last_exception_code: int = 0
    exception_codes: dict[int, int] = field(default_factory=dict)


class ModbusPoller:
    """Owns one pymodbus serial client for one configured device."""

    def __init__(self, cfg: SensorConfig) -> None:
        if cfg.modbus is None or not cfg.modbus.registers:
            raise UsageError(f"sensor {cfg.id}: modbus needs a register map")
        self.cfg = cfg
        self.modbus = cfg.modbus
        self.blocks = plan_blocks(cfg.modbus.registers)
        self.counters = ModbusCounters()
        self._client: Any = None
        self._crc_failed = False
        # pymodbus logs every timeout at ERROR; they are counted and logged by the reader
        logging.getLogger("pymodbus").setLevel(logging.CRITICAL)

    def connect(self) -> None:
        """Open the serial port (any pyserial URL); :class:`SensorError` if it cannot."""
        client = ModbusSerialClient(
            port=self.cfg.port,
            baudrate=self.cfg.baud,
            parity=self.modbus.parity,
            stopbits=self.modbus.stopbits,
            timeout=self.modbus.timeout_s,
            retries=0,
            trace_packet=self._trace,
        )
        if not client.connect():
            client.close()  # type: ignore[no-untyped-call]
            raise SensorError(f"cannot open modbus port {self.cfg.port}")
        self._client = client

    def close(self) -> None:
        """Close the port (idempotent)."""
        client, self._client = self._client, None
        if client is not None:
            client.close()

    def stats(self) -> dict[str, int]:
        """Return the counters (exception codes flattened to ``exception_<code>``)."""
        data = asdict(self.counters)
        codes = data.pop("exception_codes")
        data.update({f"exception_{code}": n for code, n in codes.items()})
        return data

    def _trace(self, sending: bool, data: bytes) -> bytes:
        """See every received buffer; flag a complete response whose CRC is wrong."""
        if not sending and len(data) >= 5:
            function = data[1]
            size = 5 if function & 0x80 else (5 + data[2] if function == _FC_READ_HOLDING else 0)
            if size and len(data) >= size and not crc_ok(data[:size]):
                self._crc_failed = True
        return data

    def poll(self) -> Reading | None:
        """Read every block once; ``OSError`` when the port is gone (the reader reopens)."""
        if self._client is None:
            raise OSError("modbus port is not open")
        client = self._client
        self.counters.polls += 1
        values: dict[str, float | int | str] = {}
        extra: dict[str, float | int | str] = {}
        for block in self.blocks:
            self.counters.requests += 1
            self._crc_failed = False
            try:
                response = client.read_holding_registers(
                    block.start, count=block.count, device_id=self.modbus.slave
                )
            except ModbusIOException:
                if self._crc_failed:
                    self.counters.bad_crc += 1
                else:
                    self.counters.timeouts += 1
                continue
            except ConnectionException as exc:
                self.close()
                raise OSError(f"modbus port {self.cfg.port} lost: {exc}") from exc
            if response.isError():
                code = int(getattr(response, "exception_code", 0))
                self.counters.exceptions += 1
                self.counters.last_exception_code = code
                if code in self.counters.exception_codes or len(self.counters.exception_codes) < 16:
                    self.counters.exception_codes[code] = (
                        self.counters.exception_codes.get(code, 0) + 1
                    )
                continue
            words = list(response.registers)
            for reg in block.entries:
                at = reg.address - block.start
                values[reg.name] = scale(reg, words[at : at + reg.count])
                if reg.unit:
                    extra[f"{reg.name}_unit"] = reg.unit
        if not values:
            return None
        self.counters.good += 1
        return Reading("modbus", values, time.time(), self.cfg.id, extra)
