"""OmniPreSense OPS243-style Doppler radar speed output (text lines).

The module prints one line per detected speed, in one of these forms:

* a plain number, ``12.3`` or ``-4.5``, in the module's current unit (m/s by default);
* the same with the unit first when units output is on: ``"mph",12.3``;
* JSON when JSON output is on: ``{"speed":"12.3","unit":"mph"}``, optionally with
  ``"direction":"inbound"`` or ``"outbound"``.

Sign convention (OmniPreSense OPS24x manual, direction filters ``R+`` "inbound only"
and ``R-`` "outbound only"): a positive speed is an **inbound** target, approaching the
radar; a negative speed is **outbound**, moving away. Set the ``invert_direction``
option for a module mounted or configured the other way round.

JSON lines without a speed are configuration replies (``{"Product":"OPS243",...}``,
``{"OutputFeature":...}``, ``{"Units":"mph"}``): they are counted as replies, never
readings, and a units reply changes the unit used for plain numbers.

Readings: ``speed_kmh`` (non-negative) and ``direction`` (``inbound``/``outbound``).
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping

from gateway.errors import UsageError
from gateway.sensors.decoder import OptionValue, StreamDecoder
from gateway.sensors.types import Reading

MAX_LINE = 256
_NUMBER = re.compile(rb"^[+-]?(?:\d+(?:\.\d*)?|\.\d+)$")
_UNIT_NUMBER = re.compile(rb'^"([A-Za-z/-]+)",\s*([+-]?(?:\d+(?:\.\d*)?|\.\d+))$')

# unit spelling -> factor to km/h (spellings used by the module's replies and by users)
UNITS_TO_KMH: dict[str, float] = {
    "mps": 3.6,
    "m/s": 3.6,
    "m-per-sec": 3.6,
    "mph": 1.609344,
    "kmh": 1.0,
    "kph": 1.0,
    "km/h": 1.0,
    "km-per-hr": 1.0,
    "fps": 1.09728,
    "ft/s": 1.09728,
    "ft-per-sec": 1.09728,
    "cmps": 0.036,
    "cm/s": 0.036,
    "cm-per-sec": 0.036,
}


def unit_factor(unit: str) -> float:
    """Return the factor converting ``unit`` to km/h (``ValueError`` if unknown)."""
    try:
        return UNITS_TO_KMH[unit.strip().lower()]
    except KeyError:
        raise ValueError(f"unknown speed unit {unit!r}") from None


class RadarDecoder(StreamDecoder):
    """Streaming decoder for OPS243-style speed lines."""

    name = "ops243"
    max_buffer = 2 * MAX_LINE
    known_options = frozenset({"unit", "invert_direction"})

    def __init__(
        self,
        sensor_id: str = "",
        protocol: str = "",
        unit: str = "mps",
        invert_direction: bool = False,
    ) -> None:
        super().__init__(sensor_id, protocol)
        unit_factor(unit)
        self.unit = unit.lower()
        self.invert_direction = invert_direction
        self._discarding = False

    @classmethod
    def from_options(
        cls, sensor_id: str, options: Mapping[str, OptionValue], protocol: str = ""
    ) -> RadarDecoder:
        """Build from config options (``unit`` for plain numbers, ``invert_direction``)."""
        cls.check_options(options)
        unit = str(options.get("unit", "mps"))
        if unit.lower() not in UNITS_TO_KMH:
            raise UsageError(f"unknown radar unit {unit!r}; use one of {sorted(UNITS_TO_KMH)}")
        return cls(sensor_id, protocol, unit, bool(options.get("invert_direction", False)))

    def _parse(self) -> list[Reading]:
        out: list[Reading] = []
        buf = self._buf
        while buf:
            nl = buf.find(b"\n")
            if nl < 0:
                if len(buf) > MAX_LINE:
                    self.counters.frames += 1
                    self.counters.bad_frames += 1  # a line too long to be speed output
                    self._skip(len(buf))
                    self._discarding = True
                break
            line = bytes(buf[:nl]).strip(b"\r \t\x00")
            del buf[: nl + 1]
            if self._discarding:
                self._discarding = False
                self._synced()
                continue
            if not line:
                continue
            self.counters.frames += 1
            reading = self._line(line)
            if reading is not None:
                out.append(reading)
        return out

    def _line(self, line: bytes) -> Reading | None:
        try:
            if _NUMBER.match(line):
                return self._speed(float(line), self.unit, None)
            match = _UNIT_NUMBER.match(line)
            if match:
                return self._speed(float(match.group(2)), match.group(1).decode(), None)
            if line.startswith(b"{") and line.endswith(b"}"):
                return self._json(line)
        except ValueError:
            pass
        self.counters.bad_frames += 1
        return None

    def _json(self, line: bytes) -> Reading | None:
        try:
            obj = json.loads(line)
        except (json.JSONDecodeError, UnicodeDecodeError):
            raise ValueError("bad JSON") from None
        if not isinstance(obj, dict):
            raise ValueError("not an object")
        keys = {str(k).lower(): v for k, v in obj.items()}
        if "speed" not in keys:
            units = keys.get("units", keys.get("unit"))
            if isinstance(units, str):
                unit_factor(units)
                self.unit = units.strip().lower()
            self.counters.replies += 1
            return None
        unit = keys.get("unit", self.unit)
        direction = keys.get("direction")
        if not isinstance(unit, str) or direction not in (None, "inbound", "outbound"):
            raise ValueError("bad unit or direction")
        speed = keys["speed"]
        if isinstance(speed, bool) or not isinstance(speed, (str, int, float)):
            raise ValueError("bad speed")
        return self._speed(float(speed), unit, direction)

    def _speed(self, speed: float, unit: str, direction: str | None) -> Reading:
        if not math.isfinite(speed):
            raise ValueError("speed is not finite")
        kmh = abs(speed) * unit_factor(unit)
        if direction is None:
            inbound = (speed >= 0) != self.invert_direction
            direction = "inbound" if inbound else "outbound"
        return self._reading(
            {"speed_kmh": round(kmh, 6), "direction": direction},
            {"speed_raw": speed, "unit": unit.strip().lower()},
        )
