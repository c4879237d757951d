"""Plantower PMS decoder: datasheet layout, worked example, variants, commands, streams."""

from __future__ import annotations

import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.errors import UsageError
from gateway.sensors import pms
from gateway.sensors.pms import PmsDecoder
from tests.support.sensors import feed_in_pieces

# A PMS5003 frame built byte by byte from the datasheet layout (all big-endian):
#   42 4D            start characters "BM"
#   00 1C            frame length 28 = 13 data words * 2 + 2 checksum bytes
#   00 05 00 08 00 09  PM1.0 / PM2.5 / PM10, CF=1 (ug/m3): 5, 8, 9
#   00 04 00 07 00 0A  PM1.0 / PM2.5 / PM10, atmospheric (ug/m3): 4, 7, 10
#   03 F3 01 20 00 28 00 02 00 01 00 00   counts per 0.1 L: >0.3 um 1011, >0.5 um 288,
#                                          >1.0 um 40, >2.5 um 2, >5.0 um 1, >10 um 0
#   97 00            reserved: version 0x97, error code 0
#   02 AF            checksum: sum of the 30 bytes above
# Sum by hand: header 0x42+0x4D+0x00+0x1C = 171; PM words 5+8+9+4+7+10 = 43;
# counts 0x03+0xF3+0x01+0x20+0x28+0x02+0x01 = 3+243+1+32+40+2+1 = 322; reserved 0x97 = 151;
# 171 + 43 + 322 + 151 = 687 = 0x02AF.
WORKED = bytes.fromhex("424d001c00050008000900040007000a03f301200028000200010000970002af")


def test_worked_example_checksum_by_hand() -> None:
    assert sum(WORKED[:-2]) == 0x02AF == 687


def test_worked_example_decodes() -> None:
    decoder = PmsDecoder()
    (reading,) = decoder.feed(WORKED)
    assert reading.protocol == "pms5003"
    assert reading.values == {"pm1_0": 4, "pm2_5": 7, "pm10": 10}
    assert reading.extra == {
        "variant": "pms5003",
        "pm1_0_cf1": 5,
        "pm2_5_cf1": 8,
        "pm10_cf1": 9,
        "n0_3": 1011,
        "n0_5": 288,
        "n1_0": 40,
        "n2_5": 2,
        "n5_0": 1,
        "n10": 0,
        "version": 0x97,
        "error": 0,
    }
    assert decoder.stats()["good"] == 1
    assert decoder.stats()["bad_checksum"] == 0


def test_build_frame_matches_worked_example() -> None:
    words = [5, 8, 9, 4, 7, 10, 1011, 288, 40, 2, 1, 0, 0x9700]
    assert pms.build_frame(words) == WORKED


def test_pms3003_by_length() -> None:
    frame = pms.build_frame([1, 2, 3, 11, 12, 13, 0, 0, 0])
    assert frame[2:4] == b"\x00\x14"  # length 20
    (reading,) = PmsDecoder(protocol="pms7003").feed(frame)
    assert reading.protocol == "pms7003"
    assert reading.values == {"pm1_0": 11, "pm2_5": 12, "pm10": 13}
    assert reading.extra["variant"] == "pms3003"
    assert "n0_3" not in reading.extra


def test_pms5003st_formaldehyde_temperature_humidity() -> None:
    # HCHO 0.021 mg/m3 (21), temperature -5.3 C (two's complement of 53), humidity 64.2 %
    words = [3, 5, 6, 3, 5, 6, 500, 150, 20, 3, 1, 0, 21, (-53) & 0xFFFF, 642, 0, 0x9100]
    frame = pms.build_frame(words)
    assert frame[2:4] == b"\x00\x24"  # length 36
    (reading,) = PmsDecoder().feed(frame)
    assert reading.values == {
        "pm1_0": 3,
        "pm2_5": 5,
        "pm10": 6,
        "hcho_mg_m3": 0.021,
        "temperature_c": -5.3,
        "humidity_pct": 64.2,
    }
    assert reading.extra["variant"] == "pms5003st"


@pytest.mark.parametrize(
    ("builder", "expected"),
    [
        (pms.passive_mode, "424de100000170"),
        (pms.active_mode, "424de100010171"),
        (pms.read_passive, "424de200000171"),
        (pms.sleep, "424de400000173"),
        (pms.wake, "424de400010174"),
    ],
)
def test_command_frames(builder: object, expected: str) -> None:
    assert callable(builder)
    frame = builder()
    assert frame == bytes.fromhex(expected)
    assert sum(frame[:5]) == struct.unpack(">H", frame[5:])[0]


def test_command_out_of_range() -> None:
    with pytest.raises(ValueError, match="out of range"):
        pms.command(0x100)


def test_bad_checksum_counted_and_next_frame_kept() -> None:
    bad = bytearray(WORKED)
    bad[-1] ^= 0x01
    decoder = PmsDecoder()
    readings = decoder.feed(bytes(bad) + WORKED)
    assert len(readings) == 1
    stats = decoder.stats()
    assert stats["bad_checksum"] == 1
    assert stats["good"] == 1
    assert stats["resyncs"] >= 1


def test_command_reply_is_not_a_reading() -> None:
    reply = bytes.fromhex("424d0004e1000174")  # reply to "passive mode"
    decoder = PmsDecoder()
    assert decoder.feed(reply + WORKED)[0].values["pm2_5"] == 7
    assert decoder.stats()["replies"] == 1


def test_unknown_length_is_bad_frame() -> None:
    decoder = PmsDecoder()
    assert decoder.feed(b"\x42\x4d\x00\x63" + WORKED) != []
    assert decoder.stats()["bad_frames"] == 1


def test_buffer_is_bounded() -> None:
    decoder = PmsDecoder()
    for _ in range(100):
        decoder.feed(b"\x00" * 997 + b"\x42")
    assert decoder.buffered <= PmsDecoder.max_buffer
    assert decoder.feed(b"\x4d" + WORKED[2:]) != []  # the kept 0x42 started this frame


def test_unknown_option_rejected() -> None:
    with pytest.raises(UsageError, match="no option"):
        PmsDecoder.from_options("pm", {"baud": 1})


_word = st.integers(0, 999)
_garbage = st.binary(max_size=40).map(lambda b: b.replace(b"\x42", b"\x00"))


@st.composite
def _pms_stream(draw: st.DrawFn) -> tuple[bytes, list[dict[str, int]]]:
    expected: list[dict[str, int]] = []
    parts: list[bytes] = []
    for _ in range(draw(st.integers(0, 6))):
        words = [draw(_word) for _ in range(12)] + [0x9700]
        frame = pms.build_frame(words)
        parts.append(draw(_garbage))
        corruption = draw(st.sampled_from(["none", "checksum", "truncated", "length"]))
        if corruption == "checksum":
            parts.append(frame[:-1] + bytes([frame[-1] ^ 0x5A]))
        elif corruption == "truncated":
            parts.append(frame[: draw(st.integers(2, len(frame) - 1))])
        elif corruption == "length":
            parts.append(frame[:3] + b"\x7f" + frame[4:])
        parts.append(frame)
        expected.append({"pm1_0": words[3], "pm2_5": words[4], "pm10": words[5]})
    parts.append(draw(_garbage))
    return b"".join(parts), expected


@settings(max_examples=200, deadline=None)
@given(stream=_pms_stream(), cuts=st.lists(st.integers(0, 2000), max_size=30))
def test_stream_property(stream: tuple[bytes, list[dict[str, int]]], cuts: list[int]) -> None:
    data, expected = stream
    decoder = PmsDecoder()
    readings = feed_in_pieces(decoder, data, cuts)
    assert [r.values for r in readings] == expected
    assert decoder.stats()["good"] == len(expected)
    assert decoder.stats()["bytes"] == len(data)
