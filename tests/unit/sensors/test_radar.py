"""OPS243-style radar decoder: numbers, units, JSON, direction, configuration replies."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.errors import UsageError
from gateway.sensors.radar import RadarDecoder
from tests.support.sensors import feed_in_pieces


@pytest.mark.parametrize(
    ("line", "unit", "kmh", "direction"),
    [
        (b"12.3\n", "mps", 12.3 * 3.6, "inbound"),
        (b"-4.5\r\n", "mps", 4.5 * 3.6, "outbound"),
        (b"10\n", "mph", 16.09344, "inbound"),
        (b"-10\n", "fps", 10.9728, "outbound"),
        (b"50.0\n", "kmh", 50.0, "inbound"),
        (b'"mph",-20.0\n', "mps", 20 * 1.609344, "outbound"),
        (b'{"speed":"12.3","unit":"mph"}\n', "mps", 12.3 * 1.609344, "inbound"),
        (b'{"speed":"-12.3","unit":"mps"}\n', "mph", 12.3 * 3.6, "outbound"),
        (b'{"speed":5,"unit":"kmh","direction":"outbound"}\n', "mps", 5.0, "outbound"),
        (b'{"speed":"5","direction":"inbound"}\n', "kmh", 5.0, "inbound"),
    ],
)
def test_speed_lines(line: bytes, unit: str, kmh: float, direction: str) -> None:
    decoder = RadarDecoder(unit=unit)
    (reading,) = decoder.feed(line)
    assert reading.protocol == "ops243"
    assert reading.values["speed_kmh"] == pytest.approx(kmh, abs=1e-4)
    assert reading.values["direction"] == direction


def test_invert_direction_option() -> None:
    decoder = RadarDecoder.from_options("radar", {"invert_direction": True})
    assert decoder.feed(b"-3\n")[0].values["direction"] == "inbound"


def test_units_reply_changes_plain_numbers() -> None:
    decoder = RadarDecoder()
    assert decoder.feed(b"10\n")[0].values["speed_kmh"] == pytest.approx(36.0)
    assert decoder.feed(b'{"Units":"mph"}\n') == []
    assert decoder.feed(b"10\n")[0].values["speed_kmh"] == pytest.approx(16.09344)
    assert decoder.stats()["replies"] == 1


@pytest.mark.parametrize(
    "line",
    [
        b'{"Product":"OPS243","Version":"1.2.3"}\n',
        b'{"OutputFeature":"mps"}\n',
        b'{"SamplingRate":10000}\n',
    ],
)
def test_configuration_replies_not_readings(line: bytes) -> None:
    decoder = RadarDecoder()
    assert decoder.feed(line) == []
    assert decoder.stats()["replies"] == 1
    assert decoder.stats()["good"] == 0


@pytest.mark.parametrize(
    "line",
    [
        b"nan\n",
        b"inf\n",
        b"12.3.4\n",
        b'{"speed":"fast"}\n',
        b'{"speed":"1","unit":"furlongs"}\n',
        b'{"speed":"1","direction":"sideways"}\n',
        b'{"speed":true}\n',
        b'{"speed":"1"\n',
        b"[1,2]\n",
        b"\xff\xfe\n",
    ],
)
def test_bad_lines_counted(line: bytes) -> None:
    decoder = RadarDecoder()
    assert decoder.feed(line + b"1.0\n")[0].values["speed_kmh"] == pytest.approx(3.6)
    assert decoder.stats()["bad_frames"] == 1


def test_unknown_unit_option() -> None:
    with pytest.raises(UsageError, match="unknown radar unit"):
        RadarDecoder.from_options("r", {"unit": "knots-per-fortnight"})


def test_long_line_bounded_and_discarded() -> None:
    decoder = RadarDecoder()
    for _ in range(20):
        decoder.feed(b"7" * 100)
    assert decoder.buffered <= RadarDecoder.max_buffer
    assert decoder.feed(b"77\n2\n")[0].values["speed_kmh"] == pytest.approx(7.2)
    assert decoder.stats()["bad_frames"] >= 1


# garbage lines: no digits, no braces or quotes, so never a speed line; always line-ended
_garbage = st.binary(max_size=30).map(
    lambda b: bytes(c for c in b if c not in b'0123456789{}"\r\n.+-') + b"\n"
)


@st.composite
def _stream(draw: st.DrawFn) -> tuple[bytes, list[tuple[float, str]]]:
    parts: list[bytes] = []
    expected: list[tuple[float, str]] = []
    for _ in range(draw(st.integers(0, 8))):
        tenths = draw(st.integers(-2000, 2000))
        speed = tenths / 10
        if draw(st.booleans()):
            line = f"{speed:.1f}\n".encode()
        else:
            line = (json.dumps({"speed": f"{speed:.1f}", "unit": "mps"}) + "\n").encode()
        if draw(st.booleans()):
            parts.append(draw(_garbage))
        corruption = draw(st.sampled_from(["none", "damaged", "reply"]))
        if corruption == "damaged":  # a stray byte in the number: never a speed
            if line.startswith(b"{"):
                first = line.index(b'"speed": "') + len(b'"speed": "')
                last = first + 2
            else:
                first, last = 0, len(line) - 1
            at = draw(st.integers(first, last))
            parts.append(line[:at] + b"#" + line[at:])
        elif corruption == "reply":
            parts.append(b'{"Product":"OPS243"}\n')
        parts.append(line)
        expected.append((abs(speed) * 3.6, "inbound" if speed >= 0 else "outbound"))
    return b"".join(parts), expected


@settings(max_examples=200, deadline=None)
@given(stream=_stream(), cuts=st.lists(st.integers(0, 600), max_size=30))
def test_stream_property(stream: tuple[bytes, list[tuple[float, str]]], cuts: list[int]) -> None:
    data, expected = stream
    decoder = RadarDecoder()
    readings = feed_in_pieces(decoder, data, cuts)
    got = [(r.values["speed_kmh"], r.values["direction"]) for r in readings]
    assert got == [(pytest.approx(k, abs=1e-3), d) for k, d in expected]
