"""Alert rules: each fires once per track (or zone) and condition, then re-arms by a rule.

:data:`ALERT_RULES` is the registry: alert kind -> the factory that builds its rule for
a camera. A new alert is one module in this package (a class with ``build`` and
``check``, see :mod:`.base`) and one line here; its kind goes into
:data:`~gateway.vision.analytics.types.AlertKind` and the event schema.
"""

from __future__ import annotations

from gateway.vision.analytics.alerts.base import (
    AlertFrame,
    AlertRule,
    ReportsHealth,
    RuleContext,
    RuleFactory,
)
from gateway.vision.analytics.alerts.calibration_drift import CalibrationDrift
from gateway.vision.analytics.alerts.over_capacity import OverCapacity
from gateway.vision.analytics.alerts.pedestrian_in_roadway import PedestrianInRoadway
from gateway.vision.analytics.alerts.stopped_vehicle import StoppedVehicle
from gateway.vision.analytics.alerts.wrong_way import WrongWay
from gateway.vision.analytics.types import AlertKind

ALERT_RULES: dict[AlertKind, RuleFactory] = {
    "wrong_way": WrongWay.build,
    "pedestrian_in_roadway": PedestrianInRoadway.build,
    "stopped_vehicle": StoppedVehicle.build,
    "over_capacity": OverCapacity.build,
    "calibration_drift": CalibrationDrift.build,
}


def build_rules(ctx: RuleContext) -> list[AlertRule]:
    """The rules ``ctx.camera`` needs, in registry order."""
    return [rule for factory in ALERT_RULES.values() if (rule := factory(ctx)) is not None]


__all__ = ["ALERT_RULES", "AlertFrame", "AlertRule", "ReportsHealth", "RuleContext", "build_rules"]
