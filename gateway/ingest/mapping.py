"""Event -> InfluxDB points: the documented mapping (``docs/ingest.md``).

One mapper per event type in the explicit registry :data:`MAPPERS`. Tags are
low-cardinality only (gateway, site, source, line, direction, class, zone, kind,
protocol, sensor, state, rule, outcome): never the event id nor a track id. Every point carries
``seq`` as an integer field so it can be traced to its event, and the point time
of :func:`gateway.ingest.points.point_time_ns`.

Field types are fixed per field so InfluxDB never sees a type conflict: counts
and ``seq`` are integers, every other number is written as a float (JSON ``21``
and ``21.5`` become the same float field). Strings are not stored as fields:
VictoriaMetrics drops them, and a value that is sometimes a string and sometimes
a number would make InfluxDB reject the whole batch.

Each mapper also checks, with exact types, every ``data`` value it reads and
raises :class:`MappingError` (dead-letter reason ``invalid_event``) otherwise, or
:class:`OutOfRangeError` (reason ``out_of_range``) for a number no field can hold
(an integer count above 2^63 - 1, an integer too large for a float).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import Any, Final

from gateway.ingest.mapping_errors import MappingError, OutOfRangeError
from gateway.ingest.points import FieldValue, Point, parse_ts_ms, point_time_ns
from gateway.ingest.receipts import map_manifest

__all__ = ["MAPPERS", "MappingError", "OutOfRangeError", "event_points"]

Mapper = Callable[[dict[str, Any], dict[str, str], int, int], list[Point]]


_MAX_INT64: Final = 2**63 - 1


def _float(value: int | float, where: str) -> float:
    try:
        return float(value)
    except OverflowError:
        digits = len(str(abs(int(value))))
        raise OutOfRangeError(
            f"{where}: an integer of {digits} digits does not fit a float"
        ) from None


def _str(data: Mapping[str, Any], key: str, required: bool = True) -> str:
    value = data.get(key)
    if value is None and not required:
        return ""
    if not isinstance(value, str) or not value:
        raise MappingError(f"data.{key}: expected a non-empty string, got {value!r}")
    return value


def _num(data: Mapping[str, Any], key: str, required: bool = True) -> float | None:
    value = data.get(key)
    if value is None and not required:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise MappingError(f"data.{key}: expected a number, got {value!r}")
    return _float(value, f"data.{key}")


def _count(value: object, where: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise MappingError(f"{where}: expected a count (integer >= 0), got {value!r}")
    if value > _MAX_INT64:
        raise OutOfRangeError(f"{where}: count {value} is larger than 2^63 - 1")
    return value


def _obj(value: object, where: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise MappingError(f"{where}: expected an object")
    return value


def _numeric_fields(values: Mapping[str, Any], prefix: str = "") -> dict[str, FieldValue]:
    """Finite numbers (booleans as 0/1) as float fields; strings and nulls are left out."""
    out: dict[str, FieldValue] = {}
    for key, value in values.items():
        if isinstance(value, bool):
            out[prefix + key] = 1.0 if value else 0.0
        elif isinstance(value, float):
            if math.isfinite(value):
                out[prefix + key] = value
        elif isinstance(value, int):
            out[prefix + key] = _float(value, prefix + key)
    return out


def _point(
    measurement: str, tags: dict[str, str], fields: dict[str, FieldValue], seq: int, time_ns: int
) -> Point:
    fields["seq"] = seq
    return Point(measurement, tags, fields, time_ns)


def map_line_crossing(data: dict[str, Any], tags: dict[str, str], seq: int, t: int) -> list[Point]:
    """``line_crossing``: tags line, direction, class; fields count=1, speed_kmh."""
    tags = {
        **tags,
        "line": _str(data, "line"),
        "direction": _str(data, "direction"),
        "class": _str(data, "label"),
    }
    fields: dict[str, FieldValue] = {"count": 1}
    speed = _num(data, "speed_kmh", required=False)
    if speed is not None:
        fields["speed_kmh"] = speed
    return [_point("line_crossing", tags, fields, seq, t)]


def _map_zone(kind: str) -> Mapper:
    def mapper(data: dict[str, Any], tags: dict[str, str], seq: int, t: int) -> list[Point]:
        ztags = {**tags, "zone": _str(data, "zone"), "class": _str(data, "label"), "kind": kind}
        fields: dict[str, FieldValue] = {"count": 1}
        dwell = _num(data, "dwell_s", required=kind == "exit")
        if dwell is not None:
            fields["dwell_s"] = dwell
        return [_point("zone", ztags, fields, seq, t)]

    mapper.__doc__ = f"``zone_{kind}``: measurement ``zone``, tag kind={kind}."
    return mapper


def map_alert(data: dict[str, Any], tags: dict[str, str], seq: int, t: int) -> list[Point]:
    """``alert``: tags kind, zone, line, class; fields count=1 and numeric details."""
    tags = {
        **tags,
        "kind": _str(data, "kind"),
        "zone": _str(data, "zone", False),
        "line": _str(data, "line", False),
        "class": _str(data, "label", False),
    }
    details = _obj(data.get("details", {}), "data.details")
    fields = {k: v for k, v in _numeric_fields(details).items() if k not in ("count", "seq")}
    fields["count"] = 1
    return [_point("alert", tags, fields, seq, t)]


def map_aggregate(data: dict[str, Any], tags: dict[str, str], seq: int, t: int) -> list[Point]:
    """``aggregate``: ``aggregate`` (total, interval_s) plus one point per line/direction/class.

    Also ``aggregate_occupancy`` per zone/class and ``aggregate_speed`` per class.
    """
    interval = _num(data, "interval_s")
    points: list[Point] = []
    total = 0
    for line, directions in _obj(data.get("lines"), "data.lines").items():
        for direction, classes in _obj(directions, f"data.lines.{line}").items():
            for label, count in _obj(classes, f"data.lines.{line}.{direction}").items():
                n = _count(count, f"data.lines.{line}.{direction}.{label}")
                total += n
                ptags = {**tags, "line": line, "direction": direction, "class": label}
                points.append(
                    _point(
                        "aggregate_count",
                        ptags,
                        {"count": n, "interval_s": interval or 0.0},
                        seq,
                        t,
                    )
                )
    for zone, classes in _obj(data.get("zones"), "data.zones").items():
        for label, value in _numeric_fields(_obj(classes, f"data.zones.{zone}")).items():
            ptags = {**tags, "zone": zone, "class": label}
            points.append(_point("aggregate_occupancy", ptags, {"occupancy": value}, seq, t))
    for label, value in _numeric_fields(
        _obj(data.get("mean_speed_kmh"), "data.mean_speed_kmh")
    ).items():
        points.append(
            _point("aggregate_speed", {**tags, "class": label}, {"mean_speed_kmh": value}, seq, t)
        )
    fields: dict[str, FieldValue] = {"total": total, "interval_s": interval or 0.0}
    if "crossings_withheld" in data:
        fields["crossings_withheld"] = _count(data["crossings_withheld"], "data.crossings_withheld")
    points.append(_point("aggregate", tags, fields, seq, t))
    return points


def map_sensor_reading(data: dict[str, Any], tags: dict[str, str], seq: int, t: int) -> list[Point]:
    """``sensor_reading``: measurement ``sensor``, tags sensor, protocol; numeric values."""
    tags = {**tags, "sensor": _str(data, "sensor"), "protocol": _str(data, "protocol")}
    fields = _numeric_fields(_obj(data.get("values"), "data.values"))
    fields.update(_numeric_fields(_obj(data.get("extra", {}), "data.extra"), prefix="extra_"))
    fields.pop("seq", None)
    if "summary" in data:  # readings summarized under a byte budget: values are means
        summary = _obj(data["summary"], "data.summary")
        fields["summary_count"] = _count(summary.get("count"), "data.summary.count")
        fields.update(_numeric_fields({"interval_s": summary.get("interval_s")}, "summary_"))
        fields.update(_numeric_fields(_obj(summary.get("min"), "data.summary.min"), "min_"))
        fields.update(_numeric_fields(_obj(summary.get("max"), "data.summary.max"), "max_"))
    return [_point("sensor", tags, fields, seq, t)]


_HEALTH_COUNTS: Final = ("mem_used_bytes", "mem_total_bytes", "disk_free_bytes")
_MQTT_COUNTS: Final = (
    "connects",
    "bytes_sent",
    "bytes_received",
    "ip_bytes_sent",
    "ip_bytes_received",
)


def map_health(data: dict[str, Any], tags: dict[str, str], seq: int, t: int) -> list[Point]:
    """``health``: ``gateway_health``, ``camera_health``/``sensor_health``, ``rule_health``."""
    fields = _numeric_fields(_obj(data.get("system"), "data.system"))
    fields.update(_numeric_fields(_obj(data.get("outbox"), "data.outbox"), prefix="outbox_"))
    mqtt = _obj(data.get("mqtt"), "data.mqtt")
    fields.update(
        _numeric_fields(
            {k: mqtt.get(k) for k in _MQTT_COUNTS if k in mqtt},
            prefix="mqtt_",
        )
    )
    fields["mqtt_connected"] = 1.0 if mqtt.get("state") == "connected" else 0.0
    uptime = _num(data, "uptime_s")
    if uptime is not None:
        fields["uptime_s"] = uptime
    fields["dropped_events"] = _count(data.get("dropped_events"), "data.dropped_events")
    if "budget" in data:
        budget = _obj(data["budget"], "data.budget")
        fields.update(_numeric_fields(budget, prefix="budget_"))
    points = [_point("gateway_health", dict(tags), fields, seq, t)]
    for camera, raw in _obj(data.get("cameras"), "data.cameras").items():
        cam = _obj(raw, f"data.cameras.{camera}")
        state = cam.get("state")
        ctags = {**tags, "source": camera, "state": state if isinstance(state, str) else ""}
        points.append(_point("camera_health", ctags, _numeric_fields(cam), seq, t))
    for sensor, raw in _obj(data.get("sensors"), "data.sensors").items():
        values = _obj(raw, f"data.sensors.{sensor}")
        state = values.get("state")
        stags = {**tags, "source": sensor, "state": state if isinstance(state, str) else ""}
        points.append(_point("sensor_health", stags, _numeric_fields(values), seq, t))
    for rule, raw in _obj(data.get("rules", {}), "data.rules").items():
        entry = _obj(raw, f"data.rules.{rule}")
        state = entry.get("state")
        outputs = entry.get("outputs")
        if not isinstance(outputs, list):
            raise MappingError(f"data.rules.{rule}.outputs: expected a list")
        rtags = {**tags, "rule": rule, "state": state if isinstance(state, str) else ""}
        fields = _numeric_fields({k: entry.get(k) for k in ("fired", "late")})
        fields["active"] = 1.0 if state == "active" else 0.0
        fields["failures"] = float(
            sum(int(o.get("failures", 0)) for o in outputs if isinstance(o, dict))
        )
        points.append(_point("rule_health", rtags, fields, seq, t))
    return points


def map_availability(data: dict[str, Any], tags: dict[str, str], seq: int, t: int) -> list[Point]:
    """``availability``: field online = 1.0 (online) or 0.0 (offline)."""
    state = _str(data, "state")
    if state not in ("online", "offline"):
        raise MappingError(f"data.state: expected online or offline, got {state!r}")
    return [_point("availability", tags, {"online": 1.0 if state == "online" else 0.0}, seq, t)]


def map_command(data: dict[str, Any], tags: dict[str, str], seq: int, t: int) -> list[Point]:
    """``command`` (audit): tags command and caller, field ok = 1.0 or 0.0."""
    ok = data.get("ok")
    if not isinstance(ok, bool):
        raise MappingError(f"data.ok: expected a boolean, got {ok!r}")
    point_tags = {**tags, "command": _str(data, "command"), "caller": _str(data, "caller")}
    return [_point("command", point_tags, {"ok": 1.0 if ok else 0.0}, seq, t)]


def map_actuation(data: dict[str, Any], tags: dict[str, str], seq: int, t: int) -> list[Point]:
    """``actuation``: tags rule, action_type, state, outcome, reason; latency, attempts, late."""
    tags = {
        **tags,
        "rule": _str(data, "rule"),
        "action_type": _str(data, "action_type"),
        "state": _str(data, "state"),
        "outcome": _str(data, "outcome"),
        "reason": _str(data, "reason"),
    }
    late = data.get("late")
    if not isinstance(late, bool):
        raise MappingError(f"data.late: expected a boolean, got {late!r}")
    fields: dict[str, FieldValue] = {
        "count": 1,
        "latency_ms": _num(data, "latency_ms") or 0.0,
        "attempts": _count(data.get("attempts"), "data.attempts"),
        "late": 1.0 if late else 0.0,
    }
    return [_point("actuation", tags, fields, seq, t)]


_LANE_FIELDS: Final = (
    "occupancy",
    "headway_mean_s",
    "headway_min_s",
    "speed_mean_kmh",
    "speed_p85_kmh",
    "queue_max_m",
    "queue_mean_m",
    "queue_mean_vehicles",
    "congestion_level",
)
_LANE_COUNTS: Final = ("headways", "speeds", "queue_max_vehicles")


def map_flow(data: dict[str, Any], tags: dict[str, str], seq: int, t: int) -> list[Point]:
    """``flow``: ``flow_lane`` per lane, ``flow_volume`` per lane/class, ``flow_movement``."""
    interval = _num(data, "interval_s") or 0.0
    points: list[Point] = []
    for lane, raw in _obj(data.get("lanes"), "data.lanes").items():
        where = f"data.lanes.{lane}"
        measures = _obj(raw, where)
        ltags = {**tags, "lane": lane}
        fields: dict[str, FieldValue] = {"interval_s": interval}
        volume = 0
        for label, count in _obj(measures.get("volume"), f"{where}.volume").items():
            n = _count(count, f"{where}.volume.{label}")
            volume += n
            points.append(_point("flow_volume", {**ltags, "class": label}, {"count": n}, seq, t))
        fields["volume"] = volume
        for key in _LANE_FIELDS:
            value = measures.get(key)
            if value is not None:
                if isinstance(value, bool) or not isinstance(value, int | float):
                    raise MappingError(f"{where}.{key}: expected a number, got {value!r}")
                fields[key] = float(value)
        for key in _LANE_COUNTS:
            if key in measures:
                fields[key] = _count(measures[key], f"{where}.{key}")
        points.append(_point("flow_lane", ltags, fields, seq, t))
    for origin, dests in _obj(data.get("movements"), "data.movements").items():
        for dest, classes in _obj(dests, f"data.movements.{origin}").items():
            for label, count in _obj(classes, f"data.movements.{origin}.{dest}").items():
                n = _count(count, f"data.movements.{origin}.{dest}.{label}")
                mtags = {**tags, "origin": origin, "destination": dest, "class": label}
                points.append(
                    _point("flow_movement", mtags, {"count": n, "interval_s": interval}, seq, t)
                )
    return points


# The explicit registry: event type -> mapper.
MAPPERS: Final[dict[str, Mapper]] = {
    "line_crossing": map_line_crossing,
    "zone_enter": _map_zone("enter"),
    "zone_exit": _map_zone("exit"),
    "alert": map_alert,
    "aggregate": map_aggregate,
    "flow": map_flow,
    "sensor_reading": map_sensor_reading,
    "health": map_health,
    "availability": map_availability,
    "command": map_command,
    "actuation": map_actuation,
    "manifest": map_manifest,
}


def event_points(event: dict[str, Any]) -> list[Point]:
    """Return the points of one checked event (see :func:`gateway.ingest.decode.check_envelope`).

    Raises:
        MappingError: a ``data`` value the mapping reads is missing or of the wrong type.
    """
    mapper = MAPPERS.get(event["type"])
    if mapper is None:
        raise MappingError(f"type: no mapping for {event['type']!r}")
    try:
        ts_ms = parse_ts_ms(event["ts"])
    except ValueError as exc:
        raise MappingError(f"ts: {exc}") from exc
    seq: int = event["seq"]
    tags = {"gateway": event["gateway"], "site": event["site"], "source": event["source"]}
    return mapper(event["data"], tags, seq, point_time_ns(ts_ms, seq))
