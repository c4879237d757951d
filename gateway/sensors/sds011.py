"""Nova Fitness SDS011 particulate sensor.

Sensor frames are 10 bytes::

    AA C0 PM25L PM25H PM10L PM10H ID1 ID2 CHK AB    (a measurement)
    AA C5 D1    D2    D3    D4    ID1 ID2 CHK AB    (a reply to a command)

``CHK`` is the low byte of the sum of bytes 2..7 (the six data bytes); PM values are
little-endian tenths of ug/m3. Host commands are 19 bytes::

    AA B4 D1 .. D15 CHK AB    with CHK = low byte of the sum of D1..D15

where D14 D15 is the device id (FF FF = every sensor).
"""

from __future__ import annotations

from gateway.sensors.decoder import StreamDecoder
from gateway.sensors.types import Reading

HEAD = 0xAA
TAIL = 0xAB
CMD_DATA = 0xC0
CMD_REPLY = 0xC5
FRAME_LEN = 10
ALL_SENSORS = 0xFFFF


def command(data: list[int], device_id: int = ALL_SENSORS) -> bytes:
    """Build a 19-byte host command from up to 13 leading data bytes (D1..D13)."""
    if len(data) > 13 or any(not 0 <= b <= 0xFF for b in data):
        raise ValueError("a command carries at most 13 data bytes of 0..255")
    payload = [*data, *([0] * (13 - len(data))), device_id >> 8, device_id & 0xFF]
    return bytes([HEAD, 0xB4, *payload, sum(payload) & 0xFF, TAIL])


def query_data(device_id: int = ALL_SENSORS) -> bytes:
    """Ask for one measurement (query reporting mode)."""
    return command([0x04], device_id)


def set_sleep(sleep: bool, device_id: int = ALL_SENSORS) -> bytes:
    """Put the sensor to sleep (``True``) or back to work (``False``)."""
    return command([0x06, 0x01, 0x00 if sleep else 0x01], device_id)


def build_frame(pm2_5: float, pm10: float, device_id: int = 0x1234) -> bytes:
    """Build a measurement frame (used by simulators and tests)."""
    a, b = round(pm2_5 * 10), round(pm10 * 10)
    data = [a & 0xFF, a >> 8, b & 0xFF, b >> 8, device_id >> 8, device_id & 0xFF]
    return bytes([HEAD, CMD_DATA, *data, sum(data) & 0xFF, TAIL])


class Sds011Decoder(StreamDecoder):
    """Streaming decoder for SDS011 measurement and reply frames."""

    name = "sds011"
    max_buffer = 512

    def _parse(self) -> list[Reading]:
        out: list[Reading] = []
        buf = self._buf
        while buf:
            start = buf.find(HEAD)
            if start < 0:
                self._skip(len(buf))
                break
            self._skip(start)
            if len(buf) < 2:
                break
            if buf[1] not in (CMD_DATA, CMD_REPLY):
                self._skip(1)
                continue
            if len(buf) < FRAME_LEN:
                break
            frame = bytes(buf[:FRAME_LEN])
            self.counters.frames += 1
            if frame[9] != TAIL:
                self.counters.bad_frames += 1
                self._skip(1)
                continue
            if sum(frame[2:8]) & 0xFF != frame[8]:
                self.counters.bad_checksum += 1
                self._skip(1)
                continue
            del buf[:FRAME_LEN]
            self._synced()
            if frame[1] == CMD_REPLY:
                self.counters.replies += 1
                continue
            values: dict[str, float | int | str] = {
                "pm2_5": (frame[2] | frame[3] << 8) / 10.0,
                "pm10": (frame[4] | frame[5] << 8) / 10.0,
            }
            out.append(self._reading(values, {"device_id": f"{frame[6]:02X}{frame[7]:02X}"}))
        return out
