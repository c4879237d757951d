"""Compact batches: the format, and the ingest's decoding of hostile ones (pure).

Everything a batch can do wrong ends as a :class:`RejectedError` with a reason (the
pipeline dead-letters it): never another exception, never a worker that inflates a
"zip bomb" into memory.
"""

from __future__ import annotations

import json
import time
import tracemalloc
import zlib

import pytest

from gateway.events.batch import BatchError, decode_batch, encode_batch
from gateway.ingest.convert import Limits, convert
from gateway.ingest.decode import RejectedError
from tests.support.ingest import line_event

TOPIC = "city/sejong-1/rsu-0001/batch"


def _payloads(n: int, gateway: str = "rsu-0001") -> list[bytes]:
    return [
        json.dumps(line_event(seq, gateway), separators=(",", ":")).encode()
        for seq in range(1, n + 1)
    ]


def test_a_batch_round_trips_and_pays() -> None:
    payloads = _payloads(300)
    batch = encode_batch(payloads)
    assert decode_batch(batch, 1 << 20, 1000) == [json.loads(p) for p in payloads]
    assert len(batch) * 5 < sum(len(p) for p in payloads)  # repeated keys compress well


def test_the_ingest_writes_every_event_of_a_batch() -> None:
    single = [
        convert(p, Limits(), time.time(), TOPIC.replace("batch", "events/cam-north/line_crossing"))
        for p in _payloads(50)
    ]
    batch = convert(encode_batch(_payloads(50)), Limits(), time.time(), TOPIC)
    assert batch.points == sum(c.points for c in single)
    assert batch.body == b"\n".join(c.body for c in single)


def _zlib(raw: bytes) -> bytes:
    return zlib.compress(raw, 9)


BOMB = _zlib(b'{"schema":1,"events":[' + b" " * (200 * 1024 * 1024))  # 200 MiB of blanks


@pytest.mark.parametrize(
    ("payload", "reason", "detail"),
    [
        (BOMB, "oversized", "inflates beyond"),
        (b"\x78\x9c garbage", "malformed_json", "not a zlib stream"),
        (encode_batch(_payloads(3))[:-6], "malformed_json", "truncated"),
        (encode_batch(_payloads(3)) + b"tail", "malformed_json", "after the zlib stream"),
        (_zlib(b"\xff\xfe"), "malformed_json", "batch JSON"),
        (_zlib(b"[" * 100_000), "malformed_json", "nested too deeply"),
        (_zlib(b"[1, 2]"), "malformed_json", "not a"),
        (_zlib(b'{"schema": 2, "events": [{}]}'), "malformed_json", "batch schema 2"),
        (_zlib(b'{"schema": true, "events": [{}]}'), "malformed_json", "batch schema True"),
        (_zlib(b'{"schema": 1, "events": []}'), "malformed_json", "non-empty list"),
        (encode_batch(_payloads(101)), "oversized", "events >"),
        (
            encode_batch([*_payloads(3), b'{"schema":1}']),
            "invalid_event",
            "batch event 3: envelope keys",
        ),
        (encode_batch([*_payloads(2), b"[]"]), "malformed_json", "batch event 2"),
        (encode_batch(_payloads(2, gateway="rsu-0002")), "identity_mismatch", "batch event 0"),
        (b"x" * (4 * 1024 * 1024 + 1), "oversized", "max_batch_bytes"),
    ],
    ids=[
        "zip-bomb",
        "not-zlib",
        "truncated",
        "trailing-bytes",
        "bad-utf8",
        "deep-nesting",
        "a-list",
        "schema-2",
        "schema-bool",
        "empty",
        "too-many-events",
        "one-bad-event",
        "not-an-object",
        "another-units-events",
        "too-large",
    ],
)
def test_a_bad_batch_is_rejected_with_a_reason(payload: bytes, reason: str, detail: str) -> None:
    started = time.monotonic()
    with pytest.raises(RejectedError) as info:
        convert(payload, Limits(max_batch_events=100), time.time(), TOPIC)
    assert info.value.reason == reason
    assert detail in info.value.detail
    assert time.monotonic() - started < 30  # no inflating a bomb to the end (it would take minutes)


def test_a_batch_is_only_read_on_the_batch_topic() -> None:
    with pytest.raises(RejectedError) as info:  # a zlib payload on an event topic is no event
        convert(
            encode_batch(_payloads(2)),
            Limits(),
            time.time(),
            "city/sejong-1/rsu-0001/events/c/line_crossing",
        )
    assert info.value.reason == "malformed_json"


def test_decode_batch_stops_at_the_bound() -> None:
    """A 200 MiB bomb costs the bound in memory, not 200 MiB."""
    tracemalloc.start()
    try:
        with pytest.raises(BatchError) as info:
            decode_batch(BOMB, 1 << 20, 10)
        _now, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert info.value.reason == "oversized"
    assert peak < 8 << 20, f"{peak / 2**20:.0f} MiB allocated"
