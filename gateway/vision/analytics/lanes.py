"""One lane's flow measures: volume, headway, spot speed, occupancy, queue, congestion.

A lane's vehicles are the crossings of its line (in its ``direction`` when set, with
the anchor inside its ``area`` when set) by tracks of its classes: the crossings the
engine has already counted, so volumes agree with the line counts.

- Time headway: the time between consecutive vehicles at the line (front-to-front, as
  a point detector sees it), attributed to the interval of the second vehicle.
- Spot speed: the track's speed at the instant it crossed (needs ``[cameras.speed]``):
  the speed estimator's least-squares fit over its window is the speed at the window's
  centre, so the lane reads the track's speed half a window after the crossing (or, if
  the track is gone by then or the interval ends first, the speed at the crossing).
  Mean and 85th percentile (:func:`~gateway.vision.analytics.stats.percentile`).
- Congestion level: ``free``, ``heavy`` or ``congested``, the worse of the level from
  occupancy and the level from the mean speed relative to ``free_flow_kmh``
  (``[cameras.flow.congestion]`` thresholds); unknown when neither is measured.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
from numpy.typing import NDArray

from gateway.config.flow import CongestionConfig, LaneConfig
from gateway.vision.analytics.geometry import class_mask, to_pixels
from gateway.vision.analytics.occupancy import PresenceOccupancy
from gateway.vision.analytics.polygon import Polygon
from gateway.vision.analytics.queues import AreaQueue, QueueState, ToWorld, ZoneChainQueue
from gateway.vision.analytics.stats import Samples, TimeWeighted, percentile
from gateway.vision.analytics.types import Congestion, LaneFlow, LineCrossing
from gateway.vision.detections import Detections

LEVELS: tuple[Congestion, ...] = ("free", "heavy", "congested")
MAX_PENDING = 256  # crossings waiting for their centred speed, per lane


@dataclass(slots=True)
class _PendingSpeed:
    due: float
    fallback: float  # the speed at the crossing
    last_ts: float


@dataclass(frozen=True, slots=True)
class TrackedFrame:
    """One frame as the flow measures see it: tracks, labels, speeds (km/h, NaN unknown)."""

    tracked: Detections
    names: list[str]
    speeds: NDArray[np.floating] | None
    timestamp: float
    rows: dict[int, int]  # track id -> row of ``tracked``
    _masks: dict[tuple[str, ...], NDArray[np.bool_]] = field(default_factory=dict)

    def of_classes(self, classes: Sequence[str]) -> NDArray[np.bool_]:
        """Rows whose label is one of ``classes`` (computed once per frame and class set)."""
        key = tuple(classes)
        mask = self._masks.get(key)
        if mask is None:
            mask = self._masks[key] = class_mask(self.names, classes)
        return mask

    @classmethod
    def of(
        cls,
        tracked: Detections,
        names: list[str],
        speeds: NDArray[np.floating] | None,
        timestamp: float,
    ) -> TrackedFrame:
        """Bundle one frame (and index its rows by track id)."""
        rows = {tid: i for i, tid in enumerate(tracked.tracker_id.tolist())}
        return cls(tracked, names, speeds, timestamp, rows)


def congestion_level(
    occupancy: float | None,
    speed_kmh: float | None,
    free_flow_kmh: float | None,
    cfg: CongestionConfig,
) -> Congestion | None:
    """Return the worse of the occupancy level and the speed level (None when neither is known)."""
    levels: list[int] = []
    if occupancy is not None:
        heavy, congested = cfg.occupancy
        levels.append(2 if occupancy >= congested else 1 if occupancy >= heavy else 0)
    if speed_kmh is not None and free_flow_kmh:
        ratio = speed_kmh / free_flow_kmh
        heavy, congested = cfg.speed_ratio
        levels.append(2 if ratio < congested else 1 if ratio < heavy else 0)
    return LEVELS[max(levels)] if levels else None


class LaneMeter:
    """Accumulates one lane's measures over the current interval."""

    def __init__(
        self,
        camera_id: str,
        lane: LaneConfig,
        line_points: Sequence[tuple[float, float]],
        frame_size: tuple[int, int],
        labels: Sequence[str],
        *,
        congestion: CongestionConfig,
        to_world: ToWorld | None,
        forget_s: float,
        speed_delay_s: float = 0.0,
    ) -> None:
        """Set up; ``line_points`` is the lane line's geometry, ``to_world`` the calibration.

        ``speed_delay_s`` is half the speed estimator's window (see the module docstring).
        """
        self.lane = lane
        self.congestion = congestion
        self.classes = set(lane.classes)
        self.area = None if lane.area is None else Polygon(to_pixels(lane.area, frame_size))
        self.presence = (
            None
            if lane.presence is None
            else PresenceOccupancy(
                camera_id,
                lane.id,
                lane.presence,
                classes=lane.classes,
                frame_size=frame_size,
                labels=labels,
                forget_s=forget_s,
                extent=lane.presence_extent,
            )
        )
        self.queue: AreaQueue | ZoneChainQueue | None = None
        if lane.queue is not None and lane.queue.area is not None and to_world is not None:
            self.queue = AreaQueue(lane.queue, line_points, frame_size, to_world)
        elif lane.queue is not None and lane.queue.zones is not None:
            self.queue = ZoneChainQueue(lane.queue, frame_size, forget_s=forget_s)
        self.volume: dict[str, int] = {}
        self.headways = Samples()
        self.speeds = Samples()
        self.queue_m = TimeWeighted()
        self.queue_n = TimeWeighted()
        self._last_crossing: float | None = None
        self.speed_delay_s = speed_delay_s
        self.forget_s = forget_s
        self._pending: dict[int, _PendingSpeed] = {}

    def __len__(self) -> int:
        """Return the number of crossings waiting for their speed (bounded)."""
        return len(self._pending)

    def update(self, frame: TrackedFrame, crossings: Sequence[LineCrossing]) -> None:
        """Feed one frame and its crossings of any line."""
        tracked, speeds, timestamp = frame.tracked, frame.speeds, frame.timestamp
        for crossing in crossings:
            if self._counts(crossing, tracked, frame.rows):
                self._vehicle(crossing)
        self._resolve(frame)
        mine = frame.of_classes(self.lane.classes)
        if self.presence is not None:
            self.presence.update(tracked, timestamp)
        if self.queue is not None:
            state = QueueState(0.0 if isinstance(self.queue, AreaQueue) else None, 0)
            if mine.any() or isinstance(self.queue, ZoneChainQueue):
                lane_dets = tracked[mine]
                if isinstance(self.queue, AreaQueue):
                    lane_speeds = None if speeds is None else speeds[mine]
                    state = self.queue.measure(lane_dets, lane_speeds)
                else:
                    state = self.queue.measure(lane_dets, timestamp)
            if state.length_m is not None:
                self.queue_m.observe(state.length_m, timestamp)
            self.queue_n.observe(float(state.vehicles), timestamp)

    def _counts(self, crossing: LineCrossing, tracked: Detections, rows: dict[int, int]) -> bool:
        lane = self.lane
        if crossing.line_id != lane.line or crossing.label not in self.classes:
            return False
        if lane.direction is not None and crossing.direction != lane.direction:
            return False
        if self.area is not None:
            row = rows.get(crossing.track_id)
            if row is None:
                return False
            anchor = tracked.anchors()[row : row + 1]
            return bool(self.area.contains(anchor)[0])
        return True

    def _vehicle(self, crossing: LineCrossing) -> None:
        self.volume[crossing.label] = self.volume.get(crossing.label, 0) + 1
        # When the vehicle passed the line (the event itself comes once a sighting past
        # the line confirmed it, a frame or more later).
        at = crossing.timestamp if crossing.crossed_at is None else crossing.crossed_at
        if self._last_crossing is not None and at >= self._last_crossing:
            self.headways.add(at - self._last_crossing)
        self._last_crossing = at
        if crossing.speed_kmh is None:
            return
        if self.speed_delay_s <= 0:
            self.speeds.add(crossing.speed_kmh)
            return
        due = at + self.speed_delay_s
        old = self._pending.pop(crossing.track_id, None)
        if old is not None:
            self.speeds.add(old.fallback)
        self._pending[crossing.track_id] = _PendingSpeed(
            due, crossing.speed_kmh, crossing.timestamp
        )
        if len(self._pending) > MAX_PENDING:
            tid = min(self._pending, key=lambda k: self._pending[k].last_ts)
            self.speeds.add(self._pending.pop(tid).fallback)

    def _resolve(self, frame: TrackedFrame) -> None:
        """Take the speeds of crossings whose track is now half a window past the line."""
        for tid in list(self._pending):
            pending = self._pending[tid]
            row = frame.rows.get(tid)
            speed = None if row is None or frame.speeds is None else float(frame.speeds[row])
            if row is not None:
                pending.last_ts = frame.timestamp
            if speed is not None and not np.isnan(speed) and frame.timestamp >= pending.due:
                self.speeds.add(speed)
                del self._pending[tid]
            elif (
                frame.timestamp - pending.last_ts > self.forget_s
                or frame.timestamp < pending.last_ts
            ):
                self.speeds.add(pending.fallback)  # gone (or the clock went back)
                del self._pending[tid]

    def _flush(self) -> None:
        for pending in self._pending.values():
            self.speeds.add(pending.fallback)
        self._pending.clear()

    def close(self, start: float, end: float) -> LaneFlow:
        """Return the interval's measures and start the next interval."""
        occupancy = None if self.presence is None else self.presence.close(start, end)
        self._flush()
        speed = self.speeds.mean()
        p85 = percentile(self.speeds.values, 85)
        headway = self.headways.mean()
        queue_mean, queue_max = self.queue_m.close(start, end)
        n_mean, n_max = self.queue_n.close(start, end)
        flow = LaneFlow(
            volume=dict(self.volume),
            occupancy=None if occupancy is None else round(occupancy, 4),
            headway_mean_s=None if headway is None else round(headway, 3),
            headway_min_s=round(min(self.headways.values), 3) if self.headways.values else None,
            headways=len(self.headways.values) + self.headways.overflow,
            speed_mean_kmh=None if speed is None else round(speed, 2),
            speed_p85_kmh=None if p85 is None else round(p85, 2),
            speeds=len(self.speeds.values) + self.speeds.overflow,
            queue_max_m=None if queue_max is None else round(queue_max, 2),
            queue_mean_m=None if queue_mean is None else round(queue_mean, 2),
            queue_max_vehicles=None if n_max is None else int(n_max),
            queue_mean_vehicles=None if n_mean is None else round(n_mean, 3),
            congestion=congestion_level(occupancy, speed, self.lane.free_flow_kmh, self.congestion),
        )
        self.volume = {}
        self.headways.clear()
        self.speeds.clear()
        return flow

    def restart(self) -> None:
        """The clock went back: time integrals and the last crossing time are meaningless."""
        self._last_crossing = None
        if self.presence is not None:
            self.presence.reset()
        self.queue_m.reset()
        self.queue_n.reset()
