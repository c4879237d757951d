"""Nova Fitness SDS011 decoder: datasheet example, replies, command builders, streams."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.sensors import sds011
from gateway.sensors.sds011 import Sds011Decoder
from tests.support.sensors import feed_in_pieces

# Datasheet example: AA C0 | D4 04 | 3A 0A | A1 60 | 1D | AB
#   PM2.5 = 0x04D4 = 1236 -> 123.6 ug/m3; PM10 = 0x0A3A = 2618 -> 261.8 ug/m3
#   checksum = (0xD4 + 0x04 + 0x3A + 0x0A + 0xA1 + 0x60) & 0xFF = 0x21D & 0xFF = 0x1D
DATASHEET = bytes.fromhex("aac0d4043a0aa1601dab")


def test_datasheet_example() -> None:
    decoder = Sds011Decoder()
    (reading,) = decoder.feed(DATASHEET)
    assert reading.protocol == "sds011"
    assert reading.values == {"pm2_5": 123.6, "pm10": 261.8}
    assert reading.extra == {"device_id": "A160"}


def test_build_frame_matches_datasheet() -> None:
    assert sds011.build_frame(123.6, 261.8, device_id=0xA160) == DATASHEET


def test_reply_frame_not_a_reading() -> None:
    # reply to "set sleep": AA C5 06 01 00 00 A1 60 08 AB (checksum 06+01+A1+60 = 0x108)
    reply = bytes.fromhex("aac506010000a16008ab")
    decoder = Sds011Decoder()
    assert decoder.feed(reply) == []
    assert decoder.stats()["replies"] == 1
    assert decoder.stats()["good"] == 0


@pytest.mark.parametrize(
    ("frame", "expected"),
    [
        (sds011.query_data(), "aab404000000000000000000000000ffff02ab"),
        (sds011.set_sleep(True), "aab406010000000000000000000000ffff05ab"),
        (sds011.set_sleep(False), "aab406010100000000000000000000ffff06ab"),
        (sds011.query_data(0xA160), "aab404000000000000000000000000a16005ab"),
    ],
)
def test_command_builders(frame: bytes, expected: str) -> None:
    assert len(frame) == 19
    assert frame == bytes.fromhex(expected)
    assert sum(frame[2:17]) & 0xFF == frame[17]


def test_command_too_long() -> None:
    with pytest.raises(ValueError, match="at most 13"):
        sds011.command([0] * 14)


@pytest.mark.parametrize(
    ("broken", "counter"),
    [
        (DATASHEET[:8] + b"\x1e\xab", "bad_checksum"),
        (DATASHEET[:9] + b"\xac", "bad_frames"),
    ],
)
def test_bad_frames_counted_good_kept(broken: bytes, counter: str) -> None:
    decoder = Sds011Decoder()
    readings = decoder.feed(broken + b"\x01\x02" + DATASHEET)
    assert [r.values["pm2_5"] for r in readings] == [123.6]
    assert decoder.stats()[counter] == 1


def test_buffer_is_bounded() -> None:
    decoder = Sds011Decoder()
    for _ in range(50):
        decoder.feed(b"\xaa\xc0" + b"\x00" * 3)  # starts that never complete into frames
    assert decoder.buffered <= Sds011Decoder.max_buffer


_tenths = st.integers(0, 9999)
_garbage = st.binary(max_size=30).map(lambda b: b.replace(b"\xaa", b"\x00"))


@st.composite
def _stream(draw: st.DrawFn) -> tuple[bytes, list[dict[str, float]]]:
    parts: list[bytes] = []
    expected: list[dict[str, float]] = []
    for _ in range(draw(st.integers(0, 8))):
        a, b = draw(_tenths), draw(_tenths)
        frame = sds011.build_frame(a / 10, b / 10, device_id=draw(st.integers(0, 0xFFFF)))
        parts.append(draw(_garbage))
        kind = draw(st.sampled_from(["none", "checksum", "tail", "truncated", "reply"]))
        if kind == "checksum":
            parts.append(frame[:8] + bytes([frame[8] ^ 0x10]) + frame[9:])
        elif kind == "tail":
            parts.append(frame[:9] + b"\x00")
        elif kind == "truncated":
            parts.append(frame[: draw(st.integers(1, 9))])
        elif kind == "reply":
            parts.append(b"\xaa\xc5" + frame[2:])
        parts.append(frame)
        expected.append({"pm2_5": a / 10, "pm10": b / 10})
    parts.append(draw(_garbage))
    return b"".join(parts), expected


@settings(max_examples=200, deadline=None)
@given(stream=_stream(), cuts=st.lists(st.integers(0, 500), max_size=30))
def test_stream_property(stream: tuple[bytes, list[dict[str, float]]], cuts: list[int]) -> None:
    data, expected = stream
    decoder = Sds011Decoder()
    readings = feed_in_pieces(decoder, data, cuts)
    assert [r.values for r in readings] == expected
    assert decoder.stats()["bytes"] == len(data)
