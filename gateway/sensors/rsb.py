"""``BridgeDecoder``: the gateway's "rsb" sensor protocol, a byte stream in, readings out.

It fits the sensor reader's decoder protocol: ``feed(chunk) -> list[Reading]``,
``pending_writes() -> bytes`` (ACKs and queued requests the reader writes back to the
port after each feed) and ``stats()``. Requests to boards (``ping``, ``config_get``,
``config_set``, ``output_set``) are queued for the next ``pending_writes()`` (from any
thread); their answers are collected by ``responses()`` and can be waited for by seq
with ``wait_answer()``.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections import OrderedDict, deque
from collections.abc import Mapping

from firmware_bridge.codec import encode_frame
from firmware_bridge.framer import Deframer
from firmware_bridge.link import HostLink, counters_dict, seq_add
from firmware_bridge.messages import (
    KIND_F32,
    KIND_I32,
    ConfigGet,
    ConfigSet,
    ConfigValue,
    Hello,
    Log,
    Message,
    Nack,
    OutputSet,
    OutputState,
    Ping,
    Pong,
    Readings,
)
from gateway.errors import UsageError
from gateway.sensors.types import Reading

log = logging.getLogger(__name__)

# Default names of channel ids (SPEC.md, "Channel map"); unknown ids become "ch<N>".
DEFAULT_CHANNELS: dict[int, str] = {
    0: "temperature_c",
    1: "humidity_pct",
    2: "pressure_hpa",
    3: "pm1_0",
    4: "pm2_5",
    5: "pm10",
    6: "noise_dba",
    7: "no2_ppb",
    8: "o3_ppb",
    9: "co_ppm",
    10: "co2_ppm",
    11: "light_lux",
    12: "battery_v",
    13: "wind_speed_ms",
    14: "rain_mm",
}
_LOG_LEVELS = {0: logging.DEBUG, 1: logging.INFO, 2: logging.WARNING, 3: logging.ERROR}
MAX_PENDING_WRITE = 4096  # bytes waiting for the reader; beyond that new frames are dropped
MAX_RESPONSES = 64
MAX_ANSWERS = 64  # answers kept for waiters (node, seq), oldest dropped


def parse_channels(text: str) -> dict[int, str]:
    """Parse ``"0=air_temp_c,20=soil_pct"`` into a channel map; raise UsageError if bad."""
    out: dict[int, str] = {}
    for item in filter(None, (p.strip() for p in text.split(","))):
        key, sep, name = item.partition("=")
        if not sep or not key.strip().isdigit() or not 0 <= int(key) <= 255 or not name.strip():
            raise UsageError(f"rsb channels: bad entry {item!r}, expected <0..255>=<name>")
        out[int(key)] = name.strip()
    return out


class BridgeDecoder:
    """Host end of the RSB protocol for one serial port (any number of boards on it)."""

    name = "rsb"
    known_options = frozenset({"channels", "max_nodes"})

    def __init__(
        self,
        sensor_id: str = "",
        protocol: str = "rsb",
        *,
        channels: Mapping[int, str] | None = None,
        max_nodes: int = 64,
    ) -> None:
        self.sensor_id = sensor_id
        self.protocol = protocol or self.name
        self.channels = {**DEFAULT_CHANNELS, **(channels or {})}
        self.deframer = Deframer()
        self.link = HostLink(max_nodes=max_nodes)
        self._out = bytearray()
        self._out_lock = threading.Lock()  # requests may be queued from other threads
        self._responses: deque[Message] = deque(maxlen=MAX_RESPONSES)
        self._answers: OrderedDict[tuple[int, int], Message] = OrderedDict()
        self._answered = threading.Condition()
        self._req_seq = 0
        self._counts = {"readings": 0, "logs": 0, "responses": 0, "nacks": 0}
        self._counts |= {"dropped_writes": 0, "non_finite": 0, "unexpected": 0}

    @classmethod
    def from_options(
        cls, sensor_id: str, options: Mapping[str, str | int | float | bool], protocol: str = ""
    ) -> BridgeDecoder:
        """Build from config options: ``channels`` ("id=name,..."), ``max_nodes`` (int)."""
        unknown = sorted(set(options) - cls.known_options)
        if unknown:
            known = ", ".join(sorted(cls.known_options))
            raise UsageError(f"protocol 'rsb' has no option(s) {', '.join(unknown)} ({known})")
        channels = parse_channels(str(options.get("channels", "")))
        max_nodes = options.get("max_nodes", 64)
        if not isinstance(max_nodes, int) or isinstance(max_nodes, bool) or max_nodes < 1:
            raise UsageError(f"rsb max_nodes must be a positive integer, got {max_nodes!r}")
        return cls(sensor_id, protocol or cls.name, channels=channels, max_nodes=max_nodes)

    def feed(self, chunk: bytes) -> list[Reading]:
        """Consume bytes from the port; return the readings delivered (once, in order)."""
        readings: list[Reading] = []
        for msg in self.deframer.feed(chunk):
            result = self.link.receive(msg)
            for reply in result.replies:
                self._write(reply)
            readings += [self._reading(m, result.boot_id) for m in result.delivered]
            for other in result.other:
                self._other(other)
        return readings

    def pending_writes(self) -> bytes:
        """Return (and forget) the bytes to write back to the port: ACKs and requests."""
        with self._out_lock:
            out, self._out = bytes(self._out), bytearray()
        return out

    def ping(self, node: int, nonce: int = 0) -> int:
        """Queue a PING to ``node``; return the request seq that its PONG will carry."""
        return self._request(node, Ping(nonce))

    def config_get(self, node: int, key: int) -> int:
        """Queue a CONFIG_GET; return the request seq its CONFIG_VALUE will carry."""
        return self._request(node, ConfigGet(key))

    def config_set(self, node: int, key: int, value: float | int) -> int:
        """Queue a CONFIG_SET (F32 for floats, I32 for ints); return the request seq."""
        kind = KIND_F32 if isinstance(value, float) else KIND_I32
        return self._request(node, ConfigSet(key, kind, value))

    def output_set(
        self, node: int, output: int, value: float, *, fail_safe: float, lease_ms: int
    ) -> int:
        """Queue an OUTPUT_SET (F32 values); return the seq its OUTPUT_STATE will carry."""
        body = OutputSet(output, KIND_F32, float(value), KIND_F32, float(fail_safe), lease_ms)
        return self._request(node, body)

    def wait_answer(self, node: int, seq: int, timeout_s: float) -> Message | None:
        """Wait for the answer (PONG, CONFIG_VALUE, OUTPUT_STATE or NACK) to request ``seq``.

        Safe to call from any thread while the reader feeds the decoder.
        """
        key = (node, seq)
        with self._answered:
            self._answered.wait_for(lambda: key in self._answers, timeout_s)
            return self._answers.pop(key, None)

    def responses(self) -> list[Message]:
        """Return (and forget) PONG, CONFIG_VALUE and NACK messages received from boards."""
        out = list(self._responses)
        self._responses.clear()
        return out

    def nodes(self) -> dict[int, Hello]:
        """Return the HELLO of every board with a session."""
        return self.link.nodes()

    def stats(self) -> dict[str, int]:
        """Return framing, link and decoder counters as one flat dict."""
        out = {f"framer_{k}": v for k, v in self.deframer.stats().items()}
        out |= {f"link_{k}": v for k, v in counters_dict(self.link.counters).items()}
        out |= self._counts
        # The names every sensor decoder reports (gateway.sensors.decoder.DecoderCounters).
        framer = self.deframer.counters
        out |= {
            "bytes": framer.bytes,
            "frames": framer.frames,
            "good": framer.good,
            "bad_checksum": framer.bad_crc,
            "bad_frames": framer.decode_errors + framer.oversize,
            "resyncs": framer.resyncs,
            "skipped_bytes": framer.discarded_bytes,
        }
        return out

    def _request(self, node: int, body: Ping | ConfigGet | ConfigSet | OutputSet) -> int:
        with self._out_lock:
            self._req_seq = seq_add(self._req_seq, 1)
            seq = self._req_seq
        self._write(Message(node, seq, body))
        return seq

    def _write(self, msg: Message) -> None:
        frame = b"\x00" + encode_frame(msg)
        with self._out_lock:
            if len(self._out) + len(frame) > MAX_PENDING_WRITE:
                self._counts["dropped_writes"] += 1
                return
            self._out += frame

    def _reading(self, msg: Message, boot_id: int) -> Reading:
        body = msg.body
        assert isinstance(body, Readings)
        values: dict[str, float | int | str] = {}
        for value in body.values:
            number = value.physical()
            if isinstance(number, float):
                if not math.isfinite(number):
                    self._counts["non_finite"] += 1
                    continue
                number = float(f"{number:.7g}")  # f32 carries ~7 significant digits
            values[self.channels.get(value.channel, f"ch{value.channel}")] = number
        extra: dict[str, float | int | str] = {
            "node": msg.node,
            "seq": msg.seq,
            "boot_id": boot_id,
            "uptime_ms": body.uptime_ms,
        }
        self._counts["readings"] += 1
        return Reading(self.protocol, values, time.time(), self.sensor_id, extra)

    def _other(self, msg: Message) -> None:
        body = msg.body
        if isinstance(body, Log):
            self._counts["logs"] += 1
            log.log(
                _LOG_LEVELS.get(body.level, logging.INFO), "rsb node %d: %s", msg.node, body.text
            )
        elif isinstance(body, Pong | ConfigValue | OutputState | Nack):
            self._counts["nacks" if isinstance(body, Nack) else "responses"] += 1
            self._responses.append(msg)
            with self._answered:  # the header echoes the request's seq
                self._answers[(msg.node, msg.seq)] = msg
                while len(self._answers) > MAX_ANSWERS:
                    self._answers.popitem(last=False)
                self._answered.notify_all()
        elif isinstance(body, Hello):
            log.info(
                "rsb node %d: hello fw %s boot %d %r", msg.node, body.fw, body.boot_id, body.name
            )
        else:
            self._counts["unexpected"] += 1
