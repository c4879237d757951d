"""``over_capacity``: a zone's occupancy rises above ``capacity``.

Re-arms when the occupancy is back at or below ``capacity``.
"""

from __future__ import annotations

from gateway.config.vision import ZoneConfig
from gateway.vision.analytics.alerts.base import AlertFrame, RuleContext
from gateway.vision.analytics.types import Alert


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


class OverCapacity:
    """The rule over every zone of a camera with a ``capacity``."""

    def __init__(self, rules: list[CapacityRule]) -> None:
        self.rules = rules

    @classmethod
    def build(cls, ctx: RuleContext) -> OverCapacity | None:
        """A rule when a zone of the camera has a capacity."""
        rules = [CapacityRule(ctx.camera.id, z) for z in ctx.camera.zones if z.capacity]
        return cls(rules) if rules else None

    def check(self, frame: AlertFrame) -> list[Alert]:
        """At most one alert per zone and frame."""
        alerts: list[Alert] = []
        for rule in self.rules:
            total = sum(frame.occupancy.get(rule.zone.id, {}).values())
            if (alert := rule.check(total, frame.timestamp)) is not None:
                alerts.append(alert)
        return alerts
