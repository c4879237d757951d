"""NMEA 0183 position sentences (GGA and RMC from any talker: GP, GN, GL, GA, BD, ...).

A sentence is ``$<talker><type>,<fields...>*<HH><CR><LF>``, at most 82 characters
including ``$`` and the line end. ``HH`` is the XOR of every character between ``$``
and ``*``, in hex. A sentence without a checksum counts as a bad checksum unless the
``allow_missing_checksum`` option is set. Other sentence types (GSV, GSA, VTG, ...)
with a good checksum are counted as ``ignored``.

Readings (SI units): ``lat``/``lon`` signed decimal degrees (south and west negative),
``fix`` (GGA fix quality 0-8; RMC status A = 1, V = 0), ``satellites``, ``hdop``,
``altitude_m`` (GGA), ``speed_kmh`` (knots x 1.852) and ``course_deg`` (RMC); UTC time
and date go to ``extra``.
"""

from __future__ import annotations

from collections.abc import Mapping

from gateway.sensors.decoder import OptionValue, StreamDecoder
from gateway.sensors.types import Reading

MAX_SENTENCE = 82  # characters including "$" and CR LF
KNOT_KMH = 1.852
_EOL = b"\r\n"


def checksum(body: str) -> int:
    """XOR of the characters between ``$`` and ``*``."""
    value = 0
    for ch in body.encode("ascii"):
        value ^= ch
    return value


def sentence(body: str) -> bytes:
    """Frame ``body`` (without ``$``) as a checksummed sentence with CR LF."""
    return f"${body}*{checksum(body):02X}\r\n".encode("ascii")


def _coord(value: str, hemi: str, deg_digits: int) -> float:
    if len(value) < deg_digits + 2 or hemi not in ("N", "S", "E", "W"):
        raise ValueError(f"bad coordinate {value!r} {hemi!r}")
    degrees = int(value[:deg_digits]) + float(value[deg_digits:]) / 60.0
    if not 0.0 <= degrees <= (90.0 if deg_digits == 2 else 180.0):
        raise ValueError(f"coordinate out of range: {value}")
    return -degrees if hemi in ("S", "W") else degrees


def _time(value: str) -> str:
    if len(value) < 6 or not value[:6].isdigit():
        raise ValueError(f"bad time {value!r}")
    return f"{value[0:2]}:{value[2:4]}:{value[4:]}"


def _date(value: str) -> str:
    if len(value) != 6 or not value.isdigit():
        raise ValueError(f"bad date {value!r}")
    yy = int(value[4:6])
    return f"{1900 + yy if yy >= 80 else 2000 + yy}-{value[2:4]}-{value[0:2]}"


class NmeaDecoder(StreamDecoder):
    """Streaming decoder for GGA and RMC sentences."""

    name = "nmea"
    max_buffer = 1024
    known_options = frozenset({"allow_missing_checksum"})

    def __init__(
        self, sensor_id: str = "", protocol: str = "", allow_missing_checksum: bool = False
    ) -> None:
        super().__init__(sensor_id, protocol)
        self.allow_missing_checksum = allow_missing_checksum

    @classmethod
    def from_options(
        cls, sensor_id: str, options: Mapping[str, OptionValue], protocol: str = ""
    ) -> NmeaDecoder:
        """Build from config options (``allow_missing_checksum``)."""
        cls.check_options(options)
        return cls(sensor_id, protocol, bool(options.get("allow_missing_checksum", False)))

    def _parse(self) -> list[Reading]:
        out: list[Reading] = []
        buf = self._buf
        while buf:
            while buf and buf[0] in _EOL:  # line ends between sentences are not garbage
                del buf[0]
            start = buf.find(b"$")
            if start < 0:
                self._skip(len(buf))
                break
            self._skip(start)
            window = bytes(buf[: MAX_SENTENCE + 1])
            eol = min((i for i in (window.find(b"\r"), window.find(b"\n")) if i >= 0), default=-1)
            restart = window.find(b"$", 1)
            if restart >= 0 and (eol < 0 or restart < eol):
                self.counters.frames += 1
                self.counters.bad_frames += 1  # cut short by the next sentence
                self._skip(restart)
                continue
            if eol < 0:
                if len(window) > MAX_SENTENCE - 2:
                    self.counters.frames += 1
                    self.counters.bad_frames += 1  # too long
                    self._skip(1)
                    continue
                break
            if eol > MAX_SENTENCE - 2:
                self.counters.frames += 1
                self.counters.bad_frames += 1  # too long
                self._skip(1)
                continue
            line = window[:eol]
            del buf[:eol]
            self.counters.frames += 1
            self._synced()
            reading = self._sentence(line)
            if reading is not None:
                out.append(reading)
        return out

    def _sentence(self, line: bytes) -> Reading | None:
        try:
            text = line.decode("ascii")
        except UnicodeDecodeError:
            self.counters.bad_frames += 1
            return None
        star = text.rfind("*")
        if star < 0:
            if not self.allow_missing_checksum:
                self.counters.bad_checksum += 1
                return None
            body = text[1:]
        else:
            body = text[1:star]
            given = text[star + 1 :]
            if len(given) != 2 or given.upper() != f"{checksum(body):02X}":
                self.counters.bad_checksum += 1
                return None
        fields = body.split(",")
        kind = fields[0][-3:] if len(fields[0]) == 5 else ""
        try:
            if kind == "GGA":
                return self._gga(fields)
            if kind == "RMC":
                return self._rmc(fields)
        except (ValueError, IndexError):
            self.counters.bad_frames += 1
            return None
        self.counters.ignored += 1
        return None

    def _position(self, fields: list[str], values: dict[str, float | int | str]) -> None:
        if fields[0] and fields[2]:
            values["lat"] = round(_coord(fields[0], fields[1], 2), 7)
            values["lon"] = round(_coord(fields[2], fields[3], 3), 7)

    def _gga(self, f: list[str]) -> Reading:
        if len(f) < 15:
            raise ValueError("GGA has 14 fields")
        values: dict[str, float | int | str] = {"fix": int(f[6] or 0)}
        self._position(f[2:6], values)
        if f[7]:
            values["satellites"] = int(f[7])
        if f[8]:
            values["hdop"] = float(f[8])
        if f[9]:
            values["altitude_m"] = float(f[9])
        extra: dict[str, float | int | str] = {"talker": f[0][:2], "sentence": "GGA"}
        if f[1]:
            extra["time_utc"] = _time(f[1])
        if f[11]:
            extra["geoid_separation_m"] = float(f[11])
        return self._reading(values, extra)

    def _rmc(self, f: list[str]) -> Reading:
        if len(f) < 12 or f[2] not in ("A", "V"):
            raise ValueError("RMC has at least 11 fields and status A or V")
        values: dict[str, float | int | str] = {"fix": 1 if f[2] == "A" else 0}
        self._position(f[3:7], values)
        if f[7]:
            values["speed_kmh"] = round(float(f[7]) * KNOT_KMH, 4)
        if f[8]:
            values["course_deg"] = float(f[8])
        extra: dict[str, float | int | str] = {"talker": f[0][:2], "sentence": "RMC"}
        if f[1]:
            extra["time_utc"] = _time(f[1])
        if f[9]:
            extra["date_utc"] = _date(f[9])
        if f[10]:
            variation = float(f[10])
            extra["magnetic_variation_deg"] = -variation if f[11].startswith("W") else variation
        return self._reading(values, extra)
