"""One reader thread per serial port: open, read, decode, survive.

The port is opened with :func:`serial.serial_for_url`, so device paths, pseudo-terminals
(and symlinks to them), ``socket://`` and ``rfc2217://`` URLs all work. When the adapter
disappears (``SerialException``/``OSError``) the reader closes it and re-opens the same
path with exponential back-off capped by ``reopen_max_s``. Bad data is counted by the
decoder and logged at most once a minute per kind; nothing a sensor sends stops the
thread. Polled protocols (Modbus) run the same loop with a poller instead of a decoder.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
import time
from collections.abc import Callable
from typing import Any

import serial

from gateway.backoff import Backoff
from gateway.config.sensors import SensorConfig
from gateway.health import SensorHealth
from gateway.ratelog import RateLimitedLog
from gateway.sensors.decoder import Decoder
from gateway.sensors.registry import get_protocol, make_decoder
from gateway.sensors.types import Reading

log = logging.getLogger(__name__)

INITIAL_BACKOFF_S = 0.1
READ_TIMEOUT_S = 0.2  # how long one read() blocks; bounds how quickly stop() is noticed
_BAD_COUNTERS = ("bad_checksum", "bad_frames", "overflows")


def open_port(url: str, baud: int, timeout: float = READ_TIMEOUT_S) -> Any:
    """Open ``url`` with pyserial (``serial.SerialException`` or ``OSError`` on failure)."""
    return serial.serial_for_url(url, baudrate=baud, timeout=timeout, write_timeout=1.0)


class SensorReader:
    """Reads one configured sensor on its own thread and hands readings to a callback."""

    def __init__(self, cfg: SensorConfig, on_reading: Callable[[Reading], None]) -> None:
        self.cfg = cfg
        self._on_reading = on_reading
        self._spec = get_protocol(cfg.protocol)
        self._decoder: Decoder | None = None
        self._poller: Any = None
        if self._spec.kind == "stream":
            self._decoder = make_decoder(cfg.protocol, cfg.id, cfg.options)
        else:
            from gateway.serialports.modbus import ModbusPoller

            self._poller = ModbusPoller(cfg)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._write_lock = threading.Lock()  # the reader's and write_now()'s writes
        self._port: Any = None
        self._ratelog = RateLimitedLog(log)
        self._bad_seen: dict[str, int] = dict.fromkeys(_BAD_COUNTERS, 0)
        self.state = "idle"
        self.last_error = ""
        self.opens = 0
        self.reopens = 0
        self.open_failures = 0
        self.silence_timeouts = 0
        self.readings = 0
        self.callback_errors = 0
        self.decoder_errors = 0

    def start(self) -> None:
        """Start the reader thread (once)."""
        if self._thread is not None:
            raise RuntimeError(f"sensor {self.cfg.id} reader already started")
        self._thread = threading.Thread(target=self._run, name=f"sensor-{self.cfg.id}", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        """Ask the thread to stop, wait up to ``timeout`` seconds and close the port."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
        self._close()
        self.state = "stopped"

    @property
    def decoder(self) -> Decoder | None:
        """The stream decoder of this port (``None`` for polled protocols)."""
        return self._decoder

    def write_now(self) -> bool:
        """Write the decoder's pending bytes (requests queued from another thread) now.

        Returns False when the port is not open (the requests stay queued).
        """
        writes = getattr(self._decoder, "pending_writes", None)
        with self._lock:
            port = self._port
        if port is None or not callable(writes):
            return False
        with self._write_lock:
            out = writes()
            if out:
                port.write(out)
        return True

    def health(self) -> SensorHealth:
        """Counters of this port and its decoder (or poller)."""
        inner = self._decoder if self._decoder is not None else self._poller
        stats_fn = getattr(inner, "stats", None)
        counters: dict[str, int | float | str] = dict(stats_fn()) if callable(stats_fn) else {}
        if self._poller is not None:  # a request is its frame, a bad CRC its bad checksum
            counters["frames"] = int(counters.get("requests", 0))
            counters["bad_checksum"] = int(counters.get("bad_crc", 0))

        def take(key: str) -> int:
            return int(counters.pop(key, 0))

        return SensorHealth(
            state=self.state,
            last_error=self.last_error,
            bytes=take("bytes"),
            frames=take("frames"),
            good=take("good"),
            bad_checksum=take("bad_checksum"),
            resyncs=take("resyncs"),
            timeouts=take("timeouts") + self.silence_timeouts,
            reopens=self.reopens,
            opens=self.opens,
            open_failures=self.open_failures,
            readings=self.readings,
            callback_errors=self.callback_errors,
            decoder_errors=self.decoder_errors,
            decoder=counters,
        )

    # -- the thread ---------------------------------------------------------------

    def _run(self) -> None:
        backoff = Backoff(INITIAL_BACKOFF_S, self.cfg.reopen_max_s)
        while not self._stop.is_set():
            self.state = "opening"
            try:
                self._open()
            except Exception as exc:  # pyserial raises SerialException, OSError, ValueError
                self.open_failures += 1
                self._error("open", f"cannot open {self.cfg.port}: {exc}")
                self.state = "waiting"
                self._stop.wait(backoff.next_delay())
                continue
            if self.opens:
                self.reopens += 1
                log.info("sensor %s: port %s re-opened", self.cfg.id, self.cfg.port)
            self.opens += 1
            backoff.reset()
            self.state = "open"
            try:
                if self._poller is not None:
                    self._poll_loop()
                else:
                    self._stream_loop()
            except Exception as exc:  # the adapter went away: close, back off, re-open
                self._error("lost", f"port {self.cfg.port} lost: {exc}")
                self.state = "lost"
            finally:
                self._close()
            self._stop.wait(backoff.next_delay())
        self.state = "stopped"

    def _open(self) -> None:
        if self._poller is not None:
            self._poller.connect()
            return
        port = open_port(self.cfg.port, self.cfg.baud)
        with self._lock:
            self._port = port

    def _close(self) -> None:
        if self._poller is not None:
            self._poller.close()
            return
        with self._lock:
            port, self._port = self._port, None
        if port is not None:
            try:
                port.close()
            except Exception as exc:  # closing a vanished device may fail; it is gone anyway
                log.debug("sensor %s: close failed: %s", self.cfg.id, exc)

    def _stream_loop(self) -> None:
        assert self._decoder is not None
        decoder = self._decoder
        writes = getattr(decoder, "pending_writes", None)
        port = self._port
        last_data = time.monotonic()
        while not self._stop.is_set():
            data = port.read(max(1, port.in_waiting))
            now = time.monotonic()
            if not data:
                if now - last_data >= self.cfg.read_timeout_s:
                    self.silence_timeouts += 1
                    last_data = now
                    self._ratelog.log(
                        "silent", logging.WARNING, "sensor %s: no data on %s for %.1f s",
                        self.cfg.id, self.cfg.port, self.cfg.read_timeout_s,
                    )  # fmt: skip
                continue
            last_data = now
            try:
                readings = decoder.feed(data)
            except Exception as exc:  # a decoder bug must not stop the port
                self.decoder_errors += 1
                self._error("decoder", f"decoder failed on {len(data)} bytes: {exc!r}")
                continue
            for reading in readings:
                self._emit(reading)
            if callable(writes):
                with self._write_lock:
                    out = writes()
                    if out:
                        port.write(out)
            self._check_bad()

    def _poll_loop(self) -> None:
        poller = self._poller
        before = poller.stats()
        while not self._stop.is_set():
            reading = poller.poll()
            if reading is not None:
                self._emit(reading)
            after = poller.stats()
            for key in ("timeouts", "exceptions", "bad_crc"):
                if after.get(key, 0) > before.get(key, 0):
                    self._ratelog.log(
                        key, logging.WARNING, "sensor %s: modbus %s on %s (total %d)",
                        self.cfg.id, key, self.cfg.port, after[key],
                    )  # fmt: skip
            before = after
            self._stop.wait(self.cfg.poll_interval_s)

    def _emit(self, reading: Reading) -> None:
        if reading.sensor_id != self.cfg.id:
            reading = dataclasses.replace(reading, sensor_id=self.cfg.id)
        self.readings += 1
        try:
            self._on_reading(reading)
        except Exception as exc:  # the consumer's problem must not stop the port
            self.callback_errors += 1
            self._error("callback", f"reading callback failed: {exc!r}")

    def _check_bad(self) -> None:
        stats_fn = getattr(self._decoder, "stats", None)
        if not callable(stats_fn):
            return
        stats = stats_fn()
        for key in _BAD_COUNTERS:
            total = int(stats.get(key, 0))
            if total > self._bad_seen[key]:
                self._bad_seen[key] = total
                self._ratelog.log(
                    key, logging.WARNING, "sensor %s (%s on %s): %s, total %d",
                    self.cfg.id, self.cfg.protocol, self.cfg.port, key, total,
                )  # fmt: skip

    def _error(self, kind: str, message: str) -> None:
        self.last_error = message
        self._ratelog.log(kind, logging.WARNING, "sensor %s: %s", self.cfg.id, message)
