"""Lane occupancy: the share of time a presence zone holds at least one vehicle.

The zone is followed with the same :class:`~gateway.vision.analytics.zones.ZoneTracker`
as any zone (a vehicle is inside while its anchor is; one hidden for a moment stays
inside until the tracker forgets it), so occupancy agrees with the zone events. Each
frame's state (occupied or not) holds until the next frame.
"""

from __future__ import annotations

from collections.abc import Sequence

from gateway.config.flow import Point
from gateway.config.vision import ZoneConfig
from gateway.vision.analytics.stats import TimeWeighted
from gateway.vision.analytics.zones import ZoneTracker
from gateway.vision.detections import Detections


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
    ) -> None:
        """Follow ``polygon`` for vehicles of ``classes``."""
        zone = ZoneConfig(id=lane_id, points=list(polygon), classes=list(classes))
        self.zone = ZoneTracker(camera_id, zone, frame_size, labels, forget_s=forget_s)
        self.occupied = TimeWeighted()

    def update(self, tracked: Detections, timestamp: float) -> bool:
        """Feed one frame; whether the zone is occupied now."""
        self.zone.update(tracked, timestamp)
        occupied = bool(self.zone.inside_ids())
        self.occupied.observe(1.0 if occupied else 0.0, timestamp)
        return occupied

    def close(self, start: float, end: float) -> float | None:
        """Share of ``[start, end]`` the zone was occupied (None before any frame)."""
        mean, _ = self.occupied.close(start, end)
        return None if mean is None else min(1.0, max(0.0, mean))

    def reset(self) -> None:
        """Forget the time integral (the clock went back)."""
        self.occupied.reset()
