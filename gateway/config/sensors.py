"""Serial sensor configuration."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from gateway.config.common import Ident, StrictModel


class ModbusRegister(StrictModel):
    """One holding register (or register pair) mapped to a named reading."""

    name: Ident
    address: int = Field(ge=0, le=65535)
    count: Literal[1, 2] = 1
    signed: bool = False
    scale: float = 1.0
    offset: float = 0.0
    unit: str = ""


class ModbusConfig(StrictModel):
    """Polling settings for Modbus RTU devices (function 03)."""

    slave: int = Field(default=1, ge=0, le=247)
    registers: list[ModbusRegister] = Field(default_factory=list)
    timeout_s: float = Field(default=1.0, gt=0)


class SensorConfig(StrictModel):
    """One serial sensor: where it is, what it speaks and how often to publish it."""

    id: Ident
    enabled: bool = True
    protocol: str = Field(description="A protocol name from `gateway sensors protocols`.")
    port: str = Field(description="A device path or a pyserial URL (socket://, rfc2217://, ...).")
    baud: int = Field(default=9600, gt=0)
    poll_interval_s: float = Field(default=1.0, gt=0, description="For polled protocols.")
    publish_interval_s: float = Field(
        default=10.0, ge=0, description="Publish at most one reading per interval; 0 publishes every reading."
    )
    reopen_max_s: float = Field(default=30.0, gt=0, description="Longest re-open back-off.")
    modbus: ModbusConfig | None = None
