"""One received payload -> line-protocol bytes, or a :class:`RejectedError` with its reason.

The whole path of a payload before it joins a batch: decode (size, strict UTF-8 JSON,
envelope), value ranges (time window, int64), mapping to points, line protocol,
UTF-8 encoding. :func:`convert` raises nothing but :class:`RejectedError` (the tests
fuzz it): a payload that makes any step fail in a way nobody foresaw is rejected
with reason ``ingest_error`` and the exception in the detail, so it is kept as a
dead letter (replayable after a fix) instead of stopping the worker.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final

from gateway.config.ingest import IngestConfig
from gateway.events import event_problems
from gateway.events.batch import BatchError, decode_batch
from gateway.events.topics import parse_topic
from gateway.ingest.decode import (
    INGEST_ERROR,
    INVALID_EVENT,
    MALFORMED_JSON,
    OUT_OF_RANGE,
    OVERSIZED,
    RejectedError,
    Validation,
    check_envelope,
    check_identity,
    decode,
)
from gateway.ingest.mapping import MappingError, OutOfRangeError, event_points
from gateway.ingest.points import (
    EmptyPointError,
    InvalidPointError,
    parse_ts_ms,
    point_time_ns,
    to_line,
)
from gateway.ingest.receipts import receipt

log = logging.getLogger(__name__)

_Y2000_MS: Final = 946_684_800_000
# Point times are int64 nanoseconds: nothing after 2262-04-11 fits.
_MAX_TS_MS: Final = (2**63 - 1) // 1_000_000 - 1_000


@dataclass(frozen=True, slots=True)
class Limits:
    """What a payload must satisfy besides the schema."""

    max_payload_bytes: int = 64 * 1024
    validation: Validation = "fast"
    # Event times before this (ms since the epoch) are rejected as out of range.
    min_ts_ms: int = _Y2000_MS
    # ... and so are event times further ahead of this worker's clock than this.
    max_future_s: float = 86_400.0
    # The gateways' topic prefix: the topic's site/gateway must be the payload's.
    topic_prefix: str = "city"
    # Write a ``ledger_event`` receipt per event (the delivery ledger, docs/ledger.md).
    receipts: bool = True
    # A compact batch (topic .../batch): what it may inflate to, how many events.
    max_batch_bytes: int = 4 * 1024 * 1024
    max_batch_events: int = 10_000

    @classmethod
    def of(cls, config: IngestConfig, topic_prefix: str = "city") -> Limits:
        """The limits an ingest configuration sets."""
        oldest = config.min_event_time
        if oldest.tzinfo is None:
            oldest = oldest.replace(tzinfo=UTC)
        return cls(
            max_payload_bytes=config.max_payload_bytes,
            validation=config.validation,
            min_ts_ms=int(oldest.timestamp() * 1000),
            max_future_s=config.max_future_s,
            topic_prefix=topic_prefix,
            receipts=config.ledger_receipts,
            max_batch_bytes=config.max_batch_bytes,
            max_batch_events=config.max_batch_events,
        )


@dataclass(frozen=True, slots=True)
class Converted:
    """The line protocol of one message: its lines joined by newlines, UTF-8."""

    body: bytes
    points: int
    events: int = 1
    """Events in the message (a compact batch holds many)."""
    compact: bool = False
    """Whether the message was a compact batch."""


def _ts_text(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).isoformat()


def convert(payload: bytes, limits: Limits, now_s: float, topic: str | None = None) -> Converted:
    """Decode, check and encode one payload (``now_s``: this worker's wall clock).

    With ``topic`` (where the message arrived) the event's site and gateway must be
    the topic's (:func:`gateway.ingest.decode.check_identity`).

    Raises:
        RejectedError: with the dead-letter reason; never any other exception.
    """
    try:
        return _convert(payload, limits, now_s, topic)
    except RejectedError:
        raise
    except OutOfRangeError as exc:
        raise RejectedError(OUT_OF_RANGE, str(exc)) from exc
    except (MappingError, InvalidPointError) as exc:
        raise RejectedError(INVALID_EVENT, str(exc)) from exc
    except UnicodeEncodeError as exc:
        raise RejectedError(
            INVALID_EVENT, "a string holds a lone surrogate (\\ud800-\\udfff), not UTF-8"
        ) from exc
    except RecursionError as exc:
        raise RejectedError(MALFORMED_JSON, "nested too deeply") from exc
    except Exception as exc:  # a defect of the ingest: keep the message, keep running
        log.exception("unexpected failure converting a message (kept as a dead letter)")
        raise RejectedError(INGEST_ERROR, f"{type(exc).__name__}: {exc}") from exc


def _is_batch(limits: Limits, topic: str | None) -> bool:
    info = parse_topic(limits.topic_prefix, topic) if topic is not None else None
    return info is not None and info.kind == "batch" and not info.rest


def _convert(payload: bytes, limits: Limits, now_s: float, topic: str | None) -> Converted:
    if _is_batch(limits, topic):
        return _convert_batch(payload, limits, now_s, topic)
    event = decode(payload, limits.max_payload_bytes, limits.validation)
    return _event_lines(event, limits, now_s, topic)


def _convert_batch(payload: bytes, limits: Limits, now_s: float, topic: str | None) -> Converted:
    """A compact batch: every event checked as a single message; one bad event rejects all.

    The whole batch is then kept as one dead letter (replayable after a fix), so
    nothing of it is written twice when it is replayed.
    """
    if len(payload) > limits.max_batch_bytes:
        raise RejectedError(
            OVERSIZED, f"{len(payload)} bytes > max_batch_bytes {limits.max_batch_bytes}"
        )
    try:
        events = decode_batch(payload, limits.max_batch_bytes, limits.max_batch_events)
    except BatchError as exc:
        reason = OVERSIZED if exc.reason == "oversized" else MALFORMED_JSON
        raise RejectedError(reason, f"batch: {exc}") from exc
    bodies: list[bytes] = []
    points = 0
    for index, obj in enumerate(events):
        try:
            event = check_envelope(obj)
            if limits.validation == "full":
                problems = event_problems(event)
                if problems:
                    raise RejectedError(INVALID_EVENT, problems[0][:200])
            converted = _event_lines(event, limits, now_s, topic)
        except RejectedError as exc:
            raise RejectedError(exc.reason, f"batch event {index}: {exc.detail}") from exc
        if converted.body:
            bodies.append(converted.body)
        points += converted.points
    return Converted(b"\n".join(bodies), points, len(events), compact=True)


def _event_lines(
    event: dict[str, Any], limits: Limits, now_s: float, topic: str | None
) -> Converted:
    if topic is not None:
        check_identity(limits.topic_prefix, topic, event)
    try:
        ts_ms = parse_ts_ms(event["ts"])
    except ValueError as exc:
        raise RejectedError(INVALID_EVENT, f"ts: {exc}") from exc
    newest = min(int((now_s + limits.max_future_s) * 1000), _MAX_TS_MS)
    if ts_ms < limits.min_ts_ms:
        raise RejectedError(
            OUT_OF_RANGE, f"ts: {event['ts']} is before {_ts_text(limits.min_ts_ms)}"
        )
    if ts_ms > newest:
        raise RejectedError(
            OUT_OF_RANGE,
            f"ts: {event['ts']} is more than {limits.max_future_s:.0f} s ahead of this "
            f"worker's clock ({_ts_text(int(now_s * 1000))})",
        )
    lines = []
    for point in event_points(event):
        try:
            lines.append(to_line(point))
        except EmptyPointError:  # only non-finite numbers: nothing to store
            continue
    if limits.receipts and event["seq"] > 0:  # the delivery ledger's receipt
        lines.append(to_line(receipt(event, point_time_ns(ts_ms, event["seq"]))))
    return Converted("\n".join(lines).encode("utf-8"), len(lines))
