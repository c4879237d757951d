"""Slowly varying sensor values and the frames a real device would send for them.

Each generator keeps a small random-walk state pulled toward a diurnal baseline (the
time of day of the simulated clock), and turns it into protocol frames using the same
builders the decoders are tested against. ``corrupt`` damages a frame the way line
noise would (a checksum that no longer matches) and ``garbage`` returns bytes that can
never form or swallow a valid frame, so tests can count exactly what must decode.
"""

from __future__ import annotations

import json
import math
import random
import time
from typing import ClassVar

from gateway.sensors import nmea, pms, sds011

DAY_S = 86400.0


def diurnal(now: float, low: float, high: float, peak_hour: float = 8.0) -> float:
    """Return a smooth daily cycle between ``low`` and ``high`` peaking at ``peak_hour`` UTC."""
    phase = 2 * math.pi * ((now % DAY_S) / 3600.0 - peak_hour) / 24.0
    return low + (high - low) * (0.5 + 0.5 * math.cos(phase))


class Walk:
    """A mean-reverting random walk (Ornstein-Uhlenbeck in discrete steps)."""

    def __init__(self, rng: random.Random, value: float, step: float, pull: float = 0.05) -> None:
        self.rng = rng
        self.value = value
        self.step = step
        self.pull = pull

    def next(self, target: float, low: float, high: float) -> float:
        """Advance one step toward ``target`` with noise, clamped to ``[low, high]``."""
        self.value += self.pull * (target - self.value) + self.rng.gauss(0.0, self.step)
        self.value = min(max(self.value, low), high)
        return self.value


class Generator:
    """Base: ``frames(now)`` returns the frames for one tick."""

    protocol: ClassVar[str] = ""
    forbidden: ClassVar[bytes] = b""  # bytes garbage must avoid
    line_based: ClassVar[bool] = False

    def __init__(self, seed: int | None = None) -> None:
        self.rng = random.Random(seed)

    def frames(self, now: float) -> list[bytes]:
        """Return the frames for one tick at time ``now``."""
        raise NotImplementedError

    def preamble(self) -> bytes:
        """Return what the device prints once at power-up (not a reading)."""
        return b""

    def corrupt(self, frame: bytes) -> bytes:
        """Flip the last checksum byte (overridden where the checksum sits elsewhere)."""
        return frame[:-1] + bytes([frame[-1] ^ 0x01])

    def garbage(self, size: int) -> bytes:
        """Random bytes that cannot start a frame (line protocols: a whole junk line)."""
        junk = bytes(b for b in self.rng.randbytes(size) if b not in self.forbidden)
        return junk + b"\n" if self.line_based else junk


class PmsGenerator(Generator):
    """PMS5003/PMS7003 active-mode frames, about one per second on the real device."""

    protocol = "pms5003"
    forbidden = b"\x42"

    def __init__(self, seed: int | None = None) -> None:
        super().__init__(seed)
        self.pm25 = Walk(self.rng, 10.0, 0.6)

    def values(self, now: float) -> list[int]:
        """Return the 13 data words for the current state."""
        pm25 = self.pm25.next(diurnal(now, 5.0, 25.0), 0.0, 500.0)
        atm = [round(pm25 * 0.7), round(pm25), round(pm25 * 1.35)]
        cf1 = [round(v * 1.1) for v in atm]
        base = pm25 * 60
        counts = [round(base * f) for f in (1.0, 0.3, 0.05, 0.006, 0.002, 0.0005)]
        return [*cf1, *atm, *counts, 0x9700]

    def frames(self, now: float) -> list[bytes]:
        """Return one data frame."""
        return [pms.build_frame(self.values(now))]


class Sds011Generator(Generator):
    """SDS011 measurement frames."""

    protocol = "sds011"
    forbidden = b"\xaa"

    def __init__(self, seed: int | None = None) -> None:
        super().__init__(seed)
        self.pm25 = Walk(self.rng, 12.0, 0.5)

    def frames(self, now: float) -> list[bytes]:
        """Return one measurement frame."""
        pm25 = self.pm25.next(diurnal(now, 6.0, 30.0), 0.0, 999.0)
        return [sds011.build_frame(pm25, min(999.9, pm25 * 1.6 + 2.0), device_id=0xA160)]

    def corrupt(self, frame: bytes) -> bytes:
        """Damage the checksum byte (the last byte is the AB tail)."""
        return frame[:8] + bytes([frame[8] ^ 0x01]) + frame[9:]


class NmeaGenerator(Generator):
    """A GPS receiver on a pole: a fixed position with metre-level jitter, GGA + RMC."""

    protocol = "nmea"
    forbidden = b"$"
    line_based = True

    def __init__(self, seed: int | None = None, lat: float = 48.1173, lon: float = 11.5167) -> None:
        super().__init__(seed)
        self.lat = Walk(self.rng, lat, 0.000002, pull=0.2)
        self.lon = Walk(self.rng, lon, 0.000002, pull=0.2)
        self.base = (lat, lon)
        self.sats = 9

    @staticmethod
    def _coord(value: float, digits: int, pos: str, neg: str) -> tuple[str, str]:
        deg = int(abs(value))
        minutes = (abs(value) - deg) * 60
        return f"{deg:0{digits}d}{minutes:07.4f}", pos if value >= 0 else neg

    def frames(self, now: float) -> list[bytes]:
        """Return a GGA and an RMC sentence for the same instant."""
        lat = self.lat.next(self.base[0], -90, 90)
        lon = self.lon.next(self.base[1], -180, 180)
        self.sats = min(14, max(4, self.sats + self.rng.choice((-1, 0, 0, 0, 1))))
        la, ns = self._coord(lat, 2, "N", "S")
        lo, ew = self._coord(lon, 3, "E", "W")
        secs = now % DAY_S
        hhmmss = f"{int(secs // 3600):02d}{int(secs % 3600 // 60):02d}{secs % 60:05.2f}"
        hdop = round(0.7 + 4.0 / self.sats, 1)
        gga = f"GPGGA,{hhmmss},{la},{ns},{lo},{ew},1,{self.sats:02d},{hdop},545.4,M,46.9,M,,"
        ddmmyy = time.strftime("%d%m%y", time.gmtime(now))
        rmc = f"GNRMC,{hhmmss},A,{la},{ns},{lo},{ew},0.0,0.0,{ddmmyy},3.1,E,A"
        return [nmea.sentence(gga), nmea.sentence(rmc)]

    def corrupt(self, frame: bytes) -> bytes:
        """Change one checksum digit."""
        star = frame.rindex(b"*")
        digit = b"0" if frame[star + 1 : star + 2] != b"0" else b"1"
        return frame[: star + 1] + digit + frame[star + 2 :]


class RadarGenerator(Generator):
    """Traffic passing an OPS243: a speed line per detection, plain m/s or JSON mph."""

    protocol = "ops243"
    forbidden = b'0123456789{}"\r\n.+-$'
    line_based = True

    def __init__(self, seed: int | None = None, json_output: bool = False) -> None:
        super().__init__(seed)
        self.json_output = json_output
        self.flow = Walk(self.rng, 40.0, 1.5)

    def frames(self, now: float) -> list[bytes]:
        """Return one speed line."""
        out: list[bytes] = []
        kmh = max(5.0, self.rng.gauss(self.flow.next(diurnal(now, 30.0, 50.0), 10, 90), 6.0))
        inbound = self.rng.random() < 0.5
        if self.json_output:
            mph = kmh / 1.609344
            obj = {
                "speed": f"{mph:.1f}",
                "unit": "mph",
                "direction": "inbound" if inbound else "outbound",
            }
            out.append((json.dumps(obj, separators=(",", ":")) + "\r\n").encode())
        else:
            mps = kmh / 3.6
            out.append(f"{mps if inbound else -mps:.2f}\r\n".encode())
        return out

    def preamble(self) -> bytes:
        """Return the product information line the module prints at power-up."""
        return b'{"Product":"OPS243-A","Version":"1.2.6"}\r\n'

    def corrupt(self, frame: bytes) -> bytes:
        """Radar lines carry no checksum: damage shows as a mangled number."""
        return frame.replace(b".", b"#.", 1) if b"." in frame else b"#" + frame


GENERATORS: dict[str, type[Generator]] = {
    "pms5003": PmsGenerator,
    "pms7003": PmsGenerator,
    "sds011": Sds011Generator,
    "nmea": NmeaGenerator,
    "ops243": RadarGenerator,
}
