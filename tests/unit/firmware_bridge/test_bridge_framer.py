"""Streaming deframer: random splits, garbage, bad CRC, oversize and truncated frames."""

from __future__ import annotations

import random

from hypothesis import given, settings
from hypothesis import strategies as st

from firmware_bridge import cobs
from firmware_bridge.codec import encode_frame, pack
from firmware_bridge.framer import Deframer
from firmware_bridge.messages import (
    FLAG_ACK_REQ,
    KIND_F32,
    KIND_I32_CENTI,
    MAX_ENCODED,
    Ack,
    Log,
    Message,
    Ping,
    Readings,
    Value,
)


def _msgs(n: int, seed: int = 0) -> list[Message]:
    rng = random.Random(seed)
    out: list[Message] = []
    for i in range(n):
        if i % 3 == 0:
            body: Readings | Log | Ack = Readings(
                rng.randrange(2**32),
                (Value(0, KIND_F32, 20.25), Value(4, KIND_I32_CENTI, rng.randrange(-999, 9999))),
            )
        elif i % 3 == 1:
            body = Log(rng.randrange(4), "t" * rng.randrange(0, 200))
        else:
            body = Ack(rng.randrange(65536))
        out.append(Message(rng.randrange(256), i % 65536, body, FLAG_ACK_REQ))
    return out


def _split(data: bytes, rng: random.Random) -> list[bytes]:
    chunks, i = [], 0
    while i < len(data):
        n = rng.choice([1, 1, 2, 3, 7, 50, 300])
        chunks.append(data[i : i + n])
        i += n
    return chunks


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), n=st.integers(1, 25))
def test_random_splits_yield_all_messages(seed: int, n: int) -> None:
    msgs = _msgs(n, seed)
    stream = b"".join(encode_frame(m) for m in msgs)
    deframer = Deframer()
    got: list[Message] = []
    for chunk in _split(stream, random.Random(seed)):
        got += deframer.feed(chunk)
    assert got == msgs
    assert deframer.counters.good == deframer.counters.frames == n
    assert deframer.buffered == 0


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), garbage=st.lists(st.binary(max_size=40), max_size=10))
def test_garbage_between_delimited_frames_is_counted_and_skipped(
    seed: int, garbage: list[bytes]
) -> None:
    msgs = _msgs(len(garbage) + 3, seed)
    parts = []
    for i, m in enumerate(msgs):
        junk = garbage[i] if i < len(garbage) else b""
        parts.append(junk + b"\x00" + encode_frame(m))  # leading delimiter, as senders do
    deframer = Deframer()
    got: list[Message] = []
    for chunk in _split(b"".join(parts), random.Random(seed)):
        got += deframer.feed(chunk)
    assert got == msgs
    c = deframer.counters
    assert c.good == len(msgs)
    assert c.frames == c.good + c.bad_crc + c.decode_errors + c.oversize


def test_bad_crc_is_counted_and_next_frame_survives() -> None:
    good = [Message(1, i, Ping(i)) for i in range(3)]
    raw = bytearray(pack(good[1]))
    raw[7] ^= 0x10
    stream = encode_frame(good[0]) + cobs.encode(bytes(raw)) + b"\x00" + encode_frame(good[2])
    deframer = Deframer()
    assert deframer.feed(stream) == [good[0], good[2]]
    assert deframer.counters.bad_crc == 1
    assert deframer.counters.good == 2


def test_truncated_frame_is_counted() -> None:
    msg = Message(1, 1, Log(1, "hello"))
    wire = encode_frame(msg)
    deframer = Deframer()
    assert deframer.feed(wire[:-6] + b"\x00" + wire) == [msg]
    assert deframer.counters.frames == 2
    assert deframer.counters.bad_crc + deframer.counters.decode_errors == 1


def test_oversize_is_dropped_with_bounded_buffer_then_resyncs() -> None:
    msg = Message(2, 9, Ack(3))
    deframer = Deframer()
    for _ in range(10):
        assert deframer.feed(b"\x55" * 100) == []
        assert deframer.buffered <= MAX_ENCODED
    assert deframer.counters.oversize == 1
    assert deframer.counters.resyncs == 1
    # the tail of the long run up to the next delimiter is discarded, then all is well
    assert deframer.feed(b"\x55\x55\x00" + encode_frame(msg)) == [msg]
    assert deframer.counters.frames == 2
    assert deframer.counters.discarded_bytes == 1002


def test_invalid_cobs_counts_resync_and_decode_error() -> None:
    deframer = Deframer()
    assert deframer.feed(b"\x09\x01\x02\x00") == []
    assert deframer.counters.decode_errors == 1
    assert deframer.counters.resyncs == 1


def test_runt_and_empty_frames() -> None:
    deframer = Deframer()
    assert deframer.feed(b"\x00\x00\x00") == []
    assert deframer.counters.frames == 0
    assert deframer.feed(b"\x02\x01\x00") == []  # decodes to one byte: too short
    assert deframer.counters.decode_errors == 1


def test_max_length_frame_is_accepted() -> None:
    msg = Message(1, 1, Log(3, "z" * 200), FLAG_ACK_REQ)
    big = Message(1, 2, Readings(0, tuple(Value(i, KIND_F32, 1.5) for i in range(39))))
    deframer = Deframer()
    assert deframer.feed(encode_frame(msg) + encode_frame(big)) == [msg, big]
    assert len(encode_frame(big)) - 1 <= MAX_ENCODED
