"""A decoded sensor reading, in SI units with documented names."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class Reading:
    """One reading from one sensor.

    Attributes:
        protocol: the decoder's registry name (``pms5003``, ``nmea``, ...).
        values: documented names to numbers or short strings (``pm2_5``, ``lat``, ...).
        timestamp: wall-clock time it was decoded, seconds since the epoch (UTC).
        sensor_id: the configured sensor id; empty when decoding a capture.
        extra: secondary values kept alongside (CF=1 values, particle counts, raw fields).
    """

    protocol: str
    values: dict[str, float | int | str]
    timestamp: float = 0.0
    sensor_id: str = ""
    extra: dict[str, float | int | str] = field(default_factory=dict)
