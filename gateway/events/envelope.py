"""The event envelope: version, identity, sequence, origin, type, time and payload.

An analytics result or a sensor reading first becomes a :class:`Draft` (type, source,
time, data). The outbox turns a draft into a full envelope when it stores it: it
allocates the ``seq`` and the ``id`` in the same transaction, so both survive restarts
and stay unchanged on redelivery.
"""

from __future__ import annotations

import functools
import json
import os
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Final, Literal, get_args

from gateway.jsontypes import JsonObject, JsonValue

SCHEMA_VERSION: Final = 1


EventType = Literal[
    "line_crossing",
    "zone_enter",
    "zone_exit",
    "alert",
    "aggregate",
    "flow",
    "sensor_reading",
    "health",
    "availability",
    "command",
    "actuation",
    "manifest",
]
EVENT_TYPES: Final[tuple[EventType, ...]] = get_args(EventType)
# The source of events that concern the gateway itself (health, availability).
GATEWAY_SOURCE: Final = "gateway"


@dataclass(frozen=True, slots=True)
class Draft:
    """An event before it has a sequence number and an id.

    Attributes:
        type: one of :data:`EVENT_TYPES`.
        source: camera id, sensor id, or ``gateway``.
        timestamp: when it happened, seconds since the epoch (UTC).
        data: the type-specific payload (see ``schema/v1.json``).
    """

    type: EventType
    source: str
    timestamp: float
    data: Mapping[str, JsonValue]


def format_ts(epoch_s: float) -> str:
    """RFC 3339 UTC time with milliseconds and ``Z``: ``2026-11-24T18:40:00.123Z``."""
    millis = round(epoch_s * 1000)
    return f"{_second(millis // 1000)}{millis % 1000:03d}Z"


@functools.lru_cache(maxsize=256)
def _second(epoch_s: int) -> str:
    """``2026-11-24T18:40:00.`` (events of one second share it: formatting is slow)."""
    return datetime.fromtimestamp(epoch_s, tz=UTC).strftime("%Y-%m-%dT%H:%M:%S.")


def parse_ts(text: str) -> float:
    """Parse a :func:`format_ts` time back to seconds since the epoch."""
    return datetime.strptime(text, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC).timestamp()


def new_id() -> str:
    """Return a fresh event id: a uuid4 as 32 lowercase hex digits."""
    return uuid.uuid4().hex


_VERSION_MASK = ~(0xF000 << 64) & ~(0xC000 << 48)
_VERSION_BITS = (0x4000 << 64) | (0x8000 << 48)


def new_ids(count: int) -> list[str]:
    """``count`` fresh event ids like :func:`new_id`, from one read of the random source.

    A batch of events pays one system call, not one each.
    """
    raw = os.urandom(16 * count)
    return [
        f"{(int.from_bytes(raw[i : i + 16]) & _VERSION_MASK) | _VERSION_BITS:032x}"
        for i in range(0, 16 * count, 16)
    ]


def envelope(draft: Draft, *, seq: int, event_id: str, gateway: str, site: str) -> JsonObject:
    """Return the complete event object for ``draft`` (field order as documented)."""
    return {
        "schema": SCHEMA_VERSION,
        "id": event_id,
        "seq": seq,
        "gateway": gateway,
        "site": site,
        "source": draft.source,
        "type": draft.type,
        "ts": format_ts(draft.timestamp),
        "data": draft.data,
    }


def encode(event: Mapping[str, JsonValue]) -> bytes:
    """Compact UTF-8 JSON, as published."""
    return json.dumps(event, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
