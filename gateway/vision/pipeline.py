"""One camera's per-frame work: motion gate -> detect (tiled or not) -> track -> analytics.

:class:`CameraPipeline` is the same code whether frames come live from a camera
(:class:`gateway.vision.runner.CameraRunner`) or, every one of them in order, from
a file (``gateway count``, ``gateway bench pipeline``).
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from gateway.config.vision import CameraConfig
from gateway.health import PipelineHealth
from gateway.sources.frame import Frame
from gateway.vision.analytics.engine import AnalyticsEngine
from gateway.vision.analytics.types import Aggregate, AnalyticsEvent, FlowReport
from gateway.vision.detections import Detections
from gateway.vision.motion import MotionDetector, MotionResult, merge_regions
from gateway.vision.nms import nms
from gateway.vision.protocols import Detector
from gateway.vision.tiling import Tiler, detect_crops
from gateway.vision.tracker import make_tracker

REGIONS_FULL_FRAME_SHARE = (
    0.5  # regions covering more of the frame than this: infer the whole frame
)


@dataclass(slots=True)
class PipelineStats:
    """Counters of one camera pipeline (bounded: plain integers and sums)."""

    frames: int = 0
    inferred_full: int = 0
    inferred_regions: int = 0
    skipped_motion: int = 0
    detector_calls: int = 0
    inference_ms_total: float = 0.0
    detect_ms_total: float = 0.0
    detections: int = 0
    events: int = 0

    def snapshot(self) -> PipelineHealth:
        """Counters plus averages, for health reports and JSON output."""
        inferred = self.inferred_full + self.inferred_regions
        return PipelineHealth(
            frames=self.frames,
            inferred_full=self.inferred_full,
            inferred_regions=self.inferred_regions,
            skipped_motion=self.skipped_motion,
            detector_calls=self.detector_calls,
            inference_ms_avg=round(self.inference_ms_total / self.detector_calls, 2)
            if self.detector_calls
            else 0.0,
            detect_ms_avg=round(self.detect_ms_total / inferred, 2) if inferred else 0.0,
            detections=self.detections,
            events=self.events,
        )


def at_wall_time(event: AnalyticsEvent, offset_s: float) -> AnalyticsEvent:
    """``event`` with its steady-clock times moved by ``offset_s`` onto the wall clock."""
    if isinstance(event, Aggregate | FlowReport):
        return dataclasses.replace(event, start=event.start + offset_s, end=event.end + offset_s)
    return dataclasses.replace(event, timestamp=event.timestamp + offset_s)


class CameraPipeline:
    """Motion gate, detection, tracking and analytics for one camera."""

    def __init__(
        self,
        camera: CameraConfig,
        detector: Detector,
        labels: Sequence[str] | None = None,
        *,
        nms_iou: float = 0.45,
        reference_dir: Path | None = None,
    ) -> None:
        """Build the stages for ``camera``; ``labels`` default to the detector's.

        With ``reference_dir`` (the live gateway's ``<data_dir>/reference``) and
        ``[cameras.drift] enabled``, the view is checked for camera shifts.
        """
        self.camera = camera
        self.detector = detector
        self.labels = list(labels if labels is not None else detector.labels)
        self.nms_iou = nms_iou
        self.motion = MotionDetector(camera.motion) if camera.motion.enabled else None
        self.tiler = Tiler(camera.tiling, detector.input_size, nms_iou)
        self.tracker = make_tracker(camera.tracker)
        self.stats = PipelineStats()
        self.last_motion: MotionResult | None = None
        self.last_detections = Detections.empty()  # raw, before tracking (reused on still frames)
        self.last_tracked = Detections.empty()
        self._analytics: AnalyticsEngine | None = None
        self._frame_size: tuple[int, int] | None = None
        self.reference_dir = reference_dir

    @property
    def analytics(self) -> AnalyticsEngine | None:
        """The analytics engine, created on the first frame (it needs the frame size)."""
        return self._analytics

    def reset(self) -> None:
        """Forget tracks and background (after a reconnect); counts are kept."""
        self.tracker.reset()
        if self.motion is not None:
            self.motion.reset()
        self.last_detections = Detections.empty()
        self.last_tracked = Detections.empty()

    def process(self, frame: Frame) -> list[AnalyticsEvent]:
        """Run every stage on ``frame`` and return the analytics events it caused."""
        engine = self._engine((frame.width, frame.height))
        raw = self.detect(frame.image)
        # Tracker and analytics run on the steady clock (durations never jump when the
        # wall clock is stepped); their events are stamped back in wall time.
        now = frame.steady
        tracked = self.tracker.update(raw, now)
        self.last_tracked = tracked
        events = list(engine.update(tracked, now, frame.image, births=self.tracker.births))
        aggregate = engine.aggregate(now)
        if aggregate is not None:
            events.append(aggregate)
        to_wall = frame.timestamp - now
        if to_wall:
            events = [at_wall_time(event, to_wall) for event in events]
        self.stats.frames += 1
        self.stats.events += len(events)
        return events

    def detect(self, image: NDArray[np.uint8]) -> Detections:
        """Detect on one frame, with motion gating and tiling as configured."""
        h, w = image.shape[:2]
        if self.motion is None:
            return self._record(self._full(image), full=True)
        result = self.motion.detect(image)
        self.last_motion = result
        if result.keyframe:
            return self._record(self._full(image), full=True)
        if not result.moving:
            # Nothing moved: the objects are where they were; the tracker sees them again.
            self.stats.skipped_motion += 1
            return self.last_detections
        if self.camera.motion.mode == "skip":
            return self._record(self._full(image), full=True)
        ih, iw = self.detector.input_size
        crops = merge_regions(result.boxes, (w, h), (iw, ih))
        covered = sum((x2 - x1) * (y2 - y1) for x1, y1, x2, y2 in crops)
        if covered > REGIONS_FULL_FRAME_SHARE * w * h:
            return self._record(self._full(image), full=True)
        t0 = time.perf_counter()
        parts = detect_crops(image, crops, self._timed_detect)
        parts.append(_outside(self.last_detections, crops))  # still objects away from the motion
        merged = nms(Detections.concat(parts), self.nms_iou, class_aware=True)
        self.stats.detect_ms_total += (time.perf_counter() - t0) * 1000
        return self._record(merged, full=False)

    def _full(self, image: NDArray[np.uint8]) -> Detections:
        t0 = time.perf_counter()
        dets = self.tiler.detect(image, self._timed_detect)
        self.stats.detect_ms_total += (time.perf_counter() - t0) * 1000
        return dets

    def _timed_detect(self, image: NDArray[np.uint8]) -> Detections:
        dets = self.detector.detect(image)
        self.stats.detector_calls += 1
        self.stats.inference_ms_total += float(self.detector.last_inference_ms)
        return dets

    def _record(self, dets: Detections, *, full: bool) -> Detections:
        if full:
            self.stats.inferred_full += 1
        else:
            self.stats.inferred_regions += 1
        self.stats.detections += len(dets)
        self.last_detections = dets
        return dets

    def _engine(self, size: tuple[int, int]) -> AnalyticsEngine:
        if self._analytics is None or size != self._frame_size:
            if self._analytics is not None:
                self.reset()  # a new resolution: old tracks and background are meaningless
            self._analytics = AnalyticsEngine(
                self.camera, self.labels, size, reference_dir=self.reference_dir
            )
            self._frame_size = size
        return self._analytics


def _outside(dets: Detections, crops: list[tuple[int, int, int, int]]) -> Detections:
    """Keep the detections whose bottom-centre lies outside every crop."""
    if not len(dets) or not crops:
        return dets
    anchors = dets.anchors()
    inside = np.zeros(len(dets), dtype=bool)
    for x1, y1, x2, y2 in crops:
        inside |= (
            (anchors[:, 0] >= x1)
            & (anchors[:, 0] < x2)
            & (anchors[:, 1] >= y1)
            & (anchors[:, 1] <= y2)
        )
    return dets[~inside]
