"""The simulated board: an RSB endpoint with slowly varying sensors, config and faults.

``Board`` is a state machine driven by ``receive(data, now)`` and ``step(now)``; it
produces the bytes a real board would put on its UART, after fault injection. It keeps
a bounded record of every reading it produced so tests can check delivery.
"""

from __future__ import annotations

import math
import random
import threading
from collections import deque
from dataclasses import dataclass, field

from firmware_bridge.codec import encode_frame
from firmware_bridge.framer import Deframer
from firmware_bridge.link import BoardLink
from firmware_bridge.messages import (
    CONFIG_BAD_VALUE,
    CONFIG_OK,
    CONFIG_READ_ONLY,
    CONFIG_UNKNOWN_KEY,
    KIND_F32,
    KIND_I32,
    KIND_I32_CENTI,
    NACK_UNSUPPORTED,
    OUTPUT_OK,
    OUTPUT_UNKNOWN,
    Body,
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
    Value,
)
from simulators.board.faults import FaultConfig, Wire

FIRMWARE = (1, 0, 0)
CAPABILITIES = 0x1F  # READING, CONFIG, LOG, PING, OUTPUT
KEY_REPORT_INTERVAL_MS = 1
KEY_RETRANSMIT_TIMEOUT_MS = 2
KEY_UPTIME_S = 3
_LIMITS = {KEY_REPORT_INTERVAL_MS: (100, 3_600_000), KEY_RETRANSMIT_TIMEOUT_MS: (50, 10_000)}
MAX_RECORDS = 100_000
OUTPUTS = 4  # outputs 0..3 (a beacon relay, a sign, ...), each starting at 0 (its fail-safe)
MAX_OUTPUT_LOG = 10_000


@dataclass(frozen=True, slots=True)
class OutputChange:
    """One change of a board output: when (board clock), which, to what, and why."""

    t: float
    output: int
    value: float | int
    reason: str  # "set" (an OUTPUT_SET) or "lease" (the lease ran out: fail-safe)


@dataclass
class _Output:
    value: float | int = 0
    kind: int = KIND_I32
    fail_safe: float | int = 0
    fail_kind: int = KIND_I32
    lease_until: float | None = None


@dataclass
class BoardOptions:
    """Board settings: identity, timing, faults on each direction, scheduled reboots."""

    node: int = 1
    name: str = "sim-board"
    interval: float = 1.0  # seconds between READINGs
    rto: float = 0.3  # retransmit timeout, seconds
    seed: int = 0
    faults_out: FaultConfig = field(default_factory=FaultConfig)
    faults_in: FaultConfig = field(default_factory=FaultConfig)
    reboot_every: float = 0.0  # mean seconds between spontaneous reboots, 0 = never
    log_every: int = 20  # a LOG line every N readings, 0 = never
    max_records: int = MAX_RECORDS  # produced / lost records kept for checks (oldest dropped)


class Board:
    """One simulated board; thread-safe (one lock around every public method)."""

    def __init__(self, options: BoardOptions, now: float = 0.0) -> None:
        self.options = options
        self.rng = random.Random(options.seed)
        self.lock = threading.Lock()
        self.out_wire = Wire(options.faults_out, random.Random(options.seed + 1))
        self.in_wire = Wire(options.faults_in, random.Random(options.seed + 2))
        self.interval_ms = round(options.interval * 1000)
        self.rto_ms = round(options.rto * 1000)
        self.produced: deque[tuple[int, int]] = deque(maxlen=options.max_records)  # boot, seq
        self.lost_on_reboot: deque[tuple[int, int]] = deque(maxlen=options.max_records)
        self.paused = False
        self.boots = 0
        self.refused = 0
        # Outputs keep their state across reboots only in hardware; here a reboot resets
        # them to 0 like a relay board powering up.
        self.outputs = [_Output() for _ in range(OUTPUTS)]
        self.output_log: deque[OutputChange] = deque(maxlen=MAX_OUTPUT_LOG)
        self.output_sets = 0
        self._sensors = {"t": 18.0, "h": 55.0, "p": 1013.0, "pm": 8.0, "noise": 52.0}
        self._next_reading = 0.0
        self._next_reboot = 0.0
        self._boot(now)

    # --- public API (thread-safe) -------------------------------------------------

    def receive(self, data: bytes, now: float) -> None:
        """Bytes arriving from the host (inbound faults are applied first)."""
        with self.lock:
            for chunk in self.in_wire.apply([data]):
                for msg in self._rx.feed(chunk):
                    self._handle(msg, now)

    def step(self, now: float) -> list[bytes]:
        """Advance to ``now``; return the writes to put on the line."""
        with self.lock:
            if self._next_reboot and now >= self._next_reboot:
                self._reboot(now)
            self._expire_leases(now)
            if not self.paused and now >= self._next_reading:
                self._next_reading = now + self.interval_ms / 1000
                self._produce(now)
            frames = [b"\x00" + encode_frame(m) for m in self._immediate]
            self._immediate.clear()
            frames += [b"\x00" + encode_frame(m) for m in self.link.poll(now)]
            writes = self.out_wire.apply(frames)
            return writes + ([] if frames else self.out_wire.flush())

    def reboot(self, now: float) -> None:
        """Reboot now: the RAM queue is lost, a new boot id and HELLO follow."""
        with self.lock:
            self._reboot(now)

    def drained(self) -> bool:
        """True when every produced reading has been acknowledged."""
        with self.lock:
            return not self.link.pending and not self.link.hello_pending

    def stats(self) -> dict[str, int]:
        """Counters of the board, its link and its fault injection."""
        with self.lock:
            c = self.link.counters
            return {
                "boots": self.boots,
                "produced": len(self.produced),
                "lost_on_reboot": len(self.lost_on_reboot),
                "pending": len(self.link.pending),
                "retransmits": c.retransmits,
                "refused": self.refused,
                "dropped_frames_out": self.out_wire.dropped_frames,
                "flipped_bits_out": self.out_wire.flipped_bits,
                "dropped_frames_in": self.in_wire.dropped_frames,
                "bad_frames_in": self._rx.counters.frames - self._rx.counters.good,
            }

    # --- internals (lock held) ----------------------------------------------------

    def _boot(self, now: float) -> None:
        self.boots += 1
        self.boot_id = self.rng.randrange(65536)
        self.boot_time = now
        self.link = BoardLink(
            self.options.node,
            Hello(FIRMWARE, self.boot_id, CAPABILITIES, self.options.name),
            first_seq=self.rng.randrange(65536),
            rto=self.rto_ms / 1000,
        )
        self._rx = Deframer()
        self._immediate: list[Message] = []
        self._next_reading = now + self.interval_ms / 1000
        self._count = 0
        for i, out in enumerate(getattr(self, "outputs", ())):
            if out.value != 0:
                self.output_log.append(OutputChange(now, i, 0, "boot"))
            self.outputs[i] = _Output()
        every = self.options.reboot_every
        self._next_reboot = now + self.rng.expovariate(1 / every) if every > 0 else 0.0
        self._log(1, f"boot {self.boots} id {self.boot_id:04x} fw {'.'.join(map(str, FIRMWARE))}")

    def _reboot(self, now: float) -> None:
        self.lost_on_reboot.extend((self.boot_id, m.seq) for m in self.link.pending)
        self._boot(now)

    def _uptime_ms(self, now: float) -> int:
        return int((now - self.boot_time) * 1000) % (1 << 32)

    def _produce(self, now: float) -> None:
        s, rng = self._sensors, self.rng
        s["t"] += rng.gauss(0, 0.05) + 0.02 * math.sin(now / 60)
        s["h"] = min(100.0, max(0.0, s["h"] + rng.gauss(0, 0.2)))
        s["p"] += rng.gauss(0, 0.05)
        s["pm"] = max(0.0, s["pm"] + rng.gauss(0, 0.3))
        s["noise"] = max(30.0, s["noise"] + rng.gauss(0, 0.5))
        values = (
            Value(0, KIND_F32, round(s["t"], 2)),
            Value(1, KIND_F32, round(s["h"], 1)),
            Value(2, KIND_I32_CENTI, round(s["p"] * 100)),
            Value(4, KIND_I32_CENTI, round(s["pm"] * 100)),
            Value(6, KIND_F32, round(s["noise"], 1)),
        )
        msg = self.link.offer(Readings(self._uptime_ms(now), values))
        if msg is None:
            self.refused += 1
            if self.refused == 1:
                self._log(2, "retransmit queue full: readings dropped")
            return
        self.produced.append((self.boot_id, msg.seq))
        self._count += 1
        if self.options.log_every and self._count % self.options.log_every == 0:
            self._log(1, f"{self._count} readings, {self.link.counters.retransmits} retransmits")

    def _log(self, level: int, text: str) -> None:
        seq = self.link.pending[-1].seq if self.link.pending else 0
        self._immediate.append(Message(self.options.node, seq, Log(level, text)))

    def _handle(self, msg: Message, now: float) -> None:
        if msg.node != self.options.node or self.link.receive(msg):
            return
        body = msg.body
        reply: Body
        if isinstance(body, Ping):
            reply = Pong(body.nonce, self._uptime_ms(now))
        elif isinstance(body, ConfigGet):
            reply = self._config(body.key, None, now)
        elif isinstance(body, ConfigSet):
            reply = self._config(body.key, body, now)
        elif isinstance(body, OutputSet):
            reply = self._output_set(body, now)
        else:
            reply = Nack(msg.seq, NACK_UNSUPPORTED)
        self._immediate.append(Message(self.options.node, msg.seq, reply))

    def _config(self, key: int, new: ConfigSet | None, now: float) -> ConfigValue:
        if key == KEY_UPTIME_S:
            uptime = int(now - self.boot_time)
            status = CONFIG_OK if new is None else CONFIG_READ_ONLY
            return ConfigValue(key, status, KIND_I32, uptime)
        if key not in _LIMITS:
            return ConfigValue(key, CONFIG_UNKNOWN_KEY, KIND_I32, 0)
        status = CONFIG_OK
        if new is not None:
            low, high = _LIMITS[key]
            if new.kind != KIND_I32 or not low <= int(new.value) <= high:
                status = CONFIG_BAD_VALUE
            elif key == KEY_REPORT_INTERVAL_MS:
                self.interval_ms = int(new.value)
            else:
                self.rto_ms = int(new.value)
                self.link.rto = self.rto_ms / 1000
        value = self.interval_ms if key == KEY_REPORT_INTERVAL_MS else self.rto_ms
        return ConfigValue(key, status, KIND_I32, value)

    def _output_set(self, cmd: OutputSet, now: float) -> OutputState:
        self.output_sets += 1
        if cmd.output >= len(self.outputs):
            return OutputState(cmd.output, OUTPUT_UNKNOWN, KIND_I32, 0, 0)
        out = self.outputs[cmd.output]
        if cmd.value != out.value:
            self.output_log.append(OutputChange(now, cmd.output, cmd.value, "set"))
        out.value, out.kind = cmd.value, cmd.kind
        out.fail_safe, out.fail_kind = cmd.fail_safe, cmd.fail_kind
        out.lease_until = now + cmd.lease_ms / 1000 if cmd.lease_ms else None
        return OutputState(cmd.output, OUTPUT_OK, out.kind, out.value, cmd.lease_ms)

    def _expire_leases(self, now: float) -> None:
        for i, out in enumerate(self.outputs):
            if out.lease_until is not None and now >= out.lease_until:
                out.lease_until = None
                if out.value != out.fail_safe:
                    self.output_log.append(OutputChange(now, i, out.fail_safe, "lease"))
                out.value, out.kind = out.fail_safe, out.fail_kind
