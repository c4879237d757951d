"""Serial sensor configuration."""

from __future__ import annotations

from typing import Literal, Self

from pydantic import Field, field_validator, model_validator

from gateway.config.common import Ident, StrictModel
from gateway.errors import UsageError
from gateway.sensors.registry import PROTOCOLS  # a plain dict: validation touches no hardware


class ModbusRegister(StrictModel):
    """One holding register (or register pair) mapped to a named reading.

    The value published is ``raw * scale + offset``; a pair (``count = 2``) is read
    high word first (big-endian), the usual order for 32-bit Modbus values.
    """

    name: Ident
    address: int = Field(ge=0, le=65535, description="Register address (0-based, on the wire).")
    count: Literal[1, 2] = Field(default=1, description="1 = 16-bit, 2 = 32-bit value.")
    signed: bool = Field(default=False, description="Two's complement value.")
    scale: float = 1.0
    offset: float = 0.0
    unit: str = Field(default="", description="Unit label kept with the reading (extra).")


class ModbusConfig(StrictModel):
    """Polling settings for Modbus RTU devices (function 03)."""

    slave: int = Field(default=1, ge=0, le=247, description="Device (unit) id.")
    registers: list[ModbusRegister] = Field(default_factory=list)
    timeout_s: float = Field(default=1.0, gt=0, description="Response timeout per request.")
    parity: Literal["N", "E", "O"] = "N"
    stopbits: Literal[1, 2] = 1

    @model_validator(mode="after")
    def _unique_names(self) -> Self:
        names = [r.name for r in self.registers]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"register names must be unique; repeated: {', '.join(dupes)}")
        return self


class SensorConfig(StrictModel):
    """One serial sensor: where it is, what it speaks and how often to publish it."""

    id: Ident
    enabled: bool = True
    protocol: str = Field(description="A protocol name from `gateway sensors protocols`.")
    port: str = Field(description="A device path or a pyserial URL (socket://, rfc2217://, ...).")
    baud: int = Field(default=9600, gt=0)
    poll_interval_s: float = Field(default=1.0, gt=0, description="For polled protocols.")
    publish_interval_s: float = Field(
        default=10.0,
        ge=0,
        description="Publish at most one reading per interval; 0 publishes all.",
    )
    reopen_max_s: float = Field(default=30.0, gt=0, description="Longest re-open back-off.")
    read_timeout_s: float = Field(
        default=10.0,
        gt=0,
        description="Silence longer than this on a stream port counts a timeout.",
    )
    options: dict[str, str | int | float | bool] = Field(
        default_factory=dict,
        description="Protocol options (nmea allow_missing_checksum; ops243 unit, ...).",
    )
    modbus: ModbusConfig | None = None

    @field_validator("protocol")
    @classmethod
    def _protocol_known(cls, value: str) -> str:
        if value not in PROTOCOLS:
            raise ValueError(f"unknown protocol {value!r}; known: {', '.join(sorted(PROTOCOLS))}")
        return value

    @model_validator(mode="after")
    def _options_known(self) -> Self:
        spec = PROTOCOLS[self.protocol]
        if spec.factory is not None:
            try:  # building a decoder is pure: it only checks the options
                spec.factory(self.id, self.options)
            except UsageError as exc:
                raise ValueError(str(exc)) from exc
        elif self.options:
            raise ValueError(f"protocol {self.protocol!r} takes no options")
        return self

    @model_validator(mode="after")
    def _modbus_registers(self) -> Self:
        if self.protocol == "modbus" and (self.modbus is None or not self.modbus.registers):
            raise ValueError("protocol 'modbus' needs a modbus section with at least one register")
        return self
