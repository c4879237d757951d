"""One camera's analytics: lines, zones, speed and alerts over tracked detections.

:class:`AnalyticsEngine` composes the small tools of this package. Feed it the
tracker's output once per processed frame; it returns the events of that frame and,
when asked, an :class:`Aggregate` per ``aggregate_interval_s``.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from numpy.typing import NDArray

from gateway.config.vision import CameraConfig
from gateway.vision.analytics.alerts import (
    CapacityRule,
    StoppedVehicleRule,
    pedestrian_in_roadway,
    wrong_way,
)
from gateway.vision.analytics.anchors import AnchorEstimator, Anchors
from gateway.vision.analytics.flow import FlowMeter
from gateway.vision.analytics.geometry import diagonal, label_list
from gateway.vision.analytics.interval import IntervalStats
from gateway.vision.analytics.lines import LineCounter
from gateway.vision.analytics.speed import SpeedEstimator
from gateway.vision.analytics.types import Aggregate, AnalyticsEvent, LineCrossing
from gateway.vision.analytics.zones import ZoneTracker
from gateway.vision.detections import Detections

# Extra time per-track line state outlives the tracker's own memory of a track.
LINE_MEMORY_S = 5.0
# Longest time an object may be hidden (behind a bus, say) and still be recognised by a
# line when it re-appears under a new track id (by its motion, see ``LineCounter``).
REID_S = 4.0
# A vehicle moving less than this fraction of the frame diagonal is still.
STOPPED_FRACTION = 0.01

Counts = dict[str, dict[str, dict[str, int]]]


class AnalyticsEngine:
    """Counting lines, zones, speeds, alerts and aggregates for one camera."""

    def __init__(
        self, camera: CameraConfig, labels: Sequence[str], frame_size: tuple[int, int]
    ) -> None:
        """Build the tools for ``camera``; ``frame_size`` is ``(width, height)`` in pixels."""
        self.camera = camera
        self.labels = list(labels)
        self.frame_size = frame_size
        age = camera.tracker.max_age_s
        self._anchors = AnchorEstimator(frame_size, forget_s=age + LINE_MEMORY_S)
        self._lines = [
            LineCounter(
                line, frame_size, labels, switch_s=max(REID_S, age), forget_s=age + LINE_MEMORY_S
            )
            for line in camera.lines
        ]
        self._zones = [
            ZoneTracker(camera.id, z, frame_size, labels, forget_s=age) for z in camera.zones
        ]
        self._speed = (
            None if camera.speed is None else SpeedEstimator(camera.speed, frame_size, forget_s=age)
        )
        stopped_px = STOPPED_FRACTION * diagonal(frame_size)
        self._stopped = {
            z.id: StoppedVehicleRule(camera.id, z, stopped_px=stopped_px, forget_s=age)
            for z in camera.zones
            if z.stopped_vehicle_s is not None
        }
        self._capacity = {z.id: CapacityRule(camera.id, z) for z in camera.zones if z.capacity}
        self._flow = (
            None
            if camera.flow is None
            else FlowMeter(
                camera,
                labels,
                frame_size,
                to_world=None if self._speed is None else self._speed.to_world,
                forget_s=age,
            )
        )
        self._totals: Counts = {line.id: {} for line in camera.lines}
        self._interval = IntervalStats([line.id for line in camera.lines])

    def update(self, tracked: Detections, timestamp: float) -> list[AnalyticsEvent]:
        """Feed the tracker's output for one frame; the crossings, transitions and alerts."""
        tracked = tracked[tracked.tracker_id >= 0]
        self._interval.start_at(timestamp)
        names = label_list(tracked, self.labels)
        speeds = None if self._speed is None else self._speed.update(tracked, timestamp)
        anchors = self._anchors.update(tracked, timestamp) if self._lines else None
        events: list[AnalyticsEvent] = []
        for counter in self._lines:
            events += self._count(counter, tracked, names, speeds, timestamp, anchors=anchors)
        for zone in self._zones:
            transitions = zone.update(tracked, timestamp)
            events += transitions
            events += [
                alert
                for t in transitions
                if (alert := pedestrian_in_roadway(t, zone.zone)) is not None
            ]
            rule = self._stopped.get(zone.zone.id)
            if rule is not None:
                inside = zone.inside_ids()
                events += rule.check(tracked, names, inside, speeds=speeds, timestamp=timestamp)
            capacity = self._capacity.get(zone.zone.id)
            occupancy = zone.occupancy()
            if capacity is not None and (
                alert := capacity.check(sum(occupancy.values()), timestamp)
            ):
                events.append(alert)
        self._interval.occupancy(self.occupancy(), timestamp)
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
    ) -> list[AnalyticsEvent]:
        """Crossings of one line in this frame, counted, plus wrong-way alerts."""
        events: list[AnalyticsEvent] = []
        l2r, r2l = counter.trigger(tracked, timestamp, anchors)
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
                if (alert := wrong_way(crossing, counter.line)) is not None:
                    events.append(alert)
        return events

    def aggregate(self, now: float) -> Aggregate | None:
        """Return an aggregate once ``aggregate_interval_s`` has passed, else None."""
        return self._interval.close(self.camera.id, now, self.camera.aggregate_interval_s)

    def counts(self) -> Counts:
        """Crossings since start: line id -> direction -> label -> count."""
        return {
            line: {d: dict(labels) for d, labels in dirs.items()}
            for line, dirs in self._totals.items()
        }

    def occupancy(self) -> dict[str, dict[str, int]]:
        """Tracks inside each zone now: zone id -> label -> count."""
        return {zone.zone.id: zone.occupancy() for zone in self._zones}
