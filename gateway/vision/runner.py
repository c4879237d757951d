"""Run one camera: a capture thread feeding a processing thread through one slot.

Decoding (:class:`~gateway.sources.capture.CaptureThread`) overlaps with inference
(:class:`~gateway.vision.pipeline.CameraPipeline` in the worker thread here), so
end-to-end throughput approaches the model's. Events go to ``on_events`` from the
worker thread; keep that callback short (hand them to a queue or the outbox).
"""

from __future__ import annotations

import collections
import logging
import math
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TypeVar

from gateway.config.vision import CameraConfig
from gateway.health import CameraHealth
from gateway.sources.base import FrameReader, is_live, make_reader
from gateway.sources.capture import FPS_WINDOW, CaptureThread, rate
from gateway.sources.frame import Frame
from gateway.vision.analytics.engine import Counts
from gateway.vision.analytics.stats import percentile
from gateway.vision.analytics.types import AnalyticsEvent
from gateway.vision.detections import Detections
from gateway.vision.pipeline import CameraPipeline
from gateway.vision.protocols import Detector

log = logging.getLogger(__name__)

LATENCY_WINDOW = 1000  # latencies kept for the percentiles (bounded deque)
# Offline under ``fps_limit``, a frame this much early on the media clock is on time
# (a 10 fps file at fps_limit 5 keeps every second frame, whatever its stamps' rounding).
MEDIA_SLACK_S = 0.002

EventSink = Callable[[list[AnalyticsEvent]], None]
_T = TypeVar("_T")


class MediaPace:
    """Which frames a rate limit keeps, by media time (offline runs at ``fps_limit``).

    A frame is kept when at least ``1 / fps_limit`` of media time passed since the last
    kept one (less :data:`MEDIA_SLACK_S`): a 10 fps file at 5 keeps every second frame.
    """

    def __init__(self, fps_limit: float | None) -> None:
        """Keep every frame when ``fps_limit`` is None."""
        self.interval = 1.0 / fps_limit if fps_limit else 0.0
        self._next = -math.inf

    def keep(self, pts_s: float) -> bool:
        """Whether the frame at ``pts_s`` is processed (and, if so, the next one due)."""
        if not self.interval:
            return True
        if pts_s < self._next - MEDIA_SLACK_S:
            return False
        self._next = pts_s + self.interval
        return True


def _copied(read: Callable[[], _T]) -> _T:
    """``read()`` from another thread than the pipeline's, which may be changing the dicts.

    Copying a dict that another thread grows raises ``RuntimeError``; the next try
    (after the other thread's bytecode slice) almost always succeeds.
    """
    for _ in range(9):
        try:
            return read()
        except RuntimeError:
            time.sleep(0)
    return read()


class CameraRunner:
    """Capture + pipeline for one camera, with health, restart and snapshots."""

    def __init__(
        self,
        camera: CameraConfig,
        detector: Detector,
        on_events: EventSink,
        *,
        labels: Sequence[str] | None = None,
        reader_factory: Callable[[], FrameReader] | None = None,
        every_frame: bool = False,
        media_clock: bool = False,
        nms_iou: float = 0.45,
        reference_dir: Path | None = None,
        on_frame: Callable[[Frame, Detections], None] | None = None,
    ) -> None:
        """Wire the stages (nothing runs until :meth:`start`).

        Args:
            camera: the camera's config.
            detector: a loaded detector (may be shared by several cameras' runners only
                if it is thread-safe; ``gateway run`` gives each camera its own).
            on_events: called from the worker thread with each non-empty list of events.
            labels: class names; the detector's by default.
            reader_factory: builds an unopened reader; by default from ``camera.source``.
            every_frame: deliver every frame in order (offline) instead of the latest.
            media_clock: stamp frames with media time (offline, faster than real time).
            nms_iou: IoU for merging tiles and motion regions.
            reference_dir: where the camera-shift reference views are kept (live gateway).
            on_frame: called from the worker thread with every processed frame and its
                raw detections, before tracking (offline accuracy logs).
        """
        self.camera = camera
        self.on_events = on_events
        self.on_frame = on_frame
        self.every_frame = every_frame
        self.media_clock = media_clock
        self.pipeline = CameraPipeline(
            camera, detector, labels, nms_iou=nms_iou, reference_dir=reference_dir
        )
        timeout = camera.stall_timeout_s
        self._factory = reader_factory or (lambda: make_reader(camera.source, timeout_s=timeout))
        self.capture = self._new_capture()
        self._worker: threading.Thread | None = None
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._latest: tuple[Frame, Detections] | None = None
        self._processed: collections.deque[float] = collections.deque(maxlen=FPS_WINDOW)
        self._latency_event_ms: collections.deque[float] = collections.deque(maxlen=LATENCY_WINDOW)
        self._latency_frame_ms: collections.deque[float] = collections.deque(maxlen=LATENCY_WINDOW)
        self._errors = 0
        self._last_error: str | None = None
        self._connections = 0

    def _new_capture(self) -> CaptureThread:
        return CaptureThread(
            self._factory,
            name=self.camera.id,
            live=is_live(self.camera.source),
            every_frame=self.every_frame,
            media_clock=self.media_clock,
            stall_timeout_s=self.camera.stall_timeout_s,
            reconnect_max_s=self.camera.reconnect_max_s,
        )

    # -- lifecycle ---------------------------------------------------------------------------

    def start(self) -> None:
        """Start capturing and processing."""
        if self._worker is not None and self._worker.is_alive():
            return
        self._stop.clear()
        self.capture.start()
        self._worker = threading.Thread(
            target=self._run, name=f"pipeline-{self.camera.id}", daemon=True
        )
        self._worker.start()

    def stop(self, timeout: float | None = None) -> None:
        """Stop both threads and wait for them."""
        self._stop.set()
        self.capture.stop(timeout)
        if self._worker is not None:
            self._worker.join(30.0 if timeout is None else timeout)
            self._worker = None

    def restart(self) -> None:
        """Reconnect the camera from scratch (tracks reset, counts kept)."""
        self.stop()
        self.capture = self._new_capture()
        self._connections = 0
        self.pipeline.reset()
        self.start()

    def wait(self, timeout: float | None = None) -> bool:
        """Wait until a non-live source has been processed to its end; True when done."""
        if self._worker is None:
            return True
        self._worker.join(timeout)
        return not self._worker.is_alive()

    # -- observation -------------------------------------------------------------------------

    def latest_frame(self) -> Frame | None:
        """Return the most recently processed frame (for snapshots)."""
        with self._lock:
            return None if self._latest is None else self._latest[0]

    def latest(self) -> tuple[Frame, Detections] | None:
        """Return the most recently processed frame and its tracked detections."""
        with self._lock:
            return self._latest

    @property
    def labels(self) -> Sequence[str]:
        """The detector's class names (index = class id)."""
        return self.pipeline.labels

    def counts(self) -> Counts | None:
        """Line crossings so far (line -> direction -> label -> n); ``None`` before analytics."""
        engine = self.pipeline.analytics
        return None if engine is None else _copied(engine.counts)

    def occupancy(self) -> dict[str, dict[str, int]] | None:
        """Tracks inside each zone now (zone -> label -> n); ``None`` before analytics."""
        engine = self.pipeline.analytics
        return None if engine is None else _copied(engine.occupancy)

    def snapshot_jpeg(self, *, draw: bool = True, quality: int = 85) -> bytes | None:
        """JPEG of the latest processed frame, with boxes, lines and zones drawn when ``draw``."""
        from gateway.vision.jpeg import encode_jpeg
        from gateway.vision.overlay import draw_overlay

        latest = self.latest()
        if latest is None:
            return None
        frame, tracked = latest
        image = (
            draw_overlay(frame.image, tracked, self.pipeline.labels, self.camera)
            if draw
            else frame.image
        )
        return encode_jpeg(image, quality)

    def health(self) -> CameraHealth:
        """Capture health, processing rate, pipeline counters and latency percentiles."""
        latency: dict[str, float | None] = {}
        for name, values in (("event", self._latency_event_ms), ("frame", self._latency_frame_ms)):
            snapshot = list(values)
            for q in (50, 99):
                p = percentile(snapshot, q)
                latency[f"{name}_latency_p{q}_ms"] = None if p is None else round(p, 1)
        analytics = self.pipeline.analytics
        return CameraHealth(
            camera=self.camera.id,
            capture=self.capture.health(),
            processed_fps=round(rate(self._processed), 2),
            pipeline=self.pipeline.stats.snapshot(),
            errors=self._errors,
            pipeline_error=self._last_error,
            analytics={} if analytics is None else analytics.health(),
            **latency,
        )

    # -- worker ------------------------------------------------------------------------------

    def _run(self) -> None:
        min_interval = 1.0 / self.camera.fps_limit if self.camera.fps_limit else 0.0
        next_due = 0.0
        pace = MediaPace(self.camera.fps_limit)  # on the media clock: frames skipped
        while not self._stop.is_set():
            # Live: wait first, so that the frame taken next is the freshest one.
            if min_interval and not self.media_clock:
                wait = next_due - time.monotonic()
                if wait > 0 and self._stop.wait(wait):
                    return
            frame = self.capture.get(timeout=0.5)
            if frame is None:
                if self.capture.finished:
                    return
                continue
            if self.capture.connections != self._connections:
                if self._connections > 0:  # reconnected: tracks from before the gap are stale
                    self.pipeline.reset()
                self._connections = self.capture.connections
            if self.media_clock and not pace.keep(frame.pts_s):
                continue  # offline at fps_limit: as a unit that keeps up with that rate
            started = time.monotonic()
            next_due = started + min_interval
            self._process(frame, started)

    def _process(self, frame: Frame, started: float) -> None:
        try:
            events = self.pipeline.process(frame)
        except Exception as exc:  # counted and survived: one bad frame must not stop the camera
            self._errors += 1
            if str(exc) != self._last_error:
                log.exception("camera %s: processing frame %d failed", self.camera.id, frame.index)
            self._last_error = str(exc)
            return
        now = time.monotonic()
        self._processed.append(started)
        self._latency_frame_ms.append((now - frame.mono) * 1000)
        with self._lock:
            self._latest = (frame, self.pipeline.last_tracked)
        if self.on_frame is not None:
            self.on_frame(frame, self.pipeline.last_detections)
        if not events:
            return
        try:
            self.on_events(events)
        except Exception:  # the sink's failure is logged, the camera goes on
            self._errors += 1
            log.exception("camera %s: event sink failed", self.camera.id)
        self._latency_event_ms.append((time.monotonic() - frame.mono) * 1000)
