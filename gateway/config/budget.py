"""``[budget]``: the unit's byte budget on its uplink (off unless a limit is set)."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, model_validator

from gateway.config.common import StrictModel

MIN_BUDGET_BYTES = 64 * 1024


class BudgetConfig(StrictModel):
    """Bytes per UTC day and/or month the unit may put on the wire, and how it degrades."""

    bytes_per_day: int | None = Field(
        default=None,
        ge=MIN_BUDGET_BYTES,
        description="Bytes (both directions, as `meter` counts them) per UTC day; unset: "
        "no daily limit.",
    )
    bytes_per_month: int | None = Field(
        default=None,
        ge=MIN_BUDGET_BYTES,
        description="Bytes (both directions, as `meter` counts them) per UTC calendar "
        "month; unset: none.",
    )
    meter: Literal["ip", "mqtt"] = Field(
        default="ip",
        description="What the limits count: `ip`, the bytes a plan bills (MQTT, TLS and "
        "the TCP/IP headers of every segment, from the kernel's counters; MQTT where the "
        "system has none), or `mqtt`, the MQTT packets alone.",
    )
    sensor_interval_s: float = Field(
        default=900.0,
        ge=10.0,
        le=86_400.0,
        description="At level coarse_sensors, one summary per sensor per this interval.",
    )
    window_s: float = Field(
        default=600.0,
        ge=5.0,
        le=86_400.0,
        description="The recent rate that projects the period's usage; also the least "
        "time between two steps down the degradation order.",
    )
    resume_s: float = Field(
        default=3600.0,
        ge=0.0,
        le=30 * 86_400.0,
        description="Least time at a level before stepping back up towards full.",
    )
    resume_ratio: float = Field(
        default=0.6,
        gt=0.0,
        lt=1.0,
        description="Step back up only while the projection is below this share of the limit.",
    )
    state_path: Path | None = Field(
        default=None, description="Where the usage is kept; default <data_dir>/budget.json."
    )

    @property
    def enabled(self) -> bool:
        """Whether any limit is set."""
        return self.bytes_per_day is not None or self.bytes_per_month is not None

    @model_validator(mode="after")
    def _month_holds_a_day(self) -> BudgetConfig:
        day, month = self.bytes_per_day, self.bytes_per_month
        if day is not None and month is not None and month < day:
            raise ValueError(
                f"bytes_per_month ({month}) is smaller than bytes_per_day ({day}): "
                "a month must hold at least one day"
            )
        return self
