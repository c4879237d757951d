"""Plantower PMS particulate sensors (PMS3003, PMS5003, PMS7003, PMS5003ST).

Frame layout (all multi-byte fields big-endian), after the Plantower datasheets::

    offset  size  field
    0       2     start characters 0x42 0x4D ("BM")
    2       2     frame length = 2 * data words + 2 (checksum); excludes start + length
    4       2*n   data words
    4+2n    2     checksum = 16-bit sum of every preceding byte (start + length + data)

Data words by frame length:

* 28 (PMS5003 / PMS7003, 13 words): PM1.0, PM2.5, PM10 "CF=1" (standard particle,
  ug/m3); PM1.0, PM2.5, PM10 atmospheric environment (ug/m3); particle counts beyond
  0.3, 0.5, 1.0, 2.5, 5.0 and 10 um per 0.1 L of air; reserved (version, error code).
* 20 (PMS3003, 9 words): the six PM words, then three reserved words.
* 36 (PMS5003ST, 17 words): the 12 words of the PMS5003, formaldehyde (mg/m3 x 1000),
  temperature (deg C x 10, signed), relative humidity (% x 10), reserved, version/error.
* 4: the reply to a mode or sleep command (not a reading).

Host commands are 7 bytes: ``42 4D CMD DATAH DATAL LRCH LRCL`` where LRC is the 16-bit
sum of the first five bytes.
"""

from __future__ import annotations

import struct

from gateway.sensors.decoder import StreamDecoder
from gateway.sensors.types import Reading

START = b"\x42\x4d"
VARIANTS: dict[int, str] = {20: "pms3003", 28: "pms5003", 36: "pms5003st"}
REPLY_LENGTH = 4

CMD_READ = 0xE2
CMD_MODE = 0xE1
CMD_SLEEP = 0xE4

_COUNT_NAMES = ("n0_3", "n0_5", "n1_0", "n2_5", "n5_0", "n10")


def command(cmd: int, data: int = 0) -> bytes:
    """Build a 7-byte host command frame ``42 4D CMD DATAH DATAL LRCH LRCL``."""
    if not 0 <= cmd <= 0xFF or not 0 <= data <= 0xFFFF:
        raise ValueError(f"command byte {cmd} or data {data} out of range")
    head = START + bytes([cmd, data >> 8, data & 0xFF])
    return head + struct.pack(">H", sum(head) & 0xFFFF)


def passive_mode() -> bytes:
    """Switch to passive mode: the sensor answers only :func:`read_passive`."""
    return command(CMD_MODE, 0)


def active_mode() -> bytes:
    """Switch to active mode: the sensor streams frames on its own (the default)."""
    return command(CMD_MODE, 1)


def read_passive() -> bytes:
    """Request one data frame while in passive mode."""
    return command(CMD_READ, 0)


def sleep() -> bytes:
    """Put the sensor to sleep (fan off)."""
    return command(CMD_SLEEP, 0)


def wake() -> bytes:
    """Wake the sensor (allow ~30 s before trusting readings)."""
    return command(CMD_SLEEP, 1)


def build_frame(words: list[int]) -> bytes:
    """Build a sensor data frame from its data words (used by simulators and tests)."""
    body = START + struct.pack(">H", 2 * len(words) + 2) + struct.pack(f">{len(words)}H", *words)
    return body + struct.pack(">H", sum(body) & 0xFFFF)


class PmsDecoder(StreamDecoder):
    """Streaming decoder for every PMS variant, told apart by the frame length."""

    name = "pms5003"
    max_buffer = 1024

    def _parse(self) -> list[Reading]:
        out: list[Reading] = []
        buf = self._buf
        while buf:
            start = buf.find(START)
            if start < 0:
                self._skip(len(buf) - (1 if buf[-1] == START[0] else 0))
                break
            self._skip(start)
            if len(buf) < 4:
                break
            length = (buf[2] << 8) | buf[3]
            if length not in VARIANTS and length != REPLY_LENGTH:
                self.counters.bad_frames += 1
                self._skip(1)
                continue
            total = 4 + length
            if len(buf) < total:
                break
            frame = bytes(buf[:total])
            self.counters.frames += 1
            if sum(frame[:-2]) & 0xFFFF != (frame[-2] << 8 | frame[-1]):
                self.counters.bad_checksum += 1
                self._skip(1)
                continue
            del buf[:total]
            self._synced()
            if length == REPLY_LENGTH:
                self.counters.replies += 1
                continue
            out.append(self._decode(frame, length))
        return out

    def _decode(self, frame: bytes, length: int) -> Reading:
        n = (length - 2) // 2
        words = struct.unpack(f">{n}H", frame[4 : 4 + 2 * n])
        values: dict[str, float | int | str] = {
            "pm1_0": words[3],
            "pm2_5": words[4],
            "pm10": words[5],
        }
        extra: dict[str, float | int | str] = {
            "variant": VARIANTS[length],
            "pm1_0_cf1": words[0],
            "pm2_5_cf1": words[1],
            "pm10_cf1": words[2],
        }
        if length >= 28:
            extra.update(zip(_COUNT_NAMES, words[6:12], strict=True))
        if length == 36:
            temp = words[13] - 0x10000 if words[13] & 0x8000 else words[13]
            values["hcho_mg_m3"] = words[12] / 1000.0
            values["temperature_c"] = temp / 10.0
            values["humidity_pct"] = words[14] / 10.0
        if length != 20:
            extra["version"] = words[-1] >> 8
            extra["error"] = words[-1] & 0xFF
        return self._reading(values, extra)
