"""Compact batches: many stored events in one zlib-compressed MQTT message.

A unit with ``[outbox] batch = "negotiate"`` (the types the central consumers declare
they read, :mod:`gateway.events.capabilities`) or ``"backlog"`` (every bulk type) sends
a bulk-lane backlog as batches on ``{prefix}/{site}/{gw}/batch``: encoding
``zlib-json-array`` version 1. The payload is the zlib stream (RFC 1950) of the UTF-8
JSON object ``{"schema": 1, "events": [event, ...]}``: each event exactly as it would
have been published alone (schema 1 envelope, same ``id`` and ``seq``), in the order
the unit sent them. The events' own envelope is unchanged, so the schema version stays
1; the container is its own documented format on its own topic (docs/events.md).

:func:`encode_batch` joins stored payloads without parsing them again;
:func:`decode_batch` is the receiving side's one way in: bounded decompression (a
"zip bomb" stops at ``max_bytes``), strict UTF-8 JSON, the container's shape; each
event is then checked like a single message.
"""

from __future__ import annotations

import json
import zlib
from collections.abc import Sequence
from typing import Any, Final

BATCH_SCHEMA: Final = 1
_HEAD: Final = b'{"schema":1,"events":['
_TAIL: Final = b"]}"
LEVEL: Final = 6


class BatchError(ValueError):
    """A batch that cannot be read: ``reason`` is ``oversized`` or ``malformed``."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason


def encode_batch(payloads: Sequence[bytes]) -> bytes:
    """The compressed batch of already encoded events (compact JSON objects)."""
    return zlib.compress(_HEAD + b",".join(payloads) + _TAIL, LEVEL)


def batch_json_size(payloads: Sequence[bytes]) -> int:
    """Bytes of the batch before compression."""
    return len(_HEAD) + len(_TAIL) + sum(len(p) for p in payloads) + max(len(payloads) - 1, 0)


def decode_batch(payload: bytes, max_bytes: int, max_events: int) -> list[Any]:
    """The events of a batch (each still to be checked as a single event).

    Raises:
        BatchError: ``oversized`` when it inflates beyond ``max_bytes`` or holds more
        than ``max_events``; ``malformed`` for a bad zlib stream, trailing bytes, bad
        UTF-8 or JSON, or another shape than ``{"schema": 1, "events": [...]}``.
    """
    inflater = zlib.decompressobj()
    try:
        raw = inflater.decompress(payload, max_bytes + 1)
    except zlib.error as exc:
        raise BatchError("malformed", f"not a zlib stream: {exc}") from exc
    if len(raw) > max_bytes or inflater.unconsumed_tail:
        raise BatchError("oversized", f"batch inflates beyond {max_bytes} bytes")
    if not inflater.eof:
        raise BatchError("malformed", "zlib stream truncated")
    if inflater.unused_data:
        raise BatchError("malformed", f"{len(inflater.unused_data)} bytes after the zlib stream")
    try:
        obj = json.loads(raw.decode("utf-8"))
    except RecursionError as exc:
        raise BatchError("malformed", "JSON nested too deeply") from exc
    except (UnicodeDecodeError, ValueError) as exc:
        raise BatchError("malformed", f"batch JSON: {str(exc)[:200]}") from exc
    if not isinstance(obj, dict) or obj.keys() != {"schema", "events"}:
        raise BatchError("malformed", 'not a {"schema", "events"} object')
    if obj["schema"] != BATCH_SCHEMA or isinstance(obj["schema"], bool):
        raise BatchError("malformed", f"batch schema {obj['schema']!r} (this reader reads 1)")
    events = obj["events"]
    if not isinstance(events, list) or not events:
        raise BatchError("malformed", "events: not a non-empty list")
    if len(events) > max_events:
        raise BatchError("oversized", f"{len(events)} events > {max_events}")
    return events
