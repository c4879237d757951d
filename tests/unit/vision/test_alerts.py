"""Alert rules: each kind fires once per track/condition and re-arms as documented."""

from __future__ import annotations

from typing import Any, get_args

import numpy as np
import pytest

from gateway.config.vision import CameraConfig, ZoneConfig
from gateway.events.validate import load_schema
from gateway.vision.analytics.alerts import ALERT_RULES, RuleContext, build_rules
from gateway.vision.analytics.alerts.over_capacity import CapacityRule, OverCapacity
from gateway.vision.analytics.alerts.pedestrian_in_roadway import PedestrianInRoadway
from gateway.vision.analytics.alerts.stopped_vehicle import StoppedVehicle, StoppedVehicleRule
from gateway.vision.analytics.alerts.wrong_way import WrongWay
from gateway.vision.analytics.engine import AnalyticsEngine
from gateway.vision.analytics.types import Alert, AlertKind
from gateway.vision.detections import Detections
from tests.support.analytics_builders import FRAME, LABELS, frame, merge, path, track_frames

DT = 0.1
SQUARE = [[0.3, 0.3], [0.7, 0.3], [0.7, 0.7], [0.3, 0.7]]


def camera(**kw: Any) -> CameraConfig:
    return CameraConfig.model_validate({"id": "cam", "source": {"type": "simulator"}, **kw})


def alerts_of(engine: AnalyticsEngine, frames: list[Detections]) -> list[Alert]:
    out: list[Alert] = []
    for k, dets in enumerate(frames):
        out += [e for e in engine.update(dets, 100.0 + k * DT) if isinstance(e, Alert)]
    return out


@pytest.mark.parametrize(
    ("one_way", "start", "end", "alerts"),
    [
        ("left_to_right", (0.5, 0.3), (0.5, 0.7), 0),
        ("left_to_right", (0.5, 0.7), (0.5, 0.3), 1),
        ("right_to_left", (0.5, 0.3), (0.5, 0.7), 1),
        (None, (0.5, 0.7), (0.5, 0.3), 0),
    ],
)
def test_wrong_way(
    one_way: str | None, start: tuple[float, float], end: tuple[float, float], alerts: int
) -> None:
    cam = camera(lines=[{"id": "gate", "points": [[0.1, 0.5], [0.9, 0.5]], "one_way": one_way}])
    engine = AnalyticsEngine(cam, LABELS, FRAME)
    # There and back twice: still one alert at most (counted once per track and line).
    pts = path(start, end, 10) + path(end, start, 10) + path(start, end, 10)
    found = alerts_of(engine, track_frames(4, pts))
    assert len(found) == alerts
    for alert in found:
        assert (alert.kind, alert.line_id, alert.track_id, alert.label) == (
            "wrong_way",
            "gate",
            4,
            "car",
        )
        assert alert.details == {
            "direction": "right_to_left" if one_way == "left_to_right" else "left_to_right",
            "allowed": one_way,
        }


def test_pedestrian_in_roadway_once_per_visit() -> None:
    cam = camera(zones=[{"id": "road", "points": SQUARE, "roadway": True, "min_frames": 2}])
    engine = AnalyticsEngine(cam, LABELS, FRAME)
    visit = [(0.5, 0.5)] * 30
    away = [(0.1, 0.5)] * 5
    person = track_frames(1, away + visit + away + visit, label="person")
    car = track_frames(2, [(0.45, 0.45)] * 75, label="car")
    found = alerts_of(engine, merge(person, car))
    assert [(a.kind, a.zone_id, a.track_id, a.label) for a in found] == [
        ("pedestrian_in_roadway", "road", 1, "person")
    ] * 2
    assert found[0].timestamp == pytest.approx(100.5)  # first frame inside


def test_pedestrian_outside_roadway_zone_no_alert() -> None:
    cam = camera(zones=[{"id": "kerb", "points": SQUARE}])
    engine = AnalyticsEngine(cam, LABELS, FRAME)
    assert alerts_of(engine, track_frames(1, [(0.5, 0.5)] * 20, label="person")) == []


def _stop_and_go(stop_s: float, jitter_px: float) -> list[tuple[float, float]]:
    """Drive in, stop for ``stop_s`` (with box jitter), drive on, stop again, drive out."""
    rng = np.random.default_rng(1)
    still = int(stop_s / DT)

    def stop(x: float) -> list[tuple[float, float]]:
        j = rng.uniform(-jitter_px, jitter_px, size=(still, 2)) / FRAME[0]
        return [(x + dx, 0.5 + dy) for dx, dy in j]

    return (
        path((0.1, 0.5), (0.4, 0.5), 10)
        + stop(0.4)
        + path((0.4, 0.5), (0.6, 0.5), 10)
        + stop(0.6)
        + path((0.6, 0.5), (0.95, 0.5), 10)
    )


@pytest.mark.parametrize(
    ("label", "stop_s", "jitter_px", "alerts"),
    [
        ("car", 8.0, 0.0, 2),  # two stops, each longer than 5 s
        ("truck", 8.0, 3.0, 2),  # box jitter is not motion
        ("car", 4.0, 0.0, 0),  # stops shorter than 5 s
        ("person", 8.0, 0.0, 0),  # not a vehicle
    ],
)
def test_stopped_vehicle(label: str, stop_s: float, jitter_px: float, alerts: int) -> None:
    cam = camera(zones=[{"id": "lane", "points": SQUARE, "stopped_vehicle_s": 5}])
    engine = AnalyticsEngine(cam, LABELS, FRAME)
    found = alerts_of(engine, track_frames(3, _stop_and_go(stop_s, jitter_px), label=label))
    assert [(a.kind, a.zone_id, a.track_id) for a in found] == [
        ("stopped_vehicle", "lane", 3)
    ] * alerts
    for alert in found:
        assert alert.details["stopped_s"] == pytest.approx(5.0, abs=0.11)


@pytest.mark.parametrize(
    ("kmh", "calibrated", "alerts"),
    [
        (1.5, True, 1),  # below 3 km/h: stopped, although it moves 4 px per frame
        (1.5, False, 0),  # without calibration the pixel displacement says it moves
        (6.0, True, 0),
        (6.0, False, 0),
        (0.0, True, 1),
        (0.0, False, 1),
    ],
)
def test_stopped_vehicle_speed_rule(kmh: float, calibrated: bool, alerts: int) -> None:
    """With a calibration, "stopped" means below 3 km/h rather than a pixel displacement."""
    calibration = {  # 10 m across the frame: 100 px per metre
        "image_points": [[0.0, 0.0], [1.0, 0.0], [1.0, 1.0], [0.0, 1.0]],
        "world_points": [[0.0, 0.0], [10.0, 0.0], [10.0, 10.0], [0.0, 10.0]],
    }
    zones = [{"id": "lane", "points": SQUARE, "stopped_vehicle_s": 2}]
    cam = camera(zones=zones, speed=calibration if calibrated else None)
    step = kmh / 3.6 * DT / 10.0  # normalised units per frame
    creep = path((0.35, 0.5), (0.35 + step * 40, 0.5), 40)
    found = alerts_of(AnalyticsEngine(cam, LABELS, FRAME), track_frames(1, creep))
    assert len(found) == alerts


def test_over_capacity_fires_once_and_rearms() -> None:
    cam = camera(zones=[{"id": "bay", "points": SQUARE, "capacity": 2}])
    engine = AnalyticsEngine(cam, LABELS, FRAME)
    inside = {1: (0.4, 0.4), 2: (0.5, 0.5), 3: (0.6, 0.6)}

    def scene(ids: list[int]) -> Detections:
        return frame(*[(i, *inside[i], "car") for i in ids])

    frames = (
        [scene([1, 2])] * 5
        + [scene([1, 2, 3])] * 10
        + [scene([1, 2])] * 20
        + [scene([1, 2, 3])] * 5
    )
    found = alerts_of(engine, frames)
    assert [(a.kind, a.zone_id) for a in found] == [("over_capacity", "bay")] * 2
    assert found[0].details == {"occupancy": 3, "capacity": 2}


def test_capacity_rule_direct() -> None:
    rule = CapacityRule("cam", ZoneConfig(id="z", points=SQUARE, capacity=1))  # type: ignore[arg-type]
    fired = [rule.check(n, float(t)) is not None for t, n in enumerate([0, 1, 2, 3, 2, 1, 2, 0])]
    assert fired == [False, False, True, False, False, False, True, False]


def test_stopped_state_only_for_vehicles_inside_and_capped() -> None:
    zone = ZoneConfig(id="z", points=SQUARE, stopped_vehicle_s=5)  # type: ignore[arg-type]
    rule = StoppedVehicleRule("cam", zone, stopped_px=10.0, max_tracks=4)
    dets = frame(*[(i, 0.35 + 0.02 * i, 0.5, "car") for i in range(10)], (99, 0.5, 0.5, "person"))
    names = [LABELS[c] for c in dets.class_id]
    rule.check(dets, names, set(range(10)) | {99}, speeds=None, timestamp=0.0)
    assert len(rule) <= 4
    rule.check(dets, names, set(), speeds=None, timestamp=0.1)  # everyone left the zone
    assert len(rule) == 0


def test_every_registered_alert_kind_is_in_the_schema() -> None:
    """A new rule cannot ship a kind that the published schema would refuse."""
    schema_kinds = load_schema()["$defs"]["alert"]["properties"]["kind"]["enum"]
    assert set(get_args(AlertKind)) == set(schema_kinds)
    assert set(ALERT_RULES) <= set(schema_kinds)


@pytest.mark.parametrize(
    ("config", "kinds"),
    [
        ({}, []),
        ({"lines": [{"id": "l", "points": [[0, 0.5], [1, 0.5]]}]}, []),
        (
            {"lines": [{"id": "l", "points": [[0, 0.5], [1, 0.5]], "one_way": "left_to_right"}]},
            [WrongWay],
        ),
        ({"zones": [{"id": "z", "points": SQUARE}]}, []),
        ({"zones": [{"id": "z", "points": SQUARE, "roadway": True}]}, [PedestrianInRoadway]),
        (
            {"zones": [{"id": "z", "points": SQUARE, "stopped_vehicle_s": 5, "capacity": 3}]},
            [StoppedVehicle, OverCapacity],
        ),
    ],
)
def test_a_camera_gets_only_the_rules_its_config_asks_for(
    config: dict[str, Any], kinds: list[type]
) -> None:
    rules = build_rules(RuleContext(camera(**config), FRAME, forget_s=1.5))
    assert [type(rule) for rule in rules] == kinds
