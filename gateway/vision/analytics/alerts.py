"""Alert rules: each fires once per track (or zone) and condition, then re-arms by a rule.

- ``wrong_way``: a track crosses a ``one_way`` line against its direction. Never again
  for that track and line (a track's crossing of a line is counted once).
- ``pedestrian_in_roadway``: a person's enter into a ``roadway`` zone is confirmed.
  Re-arms when that person exits the zone.
- ``stopped_vehicle``: a vehicle (car, bus, truck, motorcycle) stays still inside a zone
  for ``stopped_vehicle_s``. Re-arms when it moves again or leaves the zone.
- ``over_capacity``: a zone's occupancy rises above ``capacity``. Re-arms when the
  occupancy is back at or below ``capacity``.

"Still" means the smoothed ground point (an exponential average, so box jitter is not
motion) stayed within ``stopped_px`` pixels of where the stop began or, with a speed
calibration and a known speed, stayed below ``stopped_kmh``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from gateway.config.vision import VEHICLE_CLASSES, LineConfig, ZoneConfig
from gateway.vision.analytics.geometry import MAX_TRACKS, evict
from gateway.vision.analytics.types import Alert, LineCrossing, ZoneTransition
from gateway.vision.detections import Detections

STOPPED_KMH = 3.0
# Weight of the newest anchor in the smoothed position of a possibly stopped vehicle.
SMOOTHING = 0.3


def wrong_way(crossing: LineCrossing, line: LineConfig) -> Alert | None:
    """Return an alert when ``crossing`` goes against the line's ``one_way`` direction."""
    if line.one_way is None or crossing.direction == line.one_way:
        return None
    return Alert(
        camera_id=crossing.camera_id,
        kind="wrong_way",
        timestamp=crossing.timestamp,
        line_id=line.id,
        track_id=crossing.track_id,
        label=crossing.label,
        details={"direction": crossing.direction, "allowed": line.one_way},
    )


def pedestrian_in_roadway(transition: ZoneTransition, zone: ZoneConfig) -> Alert | None:
    """Return an alert when a person's enter into a roadway zone is confirmed."""
    if not zone.roadway or transition.kind != "enter" or transition.label != "person":
        return None
    return Alert(
        camera_id=transition.camera_id,
        kind="pedestrian_in_roadway",
        timestamp=transition.timestamp,
        zone_id=zone.id,
        track_id=transition.track_id,
        label=transition.label,
    )


class CapacityRule:
    """``over_capacity`` for one zone, armed again once occupancy falls back."""

    def __init__(self, camera_id: str, zone: ZoneConfig) -> None:
        self.camera_id = camera_id
        self.zone = zone
        self.armed = True

    def check(self, occupancy: int, timestamp: float) -> Alert | None:
        """Feed the zone's current total occupancy."""
        capacity = self.zone.capacity
        if capacity is None or occupancy <= capacity:
            self.armed = True
            return None
        if not self.armed:
            return None
        self.armed = False
        return Alert(
            camera_id=self.camera_id,
            kind="over_capacity",
            timestamp=timestamp,
            zone_id=self.zone.id,
            details={"occupancy": occupancy, "capacity": capacity},
        )


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
