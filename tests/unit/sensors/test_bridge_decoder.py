"""BridgeDecoder: readings with named values, ACKs to write back, requests and responses."""

from __future__ import annotations

import logging
import math

import pytest

from firmware_bridge.codec import encode_frame
from firmware_bridge.framer import Deframer
from firmware_bridge.messages import (
    FLAG_ACK_REQ,
    KIND_F32,
    KIND_I32,
    KIND_I32_CENTI,
    NACK_NO_SESSION,
    Ack,
    ConfigGet,
    ConfigSet,
    ConfigValue,
    Hello,
    Log,
    Message,
    Nack,
    Ping,
    Pong,
    Readings,
    Value,
)
from gateway.errors import UsageError
from gateway.sensors.decoder import Decoder
from gateway.sensors.registry import make_decoder
from gateway.sensors.rsb import MAX_PENDING_WRITE, BridgeDecoder, parse_channels
from gateway.sensors.types import Reading


def hello(node: int = 7, seq: int = 99, boot: int = 3) -> bytes:
    return encode_frame(Message(node, seq, Hello((1, 2, 3), boot, 0x0F, "b"), FLAG_ACK_REQ))


def reading(seq: int, *values: Value, node: int = 7) -> bytes:
    return encode_frame(Message(node, seq, Readings(1000 + seq, values), FLAG_ACK_REQ))


def written(decoder: BridgeDecoder) -> list[Message]:
    return Deframer().feed(decoder.pending_writes())


def test_constructor_takes_no_arguments() -> None:
    decoder = BridgeDecoder()
    assert decoder.protocol == "rsb"
    assert decoder.feed(b"") == []
    assert decoder.pending_writes() == b""


def test_reading_values_are_named_and_acked() -> None:
    decoder = BridgeDecoder(sensor_id="pole17")
    assert decoder.feed(hello()) == []
    assert [m.body for m in written(decoder)] == [Ack(99)]
    out = decoder.feed(
        reading(
            100, Value(0, KIND_F32, 21.3), Value(4, KIND_I32_CENTI, 1234), Value(77, KIND_I32, 5)
        )
    )
    assert len(out) == 1
    r = out[0]
    assert isinstance(r, Reading)
    assert r.protocol == "rsb"
    assert r.sensor_id == "pole17"
    assert r.values == {"temperature_c": 21.3, "pm2_5": 12.34, "ch77": 5}
    assert r.extra == {"node": 7, "seq": 100, "boot_id": 3, "uptime_ms": 1100}
    assert r.timestamp > 0
    assert [m.body for m in written(decoder)] == [Ack(100)]


def test_duplicate_is_acked_not_returned_twice() -> None:
    decoder = BridgeDecoder()
    decoder.feed(hello())
    frame = reading(100, Value(1, KIND_F32, 50.0))
    assert len(decoder.feed(frame + frame)) == 1
    assert [m.body for m in written(decoder)] == [Ack(99), Ack(100), Ack(100)]
    assert decoder.stats()["link_duplicates"] == 1


def test_reading_without_session_is_nacked() -> None:
    decoder = BridgeDecoder()
    assert decoder.feed(reading(5, Value(1, KIND_F32, 1.0))) == []
    assert [m.body for m in written(decoder)] == [Nack(5, NACK_NO_SESSION)]


def test_garbage_and_bad_frames_are_counted_not_raised() -> None:
    decoder = BridgeDecoder()
    decoder.feed(hello())
    bad = bytearray(reading(100, Value(1, KIND_F32, 1.0)))
    bad[5] ^= 0x01
    out = decoder.feed(b"\x13\x37garbage\x00" + bytes(bad) + b"\x00" + b"\xff" * 300 + b"\x00")
    assert out == []
    stats = decoder.stats()
    assert stats["framer_bad_crc"] + stats["framer_decode_errors"] == 2
    assert stats["framer_oversize"] == 1
    assert len(decoder.feed(reading(100, Value(1, KIND_F32, 1.0)))) == 1


def test_non_finite_values_are_skipped_and_counted() -> None:
    decoder = BridgeDecoder()
    decoder.feed(hello())
    out = decoder.feed(reading(100, Value(0, KIND_F32, math.nan), Value(1, KIND_F32, 40.0)))
    assert out[0].values == {"humidity_pct": 40.0}
    assert decoder.stats()["non_finite"] == 1


def test_requests_are_queued_and_responses_collected() -> None:
    decoder = BridgeDecoder()
    ping_seq = decoder.ping(7, nonce=42)
    get_seq = decoder.config_get(7, 1)
    set_seq = decoder.config_set(7, 2, 1.5)
    sent = written(decoder)
    assert [(m.seq, m.body) for m in sent] == [
        (ping_seq, Ping(42)),
        (get_seq, ConfigGet(1)),
        (set_seq, ConfigSet(2, KIND_F32, 1.5)),
    ]
    answers = [
        Message(7, ping_seq, Pong(42, 5000)),
        Message(7, get_seq, ConfigValue(1, 0, KIND_I32, 1000)),
        Message(7, set_seq, Nack(set_seq, 3)),
    ]
    assert decoder.feed(b"".join(encode_frame(m) for m in answers)) == []
    assert decoder.responses() == answers
    assert decoder.responses() == []
    assert written(decoder) == []  # best-effort answers are not acknowledged


def test_responses_are_bounded() -> None:
    decoder = BridgeDecoder()
    decoder.feed(b"".join(encode_frame(Message(7, i, Pong(i, 0))) for i in range(100)))
    got = decoder.responses()
    assert len(got) == 64
    assert got[-1].seq == 99


def test_pending_writes_are_bounded_when_never_drained() -> None:
    decoder = BridgeDecoder()
    for _ in range(1000):
        decoder.ping(1)
    assert len(decoder.pending_writes()) <= MAX_PENDING_WRITE
    assert decoder.stats()["dropped_writes"] > 0


def test_log_lines_go_to_logging(caplog: pytest.LogCaptureFixture) -> None:
    decoder = BridgeDecoder()
    with caplog.at_level(logging.DEBUG, logger="gateway.sensors.rsb"):
        decoder.feed(encode_frame(Message(7, 0, Log(2, "sensor 3 not responding"))))
    assert any(
        r.levelno == logging.WARNING and "sensor 3 not responding" in r.getMessage()
        for r in caplog.records
    )
    assert decoder.stats()["logs"] == 1


def test_channel_map_option() -> None:
    decoder = BridgeDecoder.from_options("s1", {"channels": "0=air_c, 20=soil_pct"})
    decoder.feed(hello())
    out = decoder.feed(reading(100, Value(0, KIND_F32, 1.0), Value(20, KIND_F32, 2.0)))
    assert out[0].values == {"air_c": 1.0, "soil_pct": 2.0}


@pytest.mark.parametrize(
    ("options", "match"),
    [
        ({"speed": 1}, "no option"),
        ({"channels": "x=temp"}, "bad entry"),
        ({"channels": "300=temp"}, "bad entry"),
        ({"channels": "1="}, "bad entry"),
        ({"max_nodes": 0}, "positive"),
        ({"max_nodes": "many"}, "positive"),
    ],
)
def test_bad_options(options: dict[str, str | int], match: str) -> None:
    with pytest.raises(UsageError, match=match):
        BridgeDecoder.from_options("s1", options)


def test_parse_channels_empty() -> None:
    assert parse_channels("") == {}


def test_registered_as_rsb_and_fits_the_decoder_protocol() -> None:
    decoder = make_decoder("rsb")
    assert isinstance(decoder, BridgeDecoder)
    assert isinstance(decoder, Decoder)
    decoder.feed(b"\x07\x00" + hello())
    stats = decoder.stats()
    assert stats["bad_frames"] == 1  # the common counter names are reported too
    assert stats["good"] == 1
    assert stats["bytes"] == 2 + len(hello())
