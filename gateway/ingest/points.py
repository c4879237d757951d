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
import re
from dataclasses import dataclass
from datetime import datetime
from typing import Final

FieldValue = float | int | bool | str

_SEQ_NS_MODULUS = 1_000_000
# Tag values and field keys: at most this long, and no control characters or lone
# surrogates (InfluxDB refuses the whole batch for some, VictoriaMetrics mangles others).
MAX_NAME_CHARS: Final = 256
_UNFIT = re.compile("[\x00-\x1f\x7f-\x9f\ud800-\udfff]")


class EmptyPointError(ValueError):
    """A point with no storable field (only non-finite numbers): it is left out."""


class InvalidPointError(ValueError):
    """A tag value or field key that line protocol cannot carry faithfully."""


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

    Raises:
        InvalidPointError: empty, longer than :data:`MAX_NAME_CHARS`, or holding a
            control character or a lone surrogate.
    """
    if not text or len(text) > MAX_NAME_CHARS or _UNFIT.search(text):
        shown = text[:40].encode("utf-8", "backslashreplace").decode("utf-8")
        raise InvalidPointError(
            f"name {shown!r} (length {len(text)}): empty, longer than {MAX_NAME_CHARS} "
            "characters, or holding a control character or a lone surrogate"
        )
    return text.replace("\\", "\\\\").replace(",", "\\,").replace("=", "\\=").replace(" ", "\\ ")


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
        EmptyPointError: the point has no storable field.
        InvalidPointError: a tag value or field key that cannot be stored.
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
        raise EmptyPointError(f"point {point.measurement} has no storable field")
    return f"{','.join(parts)} {','.join(fields)} {point.time_ns}"
