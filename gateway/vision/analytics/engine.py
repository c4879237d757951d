"""One camera's analytics: lines, zones, speed and alerts over tracked detections.

:class:`AnalyticsEngine` composes the small tools of this package. Feed it the
tracker's output once per processed frame; it returns the events of that frame and,
when asked, an :class:`Aggregate` per ``aggregate_interval_s``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from gateway.config.vision import CameraConfig
from gateway.vision.analytics.alerts import AlertFrame, ReportsHealth, RuleContext, build_rules
from gateway.vision.analytics.anchors import AnchorEstimator, Anchors
from gateway.vision.analytics.flow import FlowMeter
from gateway.vision.analytics.geometry import label_list
from gateway.vision.analytics.interval import IntervalStats
from gateway.vision.analytics.lines import LineCounter
from gateway.vision.analytics.speed import SpeedEstimator
from gateway.vision.analytics.types import (
    Aggregate,
    AnalyticsEvent,
    LineCrossing,
    ZoneTransition,
)
from gateway.vision.analytics.zones import ZoneTracker
from gateway.vision.detections import Detections

# Extra time per-track line state outlives the tracker's own memory of a track.
LINE_MEMORY_S = 5.0
# Longest time an object may be hidden (behind a bus, say) and still be recognised by a
# line when it re-appears under a new track id (by its motion, see ``LineCounter``). On
# the demo road a bicycle overtaken by a truck stays hidden for 4.9 s while it crosses.
REID_S = 6.0

Counts = dict[str, dict[str, dict[str, int]]]


class AnalyticsEngine:
    """Counting lines, zones, speeds, alerts and aggregates for one camera."""

    def __init__(
        self,
        camera: CameraConfig,
        labels: Sequence[str],
        frame_size: tuple[int, int],
        *,
        reference_dir: Path | None = None,
    ) -> None:
        """Build the tools for ``camera``; ``frame_size`` is ``(width, height)`` in pixels.

        ``reference_dir`` (live gateway only) lets image rules keep reference views.
        """
        self.camera = camera
        self.labels = list(labels)
        self.frame_size = frame_size
        age = camera.tracker.max_age_s
        self._anchors = AnchorEstimator(frame_size, forget_s=age + LINE_MEMORY_S)
        self._lines = [
            LineCounter(
                line,
                frame_size,
                labels,
                switch_s=max(1.0, age),
                reid_s=REID_S,
                forget_s=age + LINE_MEMORY_S,
            )
            for line in camera.lines
        ]
        self._zones = [
            ZoneTracker(camera.id, z, frame_size, labels, forget_s=age) for z in camera.zones
        ]
        self._speed = (
            None if camera.speed is None else SpeedEstimator(camera.speed, frame_size, forget_s=age)
        )
        self._rules = build_rules(
            RuleContext(camera, frame_size, forget_s=age, reference_dir=reference_dir)
        )
        self._flow = (
            None
            if camera.flow is None
            else FlowMeter(
                camera,
                labels,
                frame_size,
                to_world=None if self._speed is None else self._speed.to_world,
                forget_s=age,
                speed_window_s=0.0 if self._speed is None else self._speed.window_s,
            )
        )
        self._totals: Counts = {line.id: {} for line in camera.lines}
        self._interval = IntervalStats([line.id for line in camera.lines])

    def update(
        self,
        tracked: Detections,
        timestamp: float,
        image: NDArray[np.uint8] | None = None,
        births: Mapping[int, tuple[tuple[float, float, float, float], float]] | None = None,
    ) -> list[AnalyticsEvent]:
        """Feed the tracker's output for one frame; the crossings, transitions and alerts.

        ``image`` (the frame's pixels) is for image rules such as ``calibration_drift``;
        ``births`` (the tracker's) where the tracks it confirmed now were first detected.
        """
        tracked = tracked[tracked.tracker_id >= 0]
        self._interval.start_at(timestamp)
        names = label_list(tracked, self.labels)
        speeds = None if self._speed is None else self._speed.update(tracked, timestamp)
        anchors = self._anchors.update(tracked, timestamp) if self._lines else None
        crossings: list[LineCrossing] = []
        for counter in self._lines:
            crossings += self._count(
                counter, tracked, names, speeds, timestamp, anchors=anchors, births=births
            )
        transitions: list[ZoneTransition] = []
        for zone in self._zones:
            transitions += zone.update(tracked, timestamp)
        events: list[AnalyticsEvent] = [*crossings, *transitions]
        occupancy = self.occupancy()
        if self._rules:
            frame = AlertFrame(
                timestamp=timestamp,
                tracked=tracked,
                names=names,
                speeds=speeds,
                crossings=crossings,
                transitions=transitions,
                inside={zone.zone.id: zone.inside_ids() for zone in self._zones},
                occupancy=occupancy,
                image=image,
            )
            for rule in self._rules:
                events += rule.check(frame)
        self._interval.occupancy(occupancy, timestamp)
        if self._flow is not None:
            report = self._flow.update(tracked, names, events, speeds, timestamp)
            if report is not None:
                events.append(report)
        return events

    def _count(
        self,
        counter: LineCounter,
        tracked: Detections,
        names: list[str],
        speeds: NDArray[np.float64] | None,
        timestamp: float,
        *,
        anchors: Anchors | None,
        births: Mapping[int, tuple[tuple[float, float, float, float], float]] | None,
    ) -> list[LineCrossing]:
        """Crossings of one line in this frame, counted."""
        events: list[LineCrossing] = []
        l2r, r2l = counter.trigger(tracked, timestamp, anchors, births=births)
        for mask, direction in ((l2r, "left_to_right"), (r2l, "right_to_left")):
            for i in np.flatnonzero(mask):
                speed = (
                    None if speeds is None or np.isnan(speeds[i]) else round(float(speeds[i]), 1)
                )
                crossing = LineCrossing(
                    camera_id=self.camera.id,
                    line_id=counter.line.id,
                    track_id=int(tracked.tracker_id[i]),
                    label=names[i],
                    direction=direction,
                    timestamp=timestamp,
                    speed_kmh=speed,
                    crossed_at=float(counter.crossed_at[i]),
                )
                per_label = self._totals[counter.line.id].setdefault(direction, {})
                per_label[names[i]] = per_label.get(names[i], 0) + 1
                self._interval.crossing(crossing)
                events.append(crossing)
        return events

    def aggregate(self, now: float) -> Aggregate | None:
        """Return an aggregate once ``aggregate_interval_s`` has passed, else None."""
        return self._interval.close(self.camera.id, now, self.camera.aggregate_interval_s)

    def health(self) -> dict[str, float | int]:
        """Counters of the rules that report any (e.g. camera-shift checks)."""
        out: dict[str, float | int] = {}
        for rule in self._rules:
            if isinstance(rule, ReportsHealth):
                out.update(rule.health())
        return out

    def counts(self) -> Counts:
        """Crossings since start: line id -> direction -> label -> count."""
        return {
            line: {d: dict(labels) for d, labels in dirs.items()}
            for line, dirs in self._totals.items()
        }

    def occupancy(self) -> dict[str, dict[str, int]]:
        """Tracks inside each zone now: zone id -> label -> count."""
        return {zone.zone.id: zone.occupancy() for zone in self._zones}
