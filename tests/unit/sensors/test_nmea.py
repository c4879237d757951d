"""NMEA 0183 decoder: the classic GGA/RMC examples, talkers, checksums, streams."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.sensors import nmea
from gateway.sensors.nmea import NmeaDecoder
from tests.support.sensors import feed_in_pieces

GGA = b"$GPGGA,123519,4807.038,N,01131.000,E,1,08,0.9,545.4,M,46.9,M,,*47\r\n"
RMC = b"$GPRMC,123519,A,4807.038,N,01131.000,E,022.4,084.4,230394,003.1,W*6A\r\n"


def test_checksums_of_classic_examples() -> None:
    assert nmea.checksum("GPGGA,123519,4807.038,N,01131.000,E,1,08,0.9,545.4,M,46.9,M,,") == 0x47
    assert nmea.sentence("GPRMC,123519,A,4807.038,N,01131.000,E,022.4,084.4,230394,003.1,W") == RMC


def test_gga_classic() -> None:
    (reading,) = NmeaDecoder().feed(GGA)
    assert reading.protocol == "nmea"
    assert reading.values == {
        "fix": 1,
        "lat": pytest.approx(48 + 7.038 / 60),
        "lon": pytest.approx(11 + 31.0 / 60),
        "satellites": 8,
        "hdop": 0.9,
        "altitude_m": 545.4,
    }
    assert reading.extra == {
        "talker": "GP",
        "sentence": "GGA",
        "time_utc": "12:35:19",
        "geoid_separation_m": 46.9,
    }


def test_rmc_classic() -> None:
    (reading,) = NmeaDecoder().feed(RMC)
    assert reading.values == {
        "fix": 1,
        "lat": pytest.approx(48.1173),
        "lon": pytest.approx(11.5166667),
        "speed_kmh": pytest.approx(22.4 * 1.852),
        "course_deg": 84.4,
    }
    assert reading.extra["date_utc"] == "1994-03-23"
    assert reading.extra["time_utc"] == "12:35:19"
    assert reading.extra["magnetic_variation_deg"] == -3.1


@pytest.mark.parametrize("talker", ["GN", "GL", "GA", "BD", "GB"])
def test_any_talker_and_southwest_signs(talker: str) -> None:
    line = nmea.sentence(f"{talker}GGA,000001.00,3351.000,S,15112.000,W,2,12,0.6,12.0,M,,M,,")
    (reading,) = NmeaDecoder().feed(line)
    assert reading.values["lat"] == pytest.approx(-(33 + 51 / 60))
    assert reading.values["lon"] == pytest.approx(-(151 + 12 / 60))
    assert reading.values["fix"] == 2
    assert reading.extra["talker"] == talker


def test_no_fix_gga_has_no_position() -> None:
    (reading,) = NmeaDecoder().feed(nmea.sentence("GPGGA,000000,,,,,0,00,,,M,,M,,"))
    assert reading.values == {"fix": 0, "satellites": 0}


def test_void_rmc_is_fix_zero() -> None:
    (reading,) = NmeaDecoder().feed(nmea.sentence("GNRMC,000000,V,,,,,,,010125,,,N"))
    assert reading.values == {"fix": 0}


@pytest.mark.parametrize(
    ("line", "counter"),
    [
        (GGA.replace(b"*47", b"*48"), "bad_checksum"),
        (GGA.replace(b"*47", b""), "bad_checksum"),  # missing checksum not trusted
        (b"$GPGGA," + b"1" * 80 + b"*00\r\n", "bad_frames"),  # over 82 characters
        (
            nmea.sentence("GPGGA,123519,48x7.038,N,01131.000,E,1,08,0.9,545.4,M,46.9,M,,"),
            "bad_frames",
        ),
        (nmea.sentence("GPGSV,3,1,11,03,03,111,00"), "ignored"),
        (b"$GPGGA,12351\xff9*00\r\n", "bad_frames"),
        (b"$GPGGA,123519,4807.0" + GGA, "bad_frames"),  # cut short by the next sentence
    ],
)
def test_rejections_counted(line: bytes, counter: str) -> None:
    decoder = NmeaDecoder()
    readings = decoder.feed(line + RMC)
    assert [r.extra["sentence"] for r in readings][-1] == "RMC"
    assert decoder.stats()[counter] == 1


def test_missing_checksum_allowed_by_option() -> None:
    decoder = NmeaDecoder.from_options("gps", {"allow_missing_checksum": True})
    (reading,) = decoder.feed(GGA.replace(b"*47", b""))
    assert reading.values["satellites"] == 8


def test_max_length_sentence_accepted() -> None:
    body = "GPGGA,123519,4807.038,N,01131.000,E,1,08,0.9,545.4,M,46.9,M,,"
    body += "0" * (80 - 1 - 3 - len(body))  # "$" + body + "*HH" = 80, + CR LF = 82
    line = nmea.sentence(body)
    assert len(line) == 82
    decoder = NmeaDecoder()
    decoder.feed(line)
    assert decoder.stats()["bad_frames"] == 0


def test_buffer_is_bounded() -> None:
    decoder = NmeaDecoder()
    for _ in range(100):
        decoder.feed(b"$" + b"A" * 500)
    assert decoder.buffered <= NmeaDecoder.max_buffer
    assert decoder.feed(b"\r\n" + GGA) != []


_garbage = st.binary(max_size=40).map(lambda b: b.replace(b"$", b"#"))


@st.composite
def _stream(draw: st.DrawFn) -> tuple[bytes, list[tuple[float, float]]]:
    parts: list[bytes] = []
    expected: list[tuple[float, float]] = []
    for _ in range(draw(st.integers(0, 6))):
        lat_min = draw(st.integers(0, 5999)) / 100
        lon_min = draw(st.integers(0, 5999)) / 100
        talker = draw(st.sampled_from(["GP", "GN", "GL", "BD"]))
        kind = draw(st.sampled_from(["GGA", "RMC"]))
        if kind == "GGA":
            body = (
                f"{talker}GGA,101010,45{lat_min:06.3f},N,007{lon_min:06.3f},E,1,07,1.1,10.0,M,,M,,"
            )
        else:
            body = f"{talker}RMC,101010,A,45{lat_min:06.3f},N,007{lon_min:06.3f},E,1.0,2.0,010125,,"
        line = nmea.sentence(body)
        parts.append(draw(_garbage))
        corruption = draw(st.sampled_from(["none", "checksum", "truncated", "other"]))
        if corruption == "checksum":
            parts.append(line.replace(b"*", b"0*", 1))
        elif corruption == "truncated":
            parts.append(line[: draw(st.integers(1, len(line) - 3))])
        elif corruption == "other":
            parts.append(nmea.sentence(f"{talker}GSA,A,3,04,05,,,,,,,,,,,2.5,1.3,2.1"))
        parts.append(line)
        expected.append((45 + lat_min / 60, 7 + lon_min / 60))
    parts.append(draw(_garbage))
    return b"".join(parts), expected


@settings(max_examples=200, deadline=None)
@given(stream=_stream(), cuts=st.lists(st.integers(0, 1000), max_size=30))
def test_stream_property(stream: tuple[bytes, list[tuple[float, float]]], cuts: list[int]) -> None:
    data, expected = stream
    decoder = NmeaDecoder()
    readings = feed_in_pieces(decoder, data, cuts)
    got = [(r.values["lat"], r.values["lon"]) for r in readings]
    assert got == [(pytest.approx(a), pytest.approx(b)) for a, b in expected]
