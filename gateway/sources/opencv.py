"""OpenCV frame readers: video files, RTSP/HTTP cameras, USB (V4L2) and GStreamer.

Network streams are opened with OpenCV's FFmpeg backend and bounded open/read
timeouts, so a camera that never answers or stops mid-stream makes ``open``
raise or ``read`` return instead of blocking the capture thread forever.
"""

from __future__ import annotations

import logging
import os
import sys
import time
from typing import Any

import cv2
import numpy as np
from numpy.typing import NDArray

from gateway.config.sources import FileSource, GStreamerSource, UrlSource, UsbSource
from gateway.errors import CameraOpenError, SourceError, VideoFileError
from gateway.sources.base import describe

Image = NDArray[np.uint8]
log = logging.getLogger(__name__)


def _fps(cap: Any) -> float | None:
    fps = float(cap.get(cv2.CAP_PROP_FPS) or 0.0)
    return fps if 0.5 < fps < 1000 else None


class _CvReader:
    """Shared open/read/close around one ``cv2.VideoCapture``."""

    what = "camera"

    def __init__(self, timeout_s: float) -> None:
        self.timeout_ms = max(1, round(timeout_s * 1000))
        self._cap: Any = None
        self._fps: float | None = None
        self._count = 0
        self._t0 = 0.0

    def _capture(self) -> Any:  # pragma: no cover - overridden
        raise NotImplementedError

    def _name(self) -> str:  # pragma: no cover - overridden
        raise NotImplementedError

    def open(self) -> None:
        """Open the capture; :class:`SourceError` when OpenCV cannot."""
        self.close()
        cap = self._capture()
        if not cap.isOpened():
            cap.release()
            raise SourceError(f"cannot open {self._name()}: no decodable video stream")
        self._cap = cap
        self._fps = _fps(cap)
        self._count = 0
        self._t0 = time.monotonic()

    def _grab(self) -> Image | None:
        if self._cap is None:
            raise SourceError(f"{self._name()} is not open")
        ok, image = self._cap.read()
        if not ok or image is None or image.size == 0:
            return None
        if image.ndim == 2:
            image = cv2.cvtColor(image, cv2.COLOR_GRAY2BGR)
        self._count += 1
        return np.ascontiguousarray(image, dtype=np.uint8)

    def read(self) -> tuple[Image, float] | None:
        """Return the next frame and its time since the stream opened (monotonic, s)."""
        image = self._grab()
        if image is None:
            return None
        return image, time.monotonic() - self._t0

    def close(self) -> None:
        """Release the capture."""
        if self._cap is not None:
            self._cap.release()
            self._cap = None

    @property
    def nominal_fps(self) -> float | None:
        """Frame rate reported by the backend, when plausible."""
        return self._fps

    @property
    def frame_count(self) -> int | None:
        """Frames in the stream as the container says (files), while open; else ``None``."""
        if self._cap is None:
            return None
        count = int(self._cap.get(cv2.CAP_PROP_FRAME_COUNT) or 0)
        return count if count > 0 else None


class FileReader(_CvReader):
    """A video file (FFmpeg backend), optionally looped and paced at its frame rate."""

    def __init__(self, cfg: FileSource, timeout_s: float = 10.0) -> None:
        super().__init__(timeout_s)
        self.cfg = cfg
        self._pts_offset = 0.0
        self._last_pts = 0.0
        self._start = 0.0

    def _name(self) -> str:
        return describe(self.cfg)

    def _capture(self) -> Any:
        path = self.cfg.path
        if not path.is_file():
            raise VideoFileError(
                self._name(), "no such file", f"{path} does not exist", "check the path"
            )
        return cv2.VideoCapture(str(path), cv2.CAP_FFMPEG)

    def open(self) -> None:
        """Open the file and check that a first frame decodes."""
        try:
            super().open()
        except CameraOpenError:
            raise
        except SourceError as exc:
            raise VideoFileError(
                self._name(), "not a video", "FFmpeg cannot read it as a video",
                "use a video file (MP4, MKV, AVI, ...); a still image is not a video",
            ) from exc  # fmt: skip
        self._pts_offset = 0.0
        self._last_pts = 0.0
        if self._cap.get(cv2.CAP_PROP_FRAME_COUNT) <= 0 and self._fps is None:
            self.close()
            raise VideoFileError(
                self._name(), "not a video", "FFmpeg found no video stream in it",
                "use a video file (MP4, MKV, AVI, ...)",
            )  # fmt: skip
        self._start = time.monotonic()

    def _frame_pts(self) -> float:
        if self._fps:
            return (self._count - 1) / self._fps
        return float(self._cap.get(cv2.CAP_PROP_POS_MSEC)) / 1000.0

    def read(self) -> tuple[Image, float] | None:
        """Return the next frame; rewind at the end when looping; sleep when real-time."""
        image = self._grab()
        if image is None and self.cfg.loop and self._count > 0:
            step = 1.0 / self._fps if self._fps else 0.1
            self._pts_offset = self._last_pts + step
            self._cap.set(cv2.CAP_PROP_POS_FRAMES, 0)
            self._count = 0
            image = self._grab()
        if image is None:
            if self._count == 0:
                raise SourceError(f"{self._name()}: no frame could be decoded")
            return None
        pts = self._pts_offset + self._frame_pts()
        self._last_pts = pts
        if self.cfg.realtime:
            delay = self._start + pts - time.monotonic()
            if delay > 0:
                time.sleep(delay)
        return image, pts


class UrlReader(_CvReader):
    """An RTSP or HTTP (MJPEG) camera through FFmpeg, with open and read timeouts."""

    def __init__(self, cfg: UrlSource, timeout_s: float = 10.0) -> None:
        super().__init__(timeout_s)
        self.cfg = cfg

    def _name(self) -> str:
        return describe(self.cfg)

    def open(self) -> None:
        """Probe the URL for the cause of a failure first, then open it with FFmpeg.

        When the network itself fails (DNS, refused, no route, timeout) the probe's cause
        is final. What the probe reads from the camera's answer (a status, a content
        type, an SDP) only names the cause if FFmpeg cannot open the stream either: a
        camera that answers oddly but streams is not refused.
        """
        from gateway.sources.probe import FINAL_CAUSES, probe_url

        advisory: CameraOpenError | None = None
        try:
            probe_url(self.cfg.url, self.timeout_ms / 1000)
        except CameraOpenError as exc:
            if exc.cause in FINAL_CAUSES:
                raise
            advisory = exc
        try:
            super().open()
        except SourceError as exc:
            if advisory is not None:
                raise advisory from exc
            raise CameraOpenError(
                describe(self.cfg), "no decodable video stream",
                "the camera answers, but FFmpeg could not decode what it sends",
                "check the camera's video codec (H.264/H.265/MJPEG) and stream settings",
            ) from exc  # fmt: skip
        if advisory is not None:
            log.warning("%s opened although its answer looked wrong: %s", self._name(), advisory)

    def _capture(self) -> Any:
        params = [
            cv2.CAP_PROP_OPEN_TIMEOUT_MSEC,
            self.timeout_ms,
            cv2.CAP_PROP_READ_TIMEOUT_MSEC,
            self.timeout_ms,
        ]
        return cv2.VideoCapture(self.cfg.url, cv2.CAP_FFMPEG, params)


class UsbReader(_CvReader):
    """A USB camera through V4L2, at the requested resolution when given."""

    def __init__(self, cfg: UsbSource, timeout_s: float = 10.0) -> None:
        super().__init__(timeout_s)
        self.cfg = cfg

    def _name(self) -> str:
        return describe(self.cfg)

    def _capture(self) -> Any:
        device = f"/dev/video{self.cfg.index}"
        if sys.platform.startswith("linux") and not os.path.exists(device):
            raise CameraOpenError(
                describe(self.cfg), "no such device", f"{device} does not exist",
                "plug the camera in (ls /dev/video*), or use the index of one that is there",
            )  # fmt: skip
        if sys.platform.startswith("linux") and not os.access(device, os.R_OK | os.W_OK):
            raise CameraOpenError(
                describe(self.cfg), "permission denied", f"cannot open {device}",
                "add the service user to the video group (usermod -aG video USER)",
            )  # fmt: skip
        params: list[int] = []
        if self.cfg.width:
            params += [cv2.CAP_PROP_FRAME_WIDTH, self.cfg.width]
        if self.cfg.height:
            params += [cv2.CAP_PROP_FRAME_HEIGHT, self.cfg.height]
        return cv2.VideoCapture(self.cfg.index, cv2.CAP_V4L2, params)


def gstreamer_available() -> bool:
    """Whether this OpenCV build has the GStreamer backend."""
    for line in cv2.getBuildInformation().splitlines():
        if line.strip().startswith("GStreamer:"):
            return "YES" in line
    return False


class GStreamerReader(_CvReader):
    """A GStreamer pipeline ending in ``appsink`` (CSI cameras on Jetson)."""

    def __init__(self, cfg: GStreamerSource, timeout_s: float = 10.0) -> None:
        super().__init__(timeout_s)
        self.cfg = cfg

    def _name(self) -> str:
        return describe(self.cfg)

    def _capture(self) -> Any:
        if not gstreamer_available():
            raise SourceError(
                "this OpenCV build has no GStreamer support (opencv-python-headless from PyPI "
                "does not); install an OpenCV built with GStreamer, e.g. the distribution's "
                "python3-opencv on Jetson, or use a url/usb source"
            )
        return cv2.VideoCapture(self.cfg.pipeline, cv2.CAP_GSTREAMER)
