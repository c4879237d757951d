"""Lane occupancy: the share of time a presence zone holds at least one vehicle.

With ``extent = "anchor"`` (default) the zone is followed with the same
:class:`~gateway.vision.analytics.zones.ZoneTracker` as any zone (a vehicle is inside
while its anchor is; one hidden for a moment stays inside until the tracker forgets
it), so occupancy agrees with the zone events. With ``extent = "box"`` (top-down
cameras, where a box is the vehicle's footprint) a vehicle occupies the zone while its
box overlaps it, like a loop under the vehicle's body; a vehicle not seen in a frame
keeps its last state until it is forgotten. Each frame's state holds until the next.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from gateway.config.flow import Point
from gateway.config.vision import ZoneConfig
from gateway.vision.analytics.geometry import MAX_TRACKS, class_mask, evict, label_list, to_pixels
from gateway.vision.analytics.polygon import Polygon
from gateway.vision.analytics.stats import TimeWeighted
from gateway.vision.analytics.zones import ZoneTracker
from gateway.vision.detections import Detections


@dataclass(slots=True)
class _Over:
    last_ts: float
    over: bool


class PresenceOccupancy:
    """Occupancy of one presence zone over an interval."""

    def __init__(
        self,
        camera_id: str,
        lane_id: str,
        polygon: list[Point],
        *,
        classes: Sequence[str],
        frame_size: tuple[int, int],
        labels: Sequence[str],
        forget_s: float,
        extent: Literal["anchor", "box"] = "anchor",
        max_tracks: int = MAX_TRACKS,
    ) -> None:
        """Follow ``polygon`` for vehicles of ``classes``."""
        zone = ZoneConfig(id=lane_id, points=list(polygon), classes=list(classes))
        self.zone = ZoneTracker(camera_id, zone, frame_size, labels, forget_s=forget_s)
        self.extent = extent
        self.classes = list(classes)
        self.labels = list(labels)
        self.polygon = Polygon(to_pixels(polygon, frame_size))
        self.forget_s = forget_s
        self.max_tracks = max_tracks
        self._over: dict[int, _Over] = {}
        self.occupied = TimeWeighted()

    def held(self) -> int:
        """Per-track entries held (bounded)."""
        return len(self.zone) if self.extent == "anchor" else len(self._over)

    def update(self, tracked: Detections, timestamp: float) -> bool:
        """Feed one frame; whether the zone is occupied now."""
        if self.extent == "anchor":
            self.zone.update(tracked, timestamp)
            occupied = bool(self.zone.inside_ids())
        else:
            mine = tracked[class_mask(label_list(tracked, self.labels), self.classes)]
            over = self.polygon.overlaps_boxes(mine.xyxy)
            for tid, hit in zip(mine.tracker_id.tolist(), over.tolist(), strict=True):
                self._over[tid] = _Over(timestamp, bool(hit))
            evict(self._over, timestamp, self.forget_s, self.max_tracks)
            occupied = any(o.over for o in self._over.values())
        self.occupied.observe(1.0 if occupied else 0.0, timestamp)
        return occupied

    def close(self, start: float, end: float) -> float | None:
        """Share of ``[start, end]`` the zone was occupied (None before any frame)."""
        mean, _ = self.occupied.close(start, end)
        return None if mean is None else min(1.0, max(0.0, mean))

    def reset(self) -> None:
        """Forget the time integral (the clock went back)."""
        self.occupied.reset()
