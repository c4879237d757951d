"""The documented event -> point mapping, line protocol and decoding (pure functions)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from gateway.events import validate_event
from gateway.ingest.deadletter import MAX_KEPT_BYTES, dead_letter_body
from gateway.ingest.decode import (
    INVALID_EVENT,
    MALFORMED_JSON,
    OVERSIZED,
    UNKNOWN_SCHEMA,
    RejectedError,
    decode,
)
from gateway.ingest.mapping import MAPPERS, MappingError, event_points
from gateway.ingest.points import Point, parse_ts_ms, point_time_ns, to_line
from tests.support import health_builders
from tests.support.ingest import BASE_MS, line_event, ts_of

GW = {"gateway": "rsu-0001", "site": "sejong-1"}


def event(
    kind: str, data: dict[str, Any], seq: int = 7, source: str = "cam-north"
) -> dict[str, Any]:
    obj = {
        "schema": 1,
        "id": "ab" * 16,
        "seq": seq,
        **GW,
        "source": source,
        "type": kind,
        "ts": ts_of(BASE_MS),
        "data": data,
    }
    return validate_event(obj)  # every table entry is a valid event of the published schema


HEALTH = {
    "uptime_s": 12.5,
    "system": {
        "cpu_percent": 31.0,
        "load_1m": 0.5,
        "cpu_temp_c": None,
        "mem_used_bytes": 100,
        "mem_total_bytes": 400,
        "mem_percent": 25.0,
        "disk_free_bytes": 5000,
    },
    "cameras": {
        "cam-north": {
            "state": "running",
            "fps": 9.5,
            "inference_ms": 15.0,
            "skipped_frames": 3,
            "reconnects": 1,
        }
    },
    "sensors": {"pm-1": {"state": "ok", "frames": 10, "errors": 0, "open": True}},
    "outbox": {"depth": 4, "bytes": 900, "oldest_age_s": 1.5, "inflight": 2, "dropped": 0},
    "mqtt": {"state": "connected", "protocol": "5", "connects": 1},
    "dropped_events": 0,
}

# (type, data, source) -> [(measurement, extra tags, fields)]
CASES: list[tuple[str, dict[str, Any], str, list[tuple[str, dict[str, str], dict[str, Any]]]]] = [
    (
        "line_crossing",
        {
            "camera": "cam-north",
            "line": "l1",
            "track_id": 9,
            "label": "car",
            "direction": "left_to_right",
            "speed_kmh": 41,
        },
        "cam-north",
        [
            (
                "line_crossing",
                {"line": "l1", "direction": "left_to_right", "class": "car"},
                {"count": 1, "speed_kmh": 41.0, "seq": 7},
            )
        ],
    ),
    (
        "zone_enter",
        {"camera": "cam-north", "zone": "z1", "track_id": 9, "label": "person"},
        "cam-north",
        [("zone", {"zone": "z1", "class": "person", "kind": "enter"}, {"count": 1, "seq": 7})],
    ),
    (
        "zone_exit",
        {"camera": "cam-north", "zone": "z1", "track_id": 9, "label": "person", "dwell_s": 3},
        "cam-north",
        [
            (
                "zone",
                {"zone": "z1", "class": "person", "kind": "exit"},
                {"count": 1, "dwell_s": 3.0, "seq": 7},
            )
        ],
    ),
    (
        "alert",
        {
            "camera": "cam-north",
            "kind": "stopped_vehicle",
            "zone": "z1",
            "track_id": 4,
            "label": "car",
            "details": {"stopped_s": 31, "note": "text is not stored"},
        },
        "cam-north",
        [
            (
                "alert",
                {"kind": "stopped_vehicle", "zone": "z1", "line": "", "class": "car"},
                {"stopped_s": 31.0, "count": 1, "seq": 7},
            )
        ],
    ),
    (
        "aggregate",
        {
            "camera": "cam-north",
            "start": ts_of(BASE_MS - 60000),
            "end": ts_of(BASE_MS),
            "interval_s": 60,
            "lines": {"l1": {"left_to_right": {"car": 5, "bus": 1}}},
            "zones": {"z1": {"person": 0.5}},
            "mean_speed_kmh": {"car": 38.5},
        },
        "cam-north",
        [
            (
                "aggregate_count",
                {"line": "l1", "direction": "left_to_right", "class": "car"},
                {"count": 5, "interval_s": 60.0, "seq": 7},
            ),
            (
                "aggregate_count",
                {"line": "l1", "direction": "left_to_right", "class": "bus"},
                {"count": 1, "interval_s": 60.0, "seq": 7},
            ),
            (
                "aggregate_occupancy",
                {"zone": "z1", "class": "person"},
                {"occupancy": 0.5, "seq": 7},
            ),
            ("aggregate_speed", {"class": "car"}, {"mean_speed_kmh": 38.5, "seq": 7}),
            ("aggregate", {}, {"total": 6, "interval_s": 60.0, "seq": 7}),
        ],
    ),
    (
        "sensor_reading",
        {
            "sensor": "pm-1",
            "protocol": "pms5003",
            "values": {"pm2_5": 12, "pm10": 20.5, "status": "ok"},
            "extra": {"pm2_5_cf1": 11},
        },
        "pm-1",
        [
            (
                "sensor",
                {"sensor": "pm-1", "protocol": "pms5003"},
                {"pm2_5": 12.0, "pm10": 20.5, "extra_pm2_5_cf1": 11.0, "seq": 7},
            )
        ],
    ),
    (  # a summary under a byte budget: the values are means of count readings
        "sensor_reading",
        {
            "sensor": "pm-1",
            "protocol": "pms5003",
            "values": {"pm2_5": 12.5, "status": "ok"},
            "extra": {},
            "summary": {
                "start": ts_of(BASE_MS - 900000),
                "end": ts_of(BASE_MS),
                "interval_s": 900,
                "count": 90,
                "min": {"pm2_5": 3},
                "max": {"pm2_5": 40.5},
            },
        },
        "pm-1",
        [
            (
                "sensor",
                {"sensor": "pm-1", "protocol": "pms5003"},
                {
                    "pm2_5": 12.5,
                    "summary_count": 90,
                    "summary_interval_s": 900.0,
                    "min_pm2_5": 3.0,
                    "max_pm2_5": 40.5,
                    "seq": 7,
                },
            )
        ],
    ),
    (  # an aggregate of a unit under a byte budget: its raw crossings were withheld
        "aggregate",
        {
            "camera": "cam-north",
            "start": ts_of(BASE_MS - 60000),
            "end": ts_of(BASE_MS),
            "interval_s": 60,
            "lines": {"l1": {"left_to_right": {"car": 4}}},
            "zones": {},
            "mean_speed_kmh": {},
            "crossings_withheld": 3,
        },
        "cam-north",
        [
            (
                "aggregate_count",
                {"line": "l1", "direction": "left_to_right", "class": "car"},
                {"count": 4, "interval_s": 60.0, "seq": 7},
            ),
            (
                "aggregate",
                {},
                {"total": 4, "interval_s": 60.0, "crossings_withheld": 3, "seq": 7},
            ),
        ],
    ),
    (
        "health",
        HEALTH,
        "gateway",
        [
            (
                "gateway_health",
                {},
                {
                    "cpu_percent": 31.0,
                    "load_1m": 0.5,
                    "mem_used_bytes": 100.0,
                    "mem_total_bytes": 400.0,
                    "mem_percent": 25.0,
                    "disk_free_bytes": 5000.0,
                    "outbox_depth": 4.0,
                    "outbox_bytes": 900.0,
                    "outbox_oldest_age_s": 1.5,
                    "outbox_inflight": 2.0,
                    "outbox_dropped": 0.0,
                    "mqtt_connects": 1.0,
                    "mqtt_connected": 1.0,
                    "uptime_s": 12.5,
                    "dropped_events": 0,
                    "seq": 7,
                },
            ),
            (
                "camera_health",
                {"source": "cam-north", "state": "running"},
                {
                    "fps": 9.5,
                    "inference_ms": 15.0,
                    "skipped_frames": 3.0,
                    "reconnects": 1.0,
                    "seq": 7,
                },
            ),
            (
                "sensor_health",
                {"source": "pm-1", "state": "ok"},
                {"frames": 10.0, "errors": 0.0, "open": 1.0, "seq": 7},
            ),
        ],
    ),
    (
        "availability",
        {"state": "offline", "version": "0.1.0"},
        "gateway",
        [("availability", {}, {"online": 0.0, "seq": 0})],
    ),
]


@pytest.mark.parametrize(("kind", "data", "source", "expected"), CASES, ids=[c[0] for c in CASES])
def test_mapping_table(
    kind: str,
    data: dict[str, Any],
    source: str,
    expected: list[tuple[str, dict[str, str], dict[str, Any]]],
) -> None:
    seq = 0 if kind == "availability" else 7
    points = event_points(event(kind, data, seq=seq, source=source))
    got = [(p.measurement, p.tags, p.fields) for p in points]
    base = {**GW, "source": source}
    want = [(m, {**base, **tags}, fields) for m, tags, fields in expected]
    assert got == want
    for point in points:
        assert point.time_ns == BASE_MS * 1_000_000 + seq
        assert "id" not in point.tags
        assert "track_id" not in point.tags
        assert type(point.fields["seq"]) is int


def test_every_event_type_has_a_mapper() -> None:
    from gateway.events import EVENT_TYPES

    assert set(MAPPERS) == set(EVENT_TYPES)


@pytest.mark.parametrize(
    ("kind", "data", "message"),
    [
        ("line_crossing", {"line": "l1", "direction": "left_to_right"}, "data.label"),
        (
            "line_crossing",
            {"line": "l1", "direction": "x", "label": "car", "speed_kmh": "fast"},
            "data.speed_kmh",
        ),
        ("zone_exit", {"zone": "z1", "label": "car"}, "data.dwell_s"),
        (
            "aggregate",
            {
                "interval_s": 1,
                "lines": {"l1": {"left_to_right": {"car": -1}}},
                "zones": {},
                "mean_speed_kmh": {},
            },
            "data.lines.l1.left_to_right.car",
        ),
        ("sensor_reading", {"sensor": "s", "protocol": "p", "values": []}, "data.values"),
        ("availability", {"state": "maybe"}, "data.state"),
    ],
)
def test_mapping_rejects_wrong_types(kind: str, data: dict[str, Any], message: str) -> None:
    obj = {
        "schema": 1,
        "id": "ab" * 16,
        "seq": 1,
        **GW,
        "source": "s",
        "type": kind,
        "ts": ts_of(BASE_MS),
        "data": data,
    }
    with pytest.raises(MappingError, match=message):
        event_points(obj)


def test_point_time_is_unique_per_event_and_stable_on_redelivery() -> None:
    ms = parse_ts_ms("2026-11-24T18:40:00.123Z")
    assert ms == 1795545600123
    assert point_time_ns(ms, 5) == point_time_ns(ms, 5)
    assert point_time_ns(ms, 5) != point_time_ns(ms, 6)
    assert point_time_ns(ms, 1_000_005) == ms * 1_000_000 + 5


def test_line_protocol_escaping() -> None:
    point = Point(
        "my meas,x",
        {"b": "a b,c=d", "a": "x", "empty": ""},
        {"f 1": 1.5, "n": 3, "ok": True, "s": 'say "hi"\\', "nan": float("nan")},
        42,
    )
    assert to_line(point) == (
        'my\\ meas\\,x,a=x,b=a\\ b\\,c\\=d f\\ 1=1.5,n=3i,ok=true,s="say \\"hi\\"\\\\" 42'
    )
    with pytest.raises(ValueError, match="no storable field"):
        to_line(Point("m", {}, {"x": float("inf")}, 1))


GOOD = json.dumps(line_event(1)).encode()


@pytest.mark.parametrize(
    ("payload", "reason", "validation"),
    [
        (b"x" * 300, OVERSIZED, "fast"),
        (b"{not json", MALFORMED_JSON, "fast"),
        (b"\xff\xfe\x00", MALFORMED_JSON, "fast"),
        (b"[1, 2]", MALFORMED_JSON, "fast"),
        (json.dumps({**line_event(1), "schema": 2}).encode(), UNKNOWN_SCHEMA, "fast"),
        (
            json.dumps({k: v for k, v in line_event(1).items() if k != "schema"}).encode(),
            UNKNOWN_SCHEMA,
            "fast",
        ),
        (json.dumps({**line_event(1), "id": "XYZ"}).encode(), INVALID_EVENT, "fast"),
        (json.dumps({**line_event(1), "seq": -1}).encode(), INVALID_EVENT, "fast"),
        (json.dumps({**line_event(1), "seq": True}).encode(), INVALID_EVENT, "fast"),
        (json.dumps({**line_event(1), "type": "teleport"}).encode(), INVALID_EVENT, "fast"),
        (json.dumps({**line_event(1), "ts": "yesterday"}).encode(), INVALID_EVENT, "fast"),
        (json.dumps({**line_event(1), "extra": 1}).encode(), INVALID_EVENT, "fast"),
        (json.dumps({**line_event(1), "data": []}).encode(), INVALID_EVENT, "fast"),
        (json.dumps(line_event(1, colour="red")).encode(), INVALID_EVENT, "full"),
    ],
)
def test_decode_rejections(payload: bytes, reason: str, validation: Any) -> None:
    with pytest.raises(RejectedError) as info:
        decode(payload, max_bytes=256 if reason == OVERSIZED else 65536, validation=validation)
    assert info.value.reason == reason


def test_decode_fast_accepts_extra_data_keys_full_does_not() -> None:
    payload = json.dumps(line_event(1, colour="red")).encode()
    assert decode(payload, 65536, "fast")["seq"] == 1
    assert decode(GOOD, 65536, "full")["seq"] == 1


def test_dead_letter_body_text_and_binary() -> None:
    text = json.loads(dead_letter_body("malformed_json", "a/b", b"{oops", "detail"))
    assert text == {
        "reason": "malformed_json",
        "detail": "detail",
        "topic": "a/b",
        "size": 5,
        "payload": "{oops",
        "encoding": "utf-8",
        "truncated": False,
    }
    binary = json.loads(dead_letter_body("malformed_json", "a/b", b"\xff" * (MAX_KEPT_BYTES + 9)))
    assert binary["encoding"] == "base64"
    assert binary["truncated"] is True
    assert binary["size"] == MAX_KEPT_BYTES + 9


def test_actuation_and_rule_health_points() -> None:
    from gateway.actuation import Actuation, Cause, OutputHealth, RuleHealth
    from gateway.events import builder
    from gateway.events.health import health as health_event
    from gateway.ingest.mapping import event_points

    cause = Cause("alert", 1796000000.0, "alert", "cam-1", {"zone": "road", "track_id": 3})
    draft = builder.actuation(
        Actuation(
            "beacon",
            0,
            "modbus_coil",
            "rtu:///dev/x/unit1/coil0",
            "active",
            True,
            "ok",
            cause,
            12.5,
            1,
            False,
            1796000000.02,
        )
    )
    event = {"schema": 1, "id": "0" * 32, "seq": 5, "gateway": "gw", "site": "s",
             "source": draft.source, "type": draft.type, "ts": "2026-12-01T00:00:00.000Z",
             "data": draft.data}  # fmt: skip
    from gateway.events import validate_event

    validate_event(event)
    (point,) = event_points(event)
    assert point.measurement == "actuation"
    assert point.tags["rule"] == "beacon" and point.tags["outcome"] == "ok"
    assert point.tags["source"] == "cam-1"
    assert point.fields == {"count": 1, "latency_ms": 12.5, "attempts": 1, "late": 0.0, "seq": 5}
    output = OutputHealth(0, "modbus_coil", "t", "active", "active", 3, 2, 1, 0, 0, 0, False,
                          "timeout", 4.0)  # fmt: skip
    health = health_event(
        1796000000.0,
        health_builders.gateway(cameras={}, sensors={}),
        rules=[RuleHealth("beacon", "active", "alert", False, 4, (output,), 1)],
    )
    event = {**event, "type": "health", "source": "gateway", "data": health.data}
    validate_event(event)
    rule_points = [p for p in event_points(event) if p.measurement == "rule_health"]
    assert [(p.tags["rule"], p.fields["active"], p.fields["failures"]) for p in rule_points] == [
        ("beacon", 1.0, 2.0)
    ]
