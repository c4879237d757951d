"""Mapping of analytics results, sensor readings and gateway state onto event drafts.

Each function returns a :class:`~gateway.events.envelope.Draft` whose ``data`` matches
``schema/v1.json`` for its type; optional values that are unknown are left out rather
than sent as ``null``.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from typing import Literal

from gateway.actuation import Actuation
from gateway.events.envelope import GATEWAY_SOURCE, Draft, format_ts
from gateway.jsontypes import JsonObject, JsonValue
from gateway.sensors.types import Reading
from gateway.vision.analytics.types import (
    Aggregate,
    Alert,
    AnalyticsEvent,
    FlowReport,
    LaneFlow,
    LineCrossing,
    ZoneTransition,
)

UNKNOWN_LABEL = "unknown"
_IDENT = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")


def _label(label: str | None) -> str:
    return label or UNKNOWN_LABEL


def _nonneg(value: object) -> float:
    try:
        number = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return 0.0
    return number if math.isfinite(number) and number > 0 else 0.0


def _count(value: object) -> int:
    return int(_nonneg(value))


def _scalars(values: Mapping[str, object]) -> dict[str, float | int | str]:
    """Keep numbers (finite) and strings; booleans become 0/1; anything else becomes text."""
    out: dict[str, float | int | str] = {}
    for key, value in values.items():
        if isinstance(value, bool):
            out[key] = int(value)
        elif isinstance(value, int | str):
            out[key] = value
        elif isinstance(value, float):
            if math.isfinite(value):
                out[key] = value
        else:
            out[key] = str(value)
    return out


def line_crossing(event: LineCrossing) -> Draft:
    """Build a ``line_crossing`` event."""
    data: JsonObject = {
        "camera": event.camera_id,
        "line": event.line_id,
        "track_id": event.track_id,
        "label": _label(event.label),
        "direction": event.direction,
    }
    if event.speed_kmh is not None and math.isfinite(event.speed_kmh):
        data["speed_kmh"] = round(max(event.speed_kmh, 0.0), 2)
    return Draft("line_crossing", event.camera_id, event.timestamp, data)


def zone_transition(event: ZoneTransition) -> Draft:
    """Build a ``zone_enter`` or ``zone_exit`` event (``dwell_s`` on exit)."""
    data: JsonObject = {
        "camera": event.camera_id,
        "zone": event.zone_id,
        "track_id": event.track_id,
        "label": _label(event.label),
    }
    if event.kind == "exit":
        data["dwell_s"] = round(_nonneg(event.dwell_s), 3)
        return Draft("zone_exit", event.camera_id, event.timestamp, data)
    return Draft("zone_enter", event.camera_id, event.timestamp, data)


def alert(event: Alert) -> Draft:
    """Build an ``alert`` event."""
    data: JsonObject = {"camera": event.camera_id, "kind": event.kind}
    if event.zone_id is not None:
        data["zone"] = event.zone_id
    if event.line_id is not None:
        data["line"] = event.line_id
    if event.track_id is not None:
        data["track_id"] = event.track_id
    if event.label is not None:
        data["label"] = _label(event.label)
    data["details"] = _scalars(event.details)
    return Draft("alert", event.camera_id, event.timestamp, data)


def aggregate(event: Aggregate) -> Draft:
    """Build an ``aggregate`` event, stamped with the end of its interval."""
    data: JsonObject = {
        "camera": event.camera_id,
        "start": format_ts(event.start),
        "end": format_ts(event.end),
        "interval_s": round(_nonneg(event.end - event.start), 3),
        "lines": {
            line: {
                direction: {_label(label): _count(n) for label, n in by_label.items()}
                for direction, by_label in by_direction.items()
            }
            for line, by_direction in event.lines.items()
        },
        "zones": {
            zone: {_label(label): round(_nonneg(v), 3) for label, v in by_label.items()}
            for zone, by_label in event.zones.items()
        },
        "mean_speed_kmh": {
            _label(label): round(_nonneg(v), 2) for label, v in event.mean_speed_kmh.items()
        },
    }
    return Draft("aggregate", event.camera_id, event.end, data)


CONGESTION_LEVELS: dict[str, int] = {"free": 0, "heavy": 1, "congested": 2}


def lane_flow(lane: LaneFlow) -> JsonObject:
    """One lane's measures; the ones not measured are left out."""
    out: JsonObject = {
        "volume": {_label(label): _count(n) for label, n in lane.volume.items()},
        "headways": _count(lane.headways),
        "speeds": _count(lane.speeds),
    }
    if lane.occupancy is not None and math.isfinite(lane.occupancy):
        out["occupancy"] = round(min(1.0, _nonneg(lane.occupancy)), 4)
    numbers = {
        "headway_mean_s": lane.headway_mean_s,
        "headway_min_s": lane.headway_min_s,
        "speed_mean_kmh": lane.speed_mean_kmh,
        "speed_p85_kmh": lane.speed_p85_kmh,
        "queue_max_m": lane.queue_max_m,
        "queue_mean_m": lane.queue_mean_m,
        "queue_mean_vehicles": lane.queue_mean_vehicles,
    }
    for key, value in numbers.items():
        if value is not None and math.isfinite(value):
            out[key] = round(_nonneg(value), 3)
    if lane.queue_max_vehicles is not None:
        out["queue_max_vehicles"] = _count(lane.queue_max_vehicles)
    if lane.congestion is not None:
        out["congestion"] = lane.congestion
        out["congestion_level"] = CONGESTION_LEVELS[lane.congestion]
    return out


def flow(event: FlowReport) -> Draft:
    """Build a ``flow`` event, stamped with the end of its interval."""
    data: JsonObject = {
        "camera": event.camera_id,
        "start": format_ts(event.start),
        "end": format_ts(event.end),
        "interval_s": round(_nonneg(event.end - event.start), 3),
        "lanes": {lane: lane_flow(measures) for lane, measures in event.lanes.items()},
        "movements": {
            origin: {
                dest: {_label(label): _count(n) for label, n in by_label.items()}
                for dest, by_label in by_dest.items()
            }
            for origin, by_dest in event.movements.items()
        },
    }
    return Draft("flow", event.camera_id, event.end, data)


def from_analytics(event: AnalyticsEvent) -> Draft:
    """Map any analytics result to a draft."""
    if isinstance(event, LineCrossing):
        return line_crossing(event)
    if isinstance(event, FlowReport):
        return flow(event)
    if isinstance(event, ZoneTransition):
        return zone_transition(event)
    if isinstance(event, Alert):
        return alert(event)
    return aggregate(event)


def sensor_reading(reading: Reading, sensor_id: str | None = None) -> Draft:
    """Build a ``sensor_reading`` event (``sensor_id`` overrides the reading's own id)."""
    sensor = sensor_id or reading.sensor_id
    data: JsonObject = {
        "sensor": sensor,
        "protocol": reading.protocol,
        "values": _scalars(reading.values),
        "extra": _scalars(reading.extra),
    }
    return Draft("sensor_reading", sensor, reading.timestamp, data)


def availability(state: Literal["online", "offline"], timestamp: float, version: str) -> Draft:
    """Build an ``availability`` event (retained on the status topic, outside the outbox)."""
    return Draft("availability", GATEWAY_SOURCE, timestamp, {"state": state, "version": version})


def command_audit(
    *,
    timestamp: float,
    command: str,
    caller: str | None,
    role: str | None,
    ok: bool,
    error: str | None,
    signed_at: float | None,
    nonce: str | None,
    details: Mapping[str, JsonValue],
) -> Draft:
    """Build the ``command`` audit event of a command the unit obeyed."""
    data: JsonObject = {
        "command": command,
        "caller": caller or "unsigned",
        "role": role or "none",
        "ok": ok,
        "signed_at": signed_at,
        "nonce": nonce,
    }
    if error is not None:
        data["error"] = error[:300]
    for key in ("patch_paths", "camera", "model", "trusted"):
        if key in details:
            data[key] = details[key]
    return Draft("command", GATEWAY_SOURCE, timestamp, data)


def actuation(event: Actuation) -> Draft:
    """Build an ``actuation`` event, from the rule's camera (or sensor) when it has one."""
    cause = event.cause
    value: bool | int | float | str = event.value
    if isinstance(value, float) and not math.isfinite(value):
        value = str(value)
    data: JsonObject = {
        "rule": event.rule,
        "action": event.action,
        "action_type": event.action_type,
        "target": event.target[:512],
        "state": event.state,
        "value": value,
        "outcome": event.outcome,
        "reason": cause.reason[:64],
        "trigger": cause.trigger[:64],
        "trigger_ts": format_ts(cause.timestamp),
        "details": _scalars(cause.details),
        "latency_ms": round(_nonneg(event.latency_ms), 2),
        "attempts": max(event.attempts, 1),
        "late": event.late,
    }
    if event.error is not None:
        data["error"] = event.error[:200]
    source = cause.source if _IDENT.match(cause.source) else GATEWAY_SOURCE
    return Draft("actuation", source, event.timestamp, data)
