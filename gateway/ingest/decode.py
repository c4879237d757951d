"""Turn an MQTT payload into a checked event, or say why it goes to the dead-letter topic.

Two levels of checking (``IngestConfig.validation``):

- ``fast`` (default): the whole envelope is checked here by hand (every key, type and
  pattern of the published schema) and the mapping checks every ``data`` value it
  stores. About 100 times cheaper than the JSON Schema, so one worker keeps up with
  the broker.
- ``full``: additionally the published JSON Schema (:func:`gateway.events.validate_event`,
  about 0.3 ms per event) — also rejects ``data`` keys the mapping does not read.
"""

from __future__ import annotations

import json
import re
from typing import Any, Final, Literal

from gateway.events import EVENT_TYPES, SCHEMA_VERSION, event_problems
from gateway.events.topics import parse_topic

Validation = Literal["fast", "full"]

# Dead-letter reasons, each with its own counter.
OVERSIZED: Final = "oversized"
MALFORMED_JSON: Final = "malformed_json"
UNKNOWN_SCHEMA: Final = "unknown_schema"
INVALID_EVENT: Final = "invalid_event"
OUT_OF_RANGE: Final = "out_of_range"
DB_REJECTED: Final = "db_rejected"
INGEST_ERROR: Final = "ingest_error"
IDENTITY_MISMATCH: Final = "identity_mismatch"
REASONS: Final = (
    OVERSIZED,
    MALFORMED_JSON,
    UNKNOWN_SCHEMA,
    INVALID_EVENT,
    OUT_OF_RANGE,
    DB_REJECTED,
    INGEST_ERROR,
    IDENTITY_MISMATCH,
)
# The largest integer a database field (and the outbox's seq) holds: int64.
MAX_INT64: Final = 2**63 - 1
_MAX_DETAIL_CHARS: Final = 300

_KEYS: Final = frozenset({"schema", "id", "seq", "gateway", "site", "source", "type", "ts", "data"})
_TYPES: Final = frozenset(EVENT_TYPES)
_ID = re.compile(r"[0-9a-f]{32}")
_IDENT = re.compile(r"[A-Za-z0-9_.-]{1,64}")
_TS = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\.[0-9]{3}Z")


class RejectedError(Exception):
    """A message that cannot be ingested: ``reason`` (one of :data:`REASONS`) and detail."""

    def __init__(self, reason: str, detail: str) -> None:
        # A detail may quote the payload: keep it short and always encodable as UTF-8
        # (a lone surrogate from a JSON ``\\ud800`` escape becomes its escape again).
        detail = detail[:_MAX_DETAIL_CHARS].encode("utf-8", "backslashreplace").decode("utf-8")
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def check_envelope(obj: object) -> dict[str, Any]:
    """Return ``obj`` when its envelope is valid.

    Raises:
        RejectedError: ``unknown_schema`` for another schema version, ``invalid_event`` otherwise.
    """
    if not isinstance(obj, dict):
        raise RejectedError(MALFORMED_JSON, f"not a JSON object but {type(obj).__name__}")
    version = obj.get("schema")
    if version != SCHEMA_VERSION or not _is_int(version):
        raise RejectedError(UNKNOWN_SCHEMA, f"schema version {version!r} (this ingest reads 1)")
    if obj.keys() != _KEYS:
        missing = sorted(_KEYS - obj.keys())
        extra = sorted(obj.keys() - _KEYS)
        raise RejectedError(INVALID_EVENT, f"envelope keys: missing {missing}, unknown {extra}")
    if not isinstance(obj["id"], str) or not _ID.fullmatch(obj["id"]):
        raise RejectedError(INVALID_EVENT, "id: not 32 lowercase hex digits")
    seq = obj["seq"]
    if not _is_int(seq) or seq < 0:
        raise RejectedError(INVALID_EVENT, f"seq: {seq!r} is not an integer >= 0")
    if seq > MAX_INT64:
        raise RejectedError(OUT_OF_RANGE, f"seq: {seq} is larger than 2^63 - 1")
    for key in ("gateway", "site", "source"):
        value = obj[key]
        if not isinstance(value, str) or not _IDENT.fullmatch(value):
            raise RejectedError(INVALID_EVENT, f"{key}: {value!r} is not an identifier")
    if not isinstance(obj["type"], str) or obj["type"] not in _TYPES:
        raise RejectedError(INVALID_EVENT, f"type: unknown event type {obj['type']!r}")
    if not isinstance(obj["ts"], str) or not _TS.fullmatch(obj["ts"]):
        raise RejectedError(INVALID_EVENT, f"ts: {obj['ts']!r} is not YYYY-MM-DDTHH:MM:SS.mmmZ")
    if not isinstance(obj["data"], dict):
        raise RejectedError(INVALID_EVENT, "data: not an object")
    return obj


def decode(payload: bytes, max_bytes: int, validation: Validation = "fast") -> dict[str, Any]:
    """Decode and check one payload.

    Raises:
        RejectedError: with the dead-letter reason.
    """
    if len(payload) > max_bytes:
        raise RejectedError(OVERSIZED, f"{len(payload)} bytes > max_payload_bytes {max_bytes}")
    try:
        # Strict UTF-8 (``json.loads`` of bytes would also take UTF-16/32 and a BOM).
        obj = json.loads(payload.decode("utf-8"))
    except RecursionError as exc:
        raise RejectedError(MALFORMED_JSON, "JSON nested too deeply") from exc
    except (UnicodeDecodeError, ValueError) as exc:
        raise RejectedError(MALFORMED_JSON, str(exc)[:200]) from exc
    event = check_envelope(obj)
    if validation == "full":
        try:
            problems = event_problems(event)
        except RecursionError as exc:
            raise RejectedError(INVALID_EVENT, "data nested too deeply") from exc
        if problems:
            raise RejectedError(INVALID_EVENT, problems[0][:200])
    return event


def check_identity(prefix: str, topic: str, event: dict[str, Any]) -> None:
    """Refuse an event whose ``site``/``gateway`` differ from its topic's.

    The topic is the sender's identity: the broker's ACL lets unit ``{site}/{gateway}``
    publish only under ``{prefix}/{site}/{gateway}/``, while the payload says whatever
    the sender wrote.

    Raises:
        RejectedError: ``identity_mismatch``.
    """
    info = parse_topic(prefix, topic)
    if info is None:
        raise RejectedError(
            IDENTITY_MISMATCH, f"topic {topic!r} is not a gateway topic under {prefix!r}"
        )
    if (info.site, info.gateway) != (event["site"], event["gateway"]):
        raise RejectedError(
            IDENTITY_MISMATCH,
            f"payload says {event['site']}/{event['gateway']}, "
            f"the topic (the sender) is {info.site}/{info.gateway}",
        )
