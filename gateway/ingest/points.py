"""The :class:`Point` type, its timestamp rule and InfluxDB line protocol encoding.

Point time: the event's millisecond timestamp plus ``seq mod 1e6`` nanoseconds.
Two events of one gateway in the same millisecond (same measurement and tags)
still get different times, so neither overwrites the other, while a redelivered
duplicate gets exactly the same time and overwrites its first copy (InfluxDB
keeps one point per series and timestamp). ``seq`` is also written as an integer
field so a stored point can be traced back to its event.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from datetime import datetime

FieldValue = float | int | bool | str

_SEQ_NS_MODULUS = 1_000_000


@dataclass(frozen=True, slots=True)
class Point:
    """One InfluxDB point: measurement, low-cardinality tags, fields, time in ns."""

    measurement: str
    tags: dict[str, str]
    fields: dict[str, FieldValue]
    time_ns: int


def parse_ts_ms(ts: str) -> int:
    """Milliseconds since the epoch from an RFC 3339 UTC time like ``2026-11-24T18:40:00.123Z``.

    Raises:
        ValueError: not an RFC 3339 time with a timezone.
    """
    text = ts[:-1] + "+00:00" if ts.endswith(("Z", "z")) else ts
    parsed = datetime.fromisoformat(text)
    if parsed.tzinfo is None:
        raise ValueError(f"timestamp without timezone: {ts!r}")
    seconds = int(parsed.timestamp())
    return seconds * 1000 + parsed.microsecond // 1000


def point_time_ns(ts_ms: int, seq: int) -> int:
    """Return the point time of an event: ms time in ns plus ``seq mod 1e6`` (see module doc)."""
    return ts_ms * 1_000_000 + seq % _SEQ_NS_MODULUS


@functools.lru_cache(maxsize=4096)
def _escape_key(text: str) -> str:
    """Escape a tag key, tag value or field key (commas, equals signs, spaces).

    Cached (bounded): the same few tag values and field names recur in every point.
    """
    return (
        text.replace("\\", "\\\\")
        .replace(",", "\\,")
        .replace("=", "\\=")
        .replace(" ", "\\ ")
        .replace("\n", "\\n")
    )


@functools.lru_cache(maxsize=256)
def _escape_measurement(text: str) -> str:
    return text.replace("\\", "\\\\").replace(",", "\\,").replace(" ", "\\ ").replace("\n", "\\n")


def _field_value(value: FieldValue) -> str | None:
    """Encode a field value for line protocol, or ``None`` when it cannot be stored (NaN, inf)."""
    if isinstance(value, float):
        return repr(value) if math.isfinite(value) else None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return f"{value}i"
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def to_line(point: Point) -> str:
    """Encode ``point`` as one line of InfluxDB line protocol (nanosecond precision).

    Empty tag values are left out (line protocol cannot carry them); non-finite
    floats are left out of the fields.

    Raises:
        ValueError: the point has no storable field.
    """
    parts = [_escape_measurement(point.measurement)]
    for key in sorted(point.tags):
        tag = point.tags[key]
        if tag:
            parts.append(f"{_escape_key(key)}={_escape_key(tag)}")
    fields = []
    for key, value in point.fields.items():
        encoded = _field_value(value)
        if encoded is not None:
            fields.append(f"{_escape_key(key)}={encoded}")
    if not fields:
        raise ValueError(f"point {point.measurement} has no storable field")
    return f"{','.join(parts)} {','.join(fields)} {point.time_ns}"
