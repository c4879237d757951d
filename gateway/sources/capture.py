"""Capture in a thread of its own: latest-frame hand-off, reconnects, stall detection.

Decoding runs in :class:`CaptureThread` while the consumer (the camera pipeline)
runs inference, so the two overlap. The hand-off is a ONE-slot buffer:

* live mode (``every_frame=False``): a new frame overwrites an unconsumed one and
  the overwrite is counted as skipped; memory never grows when inference is slower
  than the camera, and the consumer always gets the freshest frame;
* offline mode (``every_frame=True``): the capture waits until the consumer took
  the previous frame, so every frame is delivered in order (``gateway count``).

On an open error, a read error, the end of a live stream or a stall (no frame for
``stall_timeout_s``) the reader is closed and reopened after an exponential
back-off with jitter, capped at ``reconnect_max_s``. A read that blocks is
reported as ``stalled`` by :meth:`CaptureThread.health` while it is still blocked;
network readers also carry an FFmpeg read timeout so the blocked read returns.
"""

from __future__ import annotations

import collections
import contextlib
import logging
import random
import threading
import time
from collections.abc import Callable

from gateway.backoff import Backoff
from gateway.health import CaptureHealth, CaptureState
from gateway.sources.base import FrameReader
from gateway.sources.frame import Frame

log = logging.getLogger(__name__)

FPS_WINDOW = 50  # capture times kept to measure the frame rate (bounded deque)


def rate(times: collections.deque[float]) -> float:
    """Events per second over the timestamps in ``times``."""
    if len(times) < 2:
        return 0.0
    span = times[-1] - times[0]
    return (len(times) - 1) / span if span > 0 else 0.0


class CaptureThread:
    """Reads one camera in a background thread and hands frames over through one slot."""

    def __init__(
        self,
        reader_factory: Callable[[], FrameReader],
        *,
        name: str = "camera",
        live: bool = True,
        every_frame: bool = False,
        media_clock: bool = False,
        stall_timeout_s: float = 10.0,
        reconnect_min_s: float = 0.5,
        reconnect_max_s: float = 60.0,
        seed: int | None = None,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        """Create (not start) the capture.

        Args:
            reader_factory: builds a fresh, unopened reader for each connection.
            name: camera id for logs and the thread name.
            live: the end of the stream means reconnect (cameras); otherwise it ends
                the capture (files).
            every_frame: deliver every frame in order instead of the latest one.
            media_clock: stamp frames ``start + pts`` instead of the wall clock at
                capture (offline processing faster than real time).
            stall_timeout_s: no frame for this long is a stall.
            reconnect_min_s: first reconnect delay.
            reconnect_max_s: longest reconnect delay.
            seed: seed for the back-off jitter (tests).
            wall_clock: the wall clock live frames are stamped with (tests step it).
        """
        self.name = name
        self._factory = reader_factory
        self.live = live
        self.every_frame = every_frame
        self.media_clock = media_clock
        self.stall_timeout_s = stall_timeout_s
        self.reconnect_min_s = reconnect_min_s
        self.reconnect_max_s = reconnect_max_s
        self._wall_clock = wall_clock
        self._backoff_delays = Backoff(reconnect_min_s, reconnect_max_s, rng=random.Random(seed))
        self._cond = threading.Condition()
        self._slot: Frame | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._state: CaptureState = "idle"
        self._captured = 0
        self._skipped = 0
        self._reconnects = 0
        self._stalls = 0
        self._last_error: str | None = None
        self._last_frame_mono: float | None = None
        self._stream_started_mono = 0.0
        self._times: collections.deque[float] = collections.deque(maxlen=FPS_WINDOW)
        self._size: tuple[int, int] | None = None
        self._nominal_fps: float | None = None
        self._t0_wall = time.time()
        self.connections = 0  # successful opens; a change tells the consumer to reset its tracks

    # -- lifecycle ---------------------------------------------------------------------------

    def start(self) -> None:
        """Start capturing (no-op when running)."""
        if self._thread is not None and self._thread.is_alive():
            return
        self._stop.clear()
        self._state = "connecting"
        self._thread = threading.Thread(target=self._run, name=f"capture-{self.name}", daemon=True)
        self._thread.start()

    def stop(self, timeout: float | None = None) -> None:
        """Stop and join the thread (waits up to ``timeout`` for a read blocked in the backend)."""
        self._stop.set()
        with self._cond:
            self._cond.notify_all()
        if self._thread is not None:
            self._thread.join(self.stall_timeout_s + 5.0 if timeout is None else timeout)
            if self._thread.is_alive():
                log.warning(
                    "camera %s: capture thread still blocked in a read after stop", self.name
                )
            self._thread = None
        self._state = "stopped"

    @property
    def running(self) -> bool:
        """Whether the thread is alive."""
        return self._thread is not None and self._thread.is_alive()

    @property
    def finished(self) -> bool:
        """Whether a non-live stream ended (or capture stopped) and its last frame was taken."""
        with self._cond:
            return self._state in ("ended", "stopped") and self._slot is None

    # -- consumer side -----------------------------------------------------------------------

    def get(self, timeout: float | None = None) -> Frame | None:
        """Take the pending frame, waiting up to ``timeout`` s; ``None`` on timeout or end."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._cond:
            while self._slot is None:
                if self._state in ("ended", "stopped") or self._stop.is_set():
                    return None
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    return None
                self._cond.wait(remaining)
            frame, self._slot = self._slot, None
            self._cond.notify_all()
            return frame

    def peek(self) -> Frame | None:
        """Return the pending frame without taking it."""
        with self._cond:
            return self._slot

    def health(self) -> CaptureHealth:
        """Report state and counters; a read blocked past the stall timeout shows ``stalled``."""
        now = time.monotonic()
        with self._cond:
            state = self._state
            age = None if self._last_frame_mono is None else now - self._last_frame_mono
            if state == "streaming":
                since = age if age is not None else now - self._stream_started_mono
                if since > self.stall_timeout_s:
                    state = "stalled"
            return CaptureHealth(
                state=state,
                frames_captured=self._captured,
                frames_skipped=self._skipped,
                reconnects=self._reconnects,
                stalls=self._stalls,
                capture_fps=round(rate(self._times), 2),
                last_frame_age_s=None if age is None else round(age, 3),
                last_error=self._last_error,
                width=None if self._size is None else self._size[0],
                height=None if self._size is None else self._size[1],
                nominal_fps=self._nominal_fps,
            )

    # -- capture side ------------------------------------------------------------------------

    def _set(self, state: CaptureState, error: str | None = None) -> None:
        with self._cond:
            self._state = state
            if error is not None:
                self._last_error = error
            self._cond.notify_all()

    def _push(self, frame: Frame) -> None:
        with self._cond:
            if self.every_frame:
                while self._slot is not None and not self._stop.is_set():
                    self._cond.wait(0.5)
            elif self._slot is not None:
                self._skipped += 1
            self._slot = frame
            self._captured += 1
            now = time.monotonic()
            self._last_frame_mono = now
            self._times.append(now)
            self._size = (frame.width, frame.height)
            self._cond.notify_all()

    def _run(self) -> None:
        attempt = 0
        index = 0
        while not self._stop.is_set():
            self._set("connecting")
            reader: FrameReader | None = None
            try:
                reader = self._factory()
                reader.open()
                self._nominal_fps = reader.nominal_fps
                self.connections += 1
                with self._cond:
                    self._stream_started_mono = time.monotonic()
                    self._last_frame_mono = None
                self._set("streaming")
                got_frame, index, ended = self._stream(reader, index)
            except Exception as exc:  # the backend's error, whatever its type: counted and survived
                self._fail(str(exc) or type(exc).__name__, attempt)
                got_frame, ended = False, not self.live  # a broken file does not heal: give up
            finally:
                if reader is not None:
                    with contextlib.suppress(Exception):  # closing a broken capture may fail too
                        reader.close()
            if ended:
                self._set("ended")
                return
            if self._stop.is_set():
                break
            attempt = 0 if got_frame else attempt + 1
            if got_frame:
                self._backoff_delays.reset()
            self._reconnects += 1
            self._backoff()
        self._set("stopped")

    def _stream(self, reader: FrameReader, index: int) -> tuple[bool, int, bool]:
        """Read until the stream ends or fails; returns (any frame, next index, ended for good)."""
        got = False
        while not self._stop.is_set():
            result = reader.read()
            if result is None:
                if not self.live:
                    return got, index, True
                waited = time.monotonic() - (self._last_frame_mono or self._stream_started_mono)
                if waited >= self.stall_timeout_s:
                    self._stalls += 1
                    self._fail(f"stalled: no frame for {waited:.1f} s", 0)
                else:
                    self._fail("the stream ended", 0)
                return got, index, False
            image, pts = result
            mono = time.monotonic()
            if self.media_clock:  # media time is steady: it is the frame's own clock
                frame = Frame(image, index, self._t0_wall + pts, pts, mono)
            else:  # wall time for the events, monotonic time for every duration
                frame = Frame(image, index, self._wall_clock(), pts, mono, steady_s=mono)
            self._push(frame)
            if not got and self._last_error is not None:
                log.info("camera %s: streaming again", self.name)
            got = True
            index += 1
        return got, index, False

    def _fail(self, message: str, attempt: int) -> None:
        level = logging.WARNING if attempt == 0 or message != self._last_error else logging.DEBUG
        log.log(level, "camera %s: %s", self.name, message)
        self._set("backoff", message)

    def _backoff(self) -> None:
        delay = self._backoff_delays.next_delay()
        self._set("backoff")
        self._stop.wait(delay)
