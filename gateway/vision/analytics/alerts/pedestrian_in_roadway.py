"""``pedestrian_in_roadway``: a person's enter into a ``roadway`` zone is confirmed.

Re-arms when that person exits the zone.
"""

from __future__ import annotations

from gateway.config.vision import ZoneConfig
from gateway.vision.analytics.alerts.base import AlertFrame, RuleContext
from gateway.vision.analytics.types import Alert, ZoneTransition


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


class PedestrianInRoadway:
    """The rule over every ``roadway`` zone of a camera."""

    def __init__(self, zones: dict[str, ZoneConfig]) -> None:
        self.zones = zones

    @classmethod
    def build(cls, ctx: RuleContext) -> PedestrianInRoadway | None:
        """A rule when the camera has a roadway zone."""
        zones = {zone.id: zone for zone in ctx.camera.zones if zone.roadway}
        return cls(zones) if zones else None

    def check(self, frame: AlertFrame) -> list[Alert]:
        """One alert per confirmed enter of a person into a roadway zone."""
        return [
            alert
            for transition in frame.transitions
            if (zone := self.zones.get(transition.zone_id)) is not None
            and (alert := pedestrian_in_roadway(transition, zone)) is not None
        ]
