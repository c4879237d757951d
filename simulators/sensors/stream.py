"""Run a streaming sensor simulator on a pty (or an existing port) in a thread."""

from __future__ import annotations

import threading
import time
from dataclasses import asdict, dataclass
from typing import Any

import serial

from simulators.sensors.generators import GENERATORS, Generator, RadarGenerator
from simulators.sensors.ptyport import PtyPort

FAULTS = ("split", "merge", "garbage", "badsum", "silence", "unplug")


@dataclass
class SimStats:
    """What the simulator sent (tests compare readers against these)."""

    ticks: int = 0
    good_frames: int = 0
    corrupted_frames: int = 0
    garbage_chunks: int = 0
    bytes: int = 0
    silences: int = 0
    unplugs: int = 0


def parse_faults(text: str) -> frozenset[str]:
    """Parse ``split,garbage,...``; ``ValueError`` naming an unknown fault."""
    names = frozenset(n.strip() for n in text.split(",") if n.strip())
    unknown = sorted(names - set(FAULTS))
    if unknown:
        raise ValueError(f"unknown fault(s) {', '.join(unknown)}; known: {', '.join(FAULTS)}")
    return names


class StreamSimulator:
    """Writes a protocol's frames at ``rate_hz`` with optional faults.

    Faults: ``split`` (frames written in pieces), ``merge`` (several frames per write),
    ``garbage`` (junk between frames), ``badsum`` (a share of frames with a bad
    checksum), ``silence`` (no output for ``silence_s`` every ``fault_period_s``) and
    ``unplug`` (the pty closed for ``unplug_gap_s`` every ``fault_period_s`` and
    re-created behind the same ``link``).
    """

    def __init__(
        self,
        protocol: str,
        *,
        port: str | None = None,
        link: str | None = None,
        faults: frozenset[str] = frozenset(),
        rate_hz: float = 1.0,
        seed: int | None = None,
        baud: int = 9600,
        fault_period_s: float = 10.0,
        fault_probability: float = 0.25,
        silence_s: float = 3.0,
        unplug_gap_s: float = 1.0,
        json_output: bool = False,
    ) -> None:
        if protocol not in GENERATORS:
            raise ValueError(
                f"no simulator for {protocol!r}; known: {', '.join(sorted(GENERATORS))}"
            )
        if "unplug" in faults and port is not None:
            raise ValueError("the unplug fault needs a pty (no --port)")
        self.protocol = protocol
        gen_cls = GENERATORS[protocol]
        self.generator: Generator = (
            RadarGenerator(seed, json_output=json_output)
            if gen_cls is RadarGenerator
            else gen_cls(seed)
        )
        self.faults = faults
        self.rate_hz = rate_hz
        self.fault_period_s = fault_period_s
        self.fault_probability = fault_probability
        self.silence_s = silence_s
        self.unplug_gap_s = unplug_gap_s
        self.stats = SimStats()
        self.received = bytearray()  # what readers wrote back (bounded, last 4 KiB)
        self._port_url = port
        self._baud = baud
        self._link = link
        self._pty: PtyPort | None = None
        self._serial: Any = None
        self._pending: list[bytes] = []
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    # -- port ---------------------------------------------------------------------

    def open(self) -> str:
        """Create the pty (or open the port) and return the path readers should use."""
        if self._port_url is not None:
            if self._serial is None:
                self._serial = serial.serial_for_url(self._port_url, baudrate=self._baud, timeout=0)
            return self._port_url
        if self._pty is None:
            self._pty = PtyPort(self._link)
        return self._pty.path

    @property
    def path(self) -> str:
        """The path readers should open (after :meth:`open`)."""
        if self._pty is not None:
            return self._pty.path
        return self._port_url or ""

    def _write(self, data: bytes) -> None:
        with self._lock:
            if self._pty is not None:
                self._pty.write(data)
            elif self._serial is not None:
                self._serial.write(data)
        self.stats.bytes += len(data)

    def _drain(self) -> None:
        with self._lock:
            if self._pty is not None:
                data = self._pty.drain()
            elif self._serial is not None:
                data = self._serial.read(self._serial.in_waiting or 0)
            else:
                data = b""
        if data:
            self.received += data
            del self.received[:-4096]

    def unplug(self) -> None:
        """Close the pty now (readers see the device vanish)."""
        with self._lock:
            if self._pty is not None:
                self._pty.unplug()
        self.stats.unplugs += 1

    def replug(self) -> None:
        """Create a new pty behind the same link."""
        with self._lock:
            if self._pty is not None:
                self._pty.plug()

    def close(self) -> None:
        """Close the port for good."""
        with self._lock:
            if self._pty is not None:
                self._pty.close()
            if self._serial is not None:
                self._serial.close()
                self._serial = None

    # -- frames -------------------------------------------------------------------

    def tick(self, now: float | None = None) -> None:
        """Send one tick's frames, applying the per-frame faults."""
        rng = self.generator.rng
        if self.stats.ticks == 0:
            self._send(self.generator.preamble())
        self.stats.ticks += 1
        for frame in self.generator.frames(time.time() if now is None else now):
            if "garbage" in self.faults and rng.random() < self.fault_probability:
                self._send(self.generator.garbage(rng.randint(1, 24)))
                self.stats.garbage_chunks += 1
            if "badsum" in self.faults and rng.random() < self.fault_probability:
                self._send(self.generator.corrupt(frame))
                self.stats.corrupted_frames += 1
            self._send(frame)
            self.stats.good_frames += 1
        if "merge" not in self.faults or len(self._pending) >= rng.randint(2, 4):
            self._flush()
        self._drain()

    def _send(self, data: bytes) -> None:
        if not data:
            return
        if "merge" in self.faults:
            self._pending.append(data)
            return
        if "split" in self.faults and len(data) > 1:
            rng = self.generator.rng
            cuts = sorted(rng.sample(range(1, len(data)), min(len(data) - 1, rng.randint(1, 3))))
            for a, b in zip([0, *cuts], [*cuts, len(data)], strict=True):
                self._write(data[a:b])
                time.sleep(rng.uniform(0.001, 0.01))
            return
        self._write(data)

    def _flush(self) -> None:
        if self._pending:
            self._write(b"".join(self._pending))
            self._pending.clear()

    # -- thread -------------------------------------------------------------------

    def start(self) -> str:
        """Open the port and start sending on a thread; return the reader's path."""
        path = self.open()
        self._thread = threading.Thread(target=self.run, name=f"sim-{self.protocol}", daemon=True)
        self._thread.start()
        return path

    def stop(self, timeout: float = 5.0, close: bool = True) -> None:
        """Stop the thread; close the port too unless ``close`` is false (let readers drain)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
        if close:
            self.close()

    def run(self) -> None:
        """Send until :meth:`stop` (blocks; the CLI calls it directly)."""
        self.open()
        period = 1.0 / self.rate_hz
        timed_faults = bool(self.faults & {"silence", "unplug"})
        # Without timed faults there is no fault deadline: waiting on a deadline that has
        # passed (and is never moved on) would make every wait zero and spin the thread.
        next_fault = time.monotonic() + self.fault_period_s if timed_faults else float("inf")
        next_tick = time.monotonic()
        while not self._stop.is_set():
            now = time.monotonic()
            if now >= next_fault:
                if "unplug" in self.faults:
                    self.unplug()
                    self._stop.wait(self.unplug_gap_s)
                    self.replug()
                if "silence" in self.faults:
                    self.stats.silences += 1
                    self._stop.wait(self.silence_s)
                next_fault = time.monotonic() + self.fault_period_s
                next_tick = time.monotonic()
                continue
            if now >= next_tick:
                self.tick()
                next_tick += period
                if next_tick < now:  # fell behind (a busy machine): do not burst
                    next_tick = now + period
            self._stop.wait(max(0.0, min(next_tick, next_fault) - time.monotonic()))
        self._flush()

    def snapshot(self) -> dict[str, int]:
        """Return the counters as a dict."""
        return asdict(self.stats)
