"""``stopped_vehicle``: a vehicle (car, bus, truck, motorcycle) stays still inside a zone.

It fires after ``stopped_vehicle_s`` and re-arms when the vehicle moves again or leaves
the zone. "Still" means the smoothed ground point (an exponential average, so box jitter
is not motion) stayed within ``stopped_px`` pixels of where the stop began or, with a
speed calibration and a known speed, stayed below ``stopped_kmh``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from gateway.config.vision import VEHICLE_CLASSES, ZoneConfig
from gateway.vision.analytics.alerts.base import AlertFrame, RuleContext
from gateway.vision.analytics.geometry import MAX_TRACKS, diagonal, evict
from gateway.vision.analytics.types import Alert
from gateway.vision.detections import Detections

STOPPED_KMH = 3.0
# A vehicle moving less than this fraction of the frame diagonal is still.
STOPPED_FRACTION = 0.01
# Weight of the newest anchor in the smoothed position of a possibly stopped vehicle.
SMOOTHING = 0.3


@dataclass(slots=True)
class _Stop:
    """Where and since when a vehicle has been still."""

    x: float  # where the stop began (smoothed anchor)
    y: float
    since: float
    last_ts: float
    sx: float  # smoothed anchor now
    sy: float
    alerted: bool = False


class StoppedVehicleRule:
    """``stopped_vehicle`` for one zone with ``stopped_vehicle_s`` set."""

    def __init__(
        self,
        camera_id: str,
        zone: ZoneConfig,
        *,
        stopped_px: float,
        stopped_kmh: float = STOPPED_KMH,
        forget_s: float = 1.5,
        max_tracks: int = MAX_TRACKS,
    ) -> None:
        """Set up; state exists only for vehicles inside the zone, capped at ``max_tracks``."""
        self.camera_id = camera_id
        self.zone = zone
        self.stopped_px = stopped_px
        self.stopped_kmh = stopped_kmh
        self.forget_s = forget_s
        self.max_tracks = max_tracks
        self._stops: dict[int, _Stop] = {}

    def __len__(self) -> int:
        """Return the number of vehicles with state held."""
        return len(self._stops)

    def check(
        self,
        detections: Detections,
        labels: list[str],
        inside: set[int],
        *,
        speeds: NDArray[np.floating] | None,
        timestamp: float,
    ) -> list[Alert]:
        """Feed one frame of tracked detections, their labels and the ids inside the zone."""
        limit = self.zone.stopped_vehicle_s
        alerts: list[Alert] = []
        if limit is None:
            return alerts
        for tid in [t for t in self._stops if t not in inside]:
            del self._stops[tid]  # left the zone: re-armed
        anchors = detections.anchors()
        for i, tid in enumerate(detections.tracker_id.tolist()):
            if tid not in inside or labels[i] not in VEHICLE_CLASSES:
                continue
            x, y = float(anchors[i, 0]), float(anchors[i, 1])
            stop = self._stops.get(tid)
            if stop is None:
                self._stops[tid] = _Stop(x, y, since=timestamp, last_ts=timestamp, sx=x, sy=y)
                continue
            stop.last_ts = timestamp
            # Smooth the anchor: box jitter (a pedestrian passing in front) is not motion.
            stop.sx += SMOOTHING * (x - stop.sx)
            stop.sy += SMOOTHING * (y - stop.sy)
            speed = None if speeds is None or np.isnan(speeds[i]) else float(speeds[i])
            moved = np.hypot(stop.sx - stop.x, stop.sy - stop.y) > self.stopped_px
            if (speed is not None and speed >= self.stopped_kmh) or (speed is None and moved):
                stop.x, stop.y, stop.since, stop.alerted = stop.sx, stop.sy, timestamp, False
                continue
            if not stop.alerted and timestamp - stop.since >= limit:
                stop.alerted = True
                alerts.append(
                    Alert(
                        camera_id=self.camera_id,
                        kind="stopped_vehicle",
                        timestamp=timestamp,
                        zone_id=self.zone.id,
                        track_id=tid,
                        label=labels[i],
                        details={"stopped_s": round(timestamp - stop.since, 1)},
                    )
                )
        evict(self._stops, timestamp, self.forget_s, self.max_tracks)
        return alerts


class StoppedVehicle:
    """The rule over every zone of a camera with ``stopped_vehicle_s`` set."""

    def __init__(self, rules: list[StoppedVehicleRule]) -> None:
        self.rules = rules

    @classmethod
    def build(cls, ctx: RuleContext) -> StoppedVehicle | None:
        """A rule when a zone of the camera has ``stopped_vehicle_s``."""
        stopped_px = STOPPED_FRACTION * diagonal(ctx.frame_size)
        rules = [
            StoppedVehicleRule(ctx.camera.id, z, stopped_px=stopped_px, forget_s=ctx.forget_s)
            for z in ctx.camera.zones
            if z.stopped_vehicle_s is not None
        ]
        return cls(rules) if rules else None

    def check(self, frame: AlertFrame) -> list[Alert]:
        """The alerts of every zone, in zone order."""
        alerts: list[Alert] = []
        for rule in self.rules:
            inside = frame.inside.get(rule.zone.id, set())
            alerts += rule.check(
                frame.tracked, frame.names, inside, speeds=frame.speeds, timestamp=frame.timestamp
            )
        return alerts
