"""Queue length of a lane, per frame: from a lane polygon (metres) or a chain of zones.

Area mode (needs the speed calibration): vehicles whose anchor is inside the lane
polygon and whose speed is known and below ``stopped_kmh`` are queued. Sorted by their
ground distance from the stop line (the lane's line), the queue is the unbroken run
from the stop line back in which each vehicle is within ``max_spacing_m`` of the one
before (the first within ``max_spacing_m`` of the line). Its length is the distance
from the stop line to where the last vehicle of the run ends: its anchor, or with
``extent = "box"`` the farthest corner of its box on the ground.

Zone-chain mode (no calibration needed), as with queue detectors: a zone is queued
while one vehicle has been inside it (its anchor, or with ``extent = "box"`` any part of
its box, like a loop under a long vehicle) for ``dwell_s`` without a break; the queue reaches
the last zone of the unbroken run of queued zones starting at the first (stop-line)
zone, and its length is the sum of those zones' ``zone_lengths_m``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from gateway.config.flow import QueueConfig
from gateway.vision.analytics.geometry import MAX_TRACKS, evict, to_pixels
from gateway.vision.analytics.polygon import Polygon
from gateway.vision.detections import Detections

F64 = NDArray[np.float64]
ToWorld = Callable[[NDArray[np.floating]], F64]


@dataclass(frozen=True, slots=True)
class QueueState:
    """The queue now: its length in metres (None when not measurable) and vehicles in it."""

    length_m: float | None
    vehicles: int


def _line_distance(points: F64, a: F64, b: F64) -> F64:
    """Distance of ground points ``(N, 2)`` from the infinite line through ``a`` and ``b``."""
    d = b - a
    norm = float(np.hypot(d[0], d[1])) or 1.0
    rel = points - a
    out: F64 = np.abs(d[0] * rel[:, 1] - d[1] * rel[:, 0]) / norm
    return out


class AreaQueue:
    """Queue in metres from a lane polygon and the stop line."""

    def __init__(
        self,
        cfg: QueueConfig,
        stop_line: Sequence[tuple[float, float]],
        frame_size: tuple[int, int],
        to_world: ToWorld,
    ) -> None:
        """``stop_line`` is the lane's line (normalised); ``to_world`` maps pixels to metres."""
        assert cfg.area is not None
        self.cfg = cfg
        self.polygon = Polygon(to_pixels(cfg.area, frame_size))
        self.to_world = to_world
        ends = to_world(to_pixels(stop_line, frame_size))
        self.a, self.b = ends[0], ends[1]

    def measure(self, dets: Detections, speeds: NDArray[np.floating] | None) -> QueueState:
        """The queue in this frame from the lane's vehicles and their speeds (km/h, NaN unknown)."""
        if not len(dets) or speeds is None:
            return QueueState(0.0, 0)
        anchors = dets.anchors()
        inside = self.polygon.contains(anchors)
        if not inside.any():
            return QueueState(0.0, 0)
        known = np.nan_to_num(np.asarray(speeds, dtype=np.float64), nan=np.inf)
        queued = np.flatnonzero(inside & (known < self.cfg.stopped_kmh))
        if not len(queued):
            return QueueState(0.0, 0)
        dist = _line_distance(self.to_world(anchors[queued]), self.a, self.b)
        if self.cfg.extent == "box":
            x1, y1, x2, y2 = (dets.xyxy[queued, k].astype(np.float64) for k in range(4))
            corners = np.stack([x1, y1, x2, y1, x2, y2, x1, y2], axis=1).reshape(-1, 2)
            far = _line_distance(self.to_world(corners), self.a, self.b).reshape(-1, 4).max(axis=1)
        else:
            far = dist
        order = np.argsort(dist)
        reach, length, vehicles = 0.0, 0.0, 0
        for k in order.tolist():
            if dist[k] - reach > self.cfg.max_spacing_m:
                break
            reach = float(dist[k])
            length = max(length, float(far[k]))
            vehicles += 1
        return QueueState(round(length, 2), vehicles)


@dataclass(slots=True)
class _Dwell:
    since: float
    last_ts: float


class ZoneChainQueue:
    """Queue from a chain of zones, each queued after ``dwell_s`` of continuous presence."""

    def __init__(
        self,
        cfg: QueueConfig,
        frame_size: tuple[int, int],
        *,
        forget_s: float,
        max_tracks: int = MAX_TRACKS,
    ) -> None:
        """Set up; a track unseen for ``forget_s`` no longer holds a zone."""
        assert cfg.zones is not None
        self.cfg = cfg
        self.polygons = [Polygon(to_pixels(z, frame_size)) for z in cfg.zones]
        self.forget_s = forget_s
        self.max_tracks = max_tracks
        self._dwell: list[dict[int, _Dwell]] = [{} for _ in self.polygons]

    def held(self) -> int:
        """Per-track entries held over all zones (bounded)."""
        return sum(len(d) for d in self._dwell)

    def measure(self, dets: Detections, timestamp: float) -> QueueState:
        """The queue in this frame."""
        anchors = dets.anchors()
        ids = dets.tracker_id.tolist()
        queued_zones = 0
        run_open = True
        members: set[int] = set()
        for k, polygon in enumerate(self.polygons):
            inside = (
                polygon.overlaps_boxes(dets.xyxy)
                if self.cfg.extent == "box"
                else polygon.contains(anchors)
            )
            dwell = self._dwell[k]
            for i, tid in enumerate(ids):
                if inside[i]:
                    entry = dwell.get(tid)
                    if entry is None:
                        dwell[tid] = _Dwell(timestamp, timestamp)
                    else:
                        entry.last_ts = timestamp
                else:
                    dwell.pop(tid, None)  # seen outside: its dwell ends
            evict(dwell, timestamp, self.forget_s, self.max_tracks)
            queued = any(timestamp - d.since >= self.cfg.dwell_s for d in dwell.values())
            if run_open and queued:
                queued_zones += 1
                members |= set(dwell)
            else:
                run_open = False
        lengths = self.cfg.zone_lengths_m
        length = None if lengths is None else round(float(sum(lengths[:queued_zones])), 2)
        return QueueState(length, len(members))
