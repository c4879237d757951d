"""Every event the builder produces validates; broken events are rejected with a reason."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from gateway.events import (
    Draft,
    InvalidEventError,
    Topics,
    builder,
    envelope,
    format_ts,
    new_id,
    parse_topic,
    parse_ts,
    validate_event,
)
from gateway.events.health import health
from gateway.events.topics import data_filters
from gateway.sensors.types import Reading
from gateway.vision.analytics.types import Aggregate, Alert, LineCrossing, ZoneTransition
from tests.support import health_builders

T0 = 1_795_545_600.123  # 2026-11-24T18:40:00.123Z


def wrap(draft: Draft, seq: int = 1) -> dict[str, Any]:
    return envelope(draft, seq=seq, event_id=new_id(), gateway="rsu-0001", site="sejong-1")


def health_draft() -> Draft:
    return health(T0, health_builders.gateway())


DRAFTS = {
    "line_crossing": builder.from_analytics(
        LineCrossing("cam-north", "l1", 7, "car", "left_to_right", T0, speed_kmh=42.123)
    ),
    "line_crossing_no_speed": builder.from_analytics(
        LineCrossing("cam-north", "l1", 7, "car", "right_to_left", T0)
    ),
    "zone_enter": builder.from_analytics(
        ZoneTransition("cam-north", "z1", 3, "person", "enter", T0)
    ),
    "zone_exit": builder.from_analytics(
        ZoneTransition("cam-north", "z1", 3, "person", "exit", T0, dwell_s=4.25)
    ),
    "alert_wrong_way": builder.from_analytics(
        Alert("cam-north", "wrong_way", T0, line_id="l1", track_id=9, label="car")
    ),
    "alert_capacity": builder.from_analytics(
        Alert(
            "cam-north",
            "over_capacity",
            T0,
            zone_id="z1",
            details={"occupancy": 12, "capacity": 10},
        )
    ),
    "aggregate": builder.from_analytics(
        Aggregate(
            "cam-north",
            T0 - 60,
            T0,
            lines={"l1": {"left_to_right": {"car": 3, "bus": 1}, "right_to_left": {"car": 2}}},
            zones={"z1": {"person": 0.75}},
            mean_speed_kmh={"car": 38.5},
        )
    ),
    "aggregate_empty": builder.from_analytics(Aggregate("cam-north", T0 - 60, T0, lines={})),
    "sensor_reading": builder.sensor_reading(
        Reading("pms5003", {"pm2_5": 12, "pm10": 20.5}, T0, "pm-1", {"cf1_pm2_5": 11})
    ),
    "sensor_reading_text": builder.sensor_reading(
        Reading("nmea", {"lat": 36.48, "fix": "3d"}, T0, "", {}), sensor_id="gps"
    ),
    "health": health_draft(),
    "availability": builder.availability("online", T0, "0.1.0"),
}


@pytest.mark.parametrize("name", sorted(DRAFTS))
def test_builder_output_is_valid(name: str) -> None:
    draft = DRAFTS[name]
    event = wrap(draft, seq=0 if draft.type == "availability" else 5)
    assert validate_event(event) is event


def test_mapping_details() -> None:
    lc = DRAFTS["line_crossing"]
    assert lc.type == "line_crossing" and lc.source == "cam-north"
    assert lc.data["speed_kmh"] == 42.12
    assert "speed_kmh" not in DRAFTS["line_crossing_no_speed"].data
    assert DRAFTS["zone_exit"].data["dwell_s"] == 4.25
    assert "dwell_s" not in DRAFTS["zone_enter"].data
    agg = DRAFTS["aggregate"].data
    assert agg["interval_s"] == 60.0 and agg["lines"]["l1"]["left_to_right"]["bus"] == 1
    assert DRAFTS["sensor_reading_text"].source == "gps"
    cam = DRAFTS["health"].data["cameras"]["cam-north"]
    assert cam["pipeline_frames"] == 120 and cam["state"] == "streaming"


def test_timestamp_format_round_trip() -> None:
    text = format_ts(1_795_545_600.5)
    assert text == "2026-11-24T18:40:00.500Z"
    assert parse_ts(text) == 1_795_545_600.5
    assert format_ts(T0) == "2026-11-24T18:40:00.123Z"  # rounded, not truncated
    assert format_ts(0.9996) == "1970-01-01T00:00:01.000Z"


def valid() -> dict[str, Any]:
    return wrap(DRAFTS["line_crossing"])


def mutate(path: str, value: object) -> dict[str, Any]:
    event = copy.deepcopy(valid())
    *parents, last = path.split(".")
    target = event
    for p in parents:
        target = target[p]
    if value is DELETE:
        del target[last]
    else:
        target[last] = value
    return event


DELETE = object()

BROKEN = [
    ("schema", 2, "schema"),
    ("id", "not-hex", "id"),
    ("id", DELETE, "(event)"),
    ("seq", -1, "seq"),
    ("seq", "1", "seq"),
    ("gateway", "bad/id", "gateway"),
    ("ts", "2026-11-24T18:40:00Z", "ts"),
    ("ts", "2026-11-24 18:40:00.123", "ts"),
    ("type", "explosion", "type"),
    ("data.direction", "sideways", "data/direction"),
    ("data.track_id", "7", "data/track_id"),
    ("data.line", DELETE, "data"),
    ("data.colour", "red", "data"),
    ("extra_field", 1, "(event)"),
]


@pytest.mark.parametrize(("path", "value", "where"), BROKEN)
def test_broken_events_are_invalid(path: str, value: object, where: str) -> None:
    with pytest.raises(InvalidEventError) as info:
        validate_event(mutate(path, value))
    assert any(p.startswith(where) for p in info.value.problems), info.value.problems


def test_data_checked_against_its_type() -> None:
    event = wrap(DRAFTS["zone_enter"])
    event["type"] = "zone_exit"  # zone_exit needs dwell_s
    with pytest.raises(InvalidEventError, match="dwell_s"):
        validate_event(event)
    avail = wrap(DRAFTS["availability"], seq=3)  # availability is outside the sequence
    with pytest.raises(InvalidEventError):
        validate_event(avail)
    health = wrap(DRAFTS["health"])
    health["data"]["mqtt"]["state"] = "sleepy"
    with pytest.raises(InvalidEventError):
        validate_event(health)


@pytest.mark.parametrize("obj", [None, [], "text", 42])
def test_non_objects_are_invalid(obj: object) -> None:
    with pytest.raises(InvalidEventError):
        validate_event(obj)


def test_topics_and_filters() -> None:
    topics = Topics("city", "sejong-1", "rsu-0001")
    assert topics.for_draft(DRAFTS["line_crossing"]) == (
        "city/sejong-1/rsu-0001/events/cam-north/line_crossing"
    )
    assert topics.for_draft(DRAFTS["sensor_reading"]) == "city/sejong-1/rsu-0001/sensors/pm-1"
    assert topics.for_draft(DRAFTS["health"]) == "city/sejong-1/rsu-0001/health"
    assert topics.for_draft(DRAFTS["availability"]) == "city/sejong-1/rsu-0001/status"
    assert topics.command("get_config") == "city/sejong-1/rsu-0001/cmd/get_config"
    assert data_filters("city") == [
        "city/+/+/events/#",
        "city/+/+/sensors/#",
        "city/+/+/health",
        "city/+/+/status",
        "city/+/+/batch",
    ]
    info = parse_topic("city", topics.event("cam-north", "alert"))
    assert info is not None
    assert (info.site, info.gateway, info.kind, info.rest) == (
        "sejong-1",
        "rsu-0001",
        "events",
        ("cam-north", "alert"),
    )
    multi = Topics("city/east", "s", "g")
    parsed = parse_topic("city/east", multi.health)
    assert parsed is not None and parsed.kind == "health"


@pytest.mark.parametrize(
    "topic", ["other/s/g/health", "city/s/g/unknown", "city/s", "city//g/health"]
)
def test_parse_topic_rejects_foreign_topics(topic: str) -> None:
    assert parse_topic("city", topic) is None
