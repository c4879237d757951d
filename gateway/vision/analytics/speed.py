"""Speed from a ground-plane calibration.

Four image points (normalised, scaled to pixels) and the same four points measured on
the road in metres define a homography (``cv2.getPerspectiveTransform``). Each track's
ground point (the bottom-centre of its box) is mapped to metres; its speed is the slope
of a least-squares line through the positions of the last ``window_s`` seconds, which
smooths box jitter. Speeds are in km/h; unknown (NaN / None) until a track has
``min_samples`` positions spanning at least ``min_span_s``.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

import cv2
import numpy as np
from numpy.typing import NDArray

from gateway.config.vision import SpeedCalibration
from gateway.vision.analytics.geometry import MAX_TRACKS, evict, to_pixels
from gateway.vision.detections import Detections

F64 = NDArray[np.float64]
MS_TO_KMH = 3.6


def homography(calibration: SpeedCalibration, frame_size: tuple[int, int]) -> F64:
    """Compute the 3x3 matrix taking pixel coordinates to ground-plane metres."""
    src = to_pixels(calibration.image_points, frame_size).astype(np.float32)
    dst = np.asarray(calibration.world_points, dtype=np.float32)
    matrix: F64 = cv2.getPerspectiveTransform(src, dst).astype(np.float64)
    return matrix


def apply_homography(matrix: F64, points: NDArray[np.floating]) -> F64:
    """Map ``(N, 2)`` points through a homography (vectorised)."""
    pts = np.asarray(points, dtype=np.float64).reshape(-1, 2)
    homog = np.hstack([pts, np.ones((len(pts), 1))]) @ matrix.T
    out: F64 = homog[:, :2] / homog[:, 2:3]
    return out


@dataclass(slots=True)
class _History:
    """Recent ground positions of one track: ``(t, x_m, y_m)``."""

    last_ts: float
    samples: deque[tuple[float, float, float]] = field(default_factory=lambda: deque(maxlen=64))
    speed_kmh: float | None = None


class SpeedEstimator:
    """Per-track ground speed from a calibrated camera."""

    def __init__(
        self,
        calibration: SpeedCalibration,
        frame_size: tuple[int, int],
        *,
        window_s: float = 1.5,
        min_span_s: float = 0.3,
        min_samples: int = 3,
        forget_s: float = 1.5,
        max_tracks: int = MAX_TRACKS,
    ) -> None:
        """Set up from a calibration; per-track history is bounded in time, length and count."""
        self.matrix = homography(calibration, frame_size)
        self.window_s = window_s
        self.min_span_s = min_span_s
        self.min_samples = min_samples
        self.forget_s = forget_s
        self.max_tracks = max_tracks
        self._tracks: dict[int, _History] = {}

    def __len__(self) -> int:
        """Return the number of tracks with history held."""
        return len(self._tracks)

    def to_world(self, points: NDArray[np.floating]) -> F64:
        """Pixel points ``(N, 2)`` to ground-plane metres."""
        return apply_homography(self.matrix, points)

    def update(self, detections: Detections, timestamp: float) -> F64:
        """Record tracked positions; return ``(N,)`` speeds in km/h (NaN: unknown)."""
        speeds = np.full(len(detections), np.nan)
        world = self.to_world(detections.anchors())
        for i, tid in enumerate(detections.tracker_id.tolist()):
            if tid < 0:
                continue
            hist = self._tracks.get(tid)
            if hist is None:
                hist = self._tracks[tid] = _History(last_ts=timestamp)
            hist.last_ts = timestamp
            hist.samples.append((timestamp, float(world[i, 0]), float(world[i, 1])))
            while hist.samples and timestamp - hist.samples[0][0] > self.window_s:
                hist.samples.popleft()
            hist.speed_kmh = self._fit(hist)
            if hist.speed_kmh is not None:
                speeds[i] = hist.speed_kmh
        evict(self._tracks, timestamp, self.forget_s, self.max_tracks)
        return speeds

    def speed_of(self, track_id: int) -> float | None:
        """Return the latest speed of a track in km/h, None when unknown."""
        hist = self._tracks.get(track_id)
        return None if hist is None else hist.speed_kmh

    def _fit(self, hist: _History) -> float | None:
        """Least-squares velocity over the window, in km/h."""
        if len(hist.samples) < self.min_samples:
            return None
        s = np.asarray(hist.samples, dtype=np.float64)
        t = s[:, 0] - s[:, 0].mean()
        span = float(t.max() - t.min())
        if span < self.min_span_s - 1e-6:
            return None
        denom = float(np.dot(t, t))
        vx = float(np.dot(t, s[:, 1] - s[:, 1].mean())) / denom
        vy = float(np.dot(t, s[:, 2] - s[:, 2].mean())) / denom
        return float(np.hypot(vx, vy)) * MS_TO_KMH
