"""The live view: the latest processed frame of a camera as JPEG, encoded only when asked.

Nothing runs while nobody watches: a frame is drawn and encoded on a viewer's request,
in the console's thread, never in the camera's. Each camera has one cached encoding;
a request within ``1 / max_fps`` of the last encoding, or for a frame already encoded,
gets the cached bytes, so any number of viewers cost at most ``max_fps`` encodings a
second per camera. Boxes with class, score and track id are drawn into the image by
the project's overlay; lines and zones are drawn by the page (it edits them).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from gateway.console.unit import ConsoleCamera


@dataclass(frozen=True, slots=True)
class ViewFrame:
    """One encoded frame of the live view."""

    jpeg: bytes
    index: int
    """The camera frame's number (it grows while the camera streams)."""
    timestamp: float
    width: int
    height: int


class _CameraView:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.frame: ViewFrame | None = None
        self.encoded_at = -1e9
        self.runner_id = 0


class LiveViews:
    """Cached, rate-capped JPEG encodings of each camera's latest processed frame."""

    def __init__(
        self,
        *,
        max_fps: float,
        max_width: int,
        quality: int = 75,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.min_interval_s = 1.0 / max_fps
        self.max_width = max_width
        self.quality = quality
        self._clock = clock
        self._views: dict[str, _CameraView] = {}
        self._lock = threading.Lock()
        self.encodes = 0

    def frame(self, camera_id: str, runner: ConsoleCamera) -> ViewFrame | None:
        """The view of ``runner``'s latest frame; ``None`` before its first frame."""
        with self._lock:
            view = self._views.setdefault(camera_id, _CameraView())  # configured cameras only
        with view.lock:  # viewers of one camera share one encoding
            now = self._clock()
            fresh = now - view.encoded_at < self.min_interval_s
            if view.frame is not None and view.runner_id == id(runner) and fresh:
                return view.frame
            latest = runner.latest()
            if latest is None:
                return None
            frame, tracked = latest
            if (
                view.frame is not None
                and view.runner_id == id(runner)
                and view.frame.index == frame.index
            ):
                return view.frame
            from gateway.vision.jpeg import encode_jpeg
            from gateway.vision.overlay import draw_overlay

            image = draw_overlay(frame.image, tracked, runner.labels)
            jpeg = encode_jpeg(image, self.quality, self.max_width)
            self.encodes += 1
            view.frame = ViewFrame(jpeg, frame.index, frame.timestamp, frame.width, frame.height)
            view.encoded_at = now
            view.runner_id = id(runner)
            return view.frame
