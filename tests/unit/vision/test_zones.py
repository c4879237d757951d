"""Polygon zones: inside test, enter/exit/dwell, occupancy, debounce, class filter, bounds."""

from __future__ import annotations

import numpy as np
import pytest

from gateway.config import validate_settings
from gateway.config.vision import ZoneConfig
from gateway.errors import ConfigError
from gateway.vision.analytics.types import ZoneTransition
from gateway.vision.analytics.zones import ZoneTracker, points_in_polygon
from gateway.vision.detections import Detections
from tests.support.analytics_builders import FRAME, LABELS, frame, path, track_frames

DT = 0.1
SQUARE = [(0.3, 0.3), (0.7, 0.3), (0.7, 0.7), (0.3, 0.7)]


def zone(points: list[tuple[float, float]] = SQUARE, **kw: object) -> ZoneConfig:
    return ZoneConfig.model_validate({"id": "z", "points": points, **kw})


def feed(tracker: ZoneTracker, frames: list[Detections], t0: float = 0.0) -> list[ZoneTransition]:
    events: list[ZoneTransition] = []
    for k, dets in enumerate(frames):
        events += tracker.update(dets, t0 + k * DT)
    return events


@pytest.mark.parametrize(
    ("polygon", "point", "inside"),
    [
        (SQUARE, (0.5, 0.5), True),
        (SQUARE, (0.2, 0.5), False),
        (SQUARE, (0.5, 0.8), False),
        ([(0.1, 0.1), (0.9, 0.1), (0.5, 0.9)], (0.5, 0.3), True),
        ([(0.1, 0.1), (0.9, 0.1), (0.5, 0.9)], (0.2, 0.8), False),
        # L-shape (concave): the notch is outside.
        (
            [(0.1, 0.1), (0.5, 0.1), (0.5, 0.5), (0.9, 0.5), (0.9, 0.9), (0.1, 0.9)],
            (0.7, 0.3),
            False,
        ),
        (
            [(0.1, 0.1), (0.5, 0.1), (0.5, 0.5), (0.9, 0.5), (0.9, 0.9), (0.1, 0.9)],
            (0.7, 0.7),
            True,
        ),
        (
            [(0.1, 0.1), (0.5, 0.1), (0.5, 0.5), (0.9, 0.5), (0.9, 0.9), (0.1, 0.9)],
            (0.3, 0.3),
            True,
        ),
    ],
)
def test_points_in_polygon(
    polygon: list[tuple[float, float]], point: tuple[float, float], inside: bool
) -> None:
    got = points_in_polygon(np.array([point]), np.array(polygon))
    assert got.tolist() == [inside]


def test_enter_exit_and_dwell() -> None:
    tracker = ZoneTracker("cam", zone(), FRAME, LABELS)
    # 10 steps outside->inside, stays 30 frames, then leaves.
    pts = path((0.1, 0.5), (0.4, 0.5), 10) + [(0.5, 0.5)] * 30 + path((0.6, 0.5), (0.9, 0.5), 10)
    events = feed(tracker, track_frames(9, pts))
    assert [(e.kind, e.track_id, e.label, e.zone_id, e.camera_id) for e in events] == [
        ("enter", 9, "car", "z", "cam"),
        ("exit", 9, "car", "z", "cam"),
    ]
    enter, leave = events
    assert enter.dwell_s is None
    assert leave.dwell_s == pytest.approx(leave.timestamp - enter.timestamp)
    # Anchor x crosses 0.3 between steps 6 and 7 and 0.7 between steps 44 and 45.
    assert enter.timestamp == pytest.approx(0.7)
    assert leave.timestamp == pytest.approx(4.5)
    assert leave.dwell_s == pytest.approx(3.8)
    assert len(tracker) == 0


def test_occupancy_per_label() -> None:
    tracker = ZoneTracker("cam", zone(), FRAME, LABELS)
    tracker.update(
        frame(
            (1, 0.4, 0.4, "car"),
            (2, 0.5, 0.5, "car"),
            (3, 0.6, 0.6, "person"),
            (4, 0.9, 0.9, "car"),
        ),
        0.0,
    )
    assert tracker.occupancy() == {"car": 2, "person": 1}
    tracker.update(frame((1, 0.4, 0.4, "car"), (3, 0.95, 0.6, "person")), 0.1)
    # Track 2 is not seen but not yet forgotten; track 3 left.
    assert tracker.occupancy() == {"car": 2}
    assert tracker.inside_ids() == {1, 2}
    tracker.update(frame((1, 0.4, 0.4, "car")), 2.0)
    assert tracker.occupancy() == {"car": 1}


@pytest.mark.parametrize(
    ("min_frames", "inside_frames", "entered"),
    [(1, 1, True), (3, 1, False), (3, 2, False), (3, 3, True), (5, 4, False), (5, 6, True)],
)
def test_debounce_enter(min_frames: int, inside_frames: int, entered: bool) -> None:
    tracker = ZoneTracker("cam", zone(min_frames=min_frames), FRAME, LABELS)
    pts = [(0.2, 0.5)] * 3 + [(0.35, 0.5)] * inside_frames + [(0.2, 0.5)] * 10
    events = feed(tracker, track_frames(1, pts))
    kinds = [e.kind for e in events]
    assert kinds == (["enter", "exit"] if entered else [])
    if entered:
        assert events[0].timestamp == pytest.approx(0.3)  # the first frame inside


def test_debounce_flicker_on_the_border_gives_one_visit() -> None:
    tracker = ZoneTracker("cam", zone(min_frames=3), FRAME, LABELS)
    flicker = [(0.29, 0.5), (0.31, 0.5)] * 10  # never 3 frames in a row on one side
    pts = [(0.5, 0.5)] * 5 + flicker + [(0.5, 0.5)] * 5 + [(0.1, 0.5)] * 5
    events = feed(tracker, track_frames(1, pts))
    assert [e.kind for e in events] == ["enter", "exit"]


@pytest.mark.parametrize(("label", "seen"), [("person", True), ("car", False)])
def test_class_filter(label: str, seen: bool) -> None:
    tracker = ZoneTracker("cam", zone(classes=["person", "bicycle"]), FRAME, LABELS)
    events = feed(tracker, track_frames(1, [(0.5, 0.5)] * 3, label=label))
    assert bool(events) is seen
    assert tracker.occupancy() == ({"person": 1} if seen else {})


def test_vanished_track_exits_at_last_sighting() -> None:
    tracker = ZoneTracker("cam", zone(), FRAME, LABELS, forget_s=1.0)
    events = feed(tracker, track_frames(5, [(0.5, 0.5)] * 11))  # t = 0.0 .. 1.0
    assert [e.kind for e in events] == ["enter"]
    assert tracker.update(Detections.empty(), 1.9) == []
    (leave,) = tracker.update(Detections.empty(), 2.1)
    assert leave.kind == "exit"
    assert leave.timestamp == pytest.approx(1.0)
    assert leave.dwell_s == pytest.approx(1.0)
    assert len(tracker) == 0
    assert tracker.occupancy() == {}


def test_state_bounded_and_cap_evictions_exit() -> None:
    tracker = ZoneTracker("cam", zone(), FRAME, LABELS, max_tracks=8)
    objs = [(100 + j, 0.32 + 0.018 * j, 0.5, "car") for j in range(20)]
    events = tracker.update(frame(*objs), 0.0)
    assert len(tracker) <= 8
    assert sum(e.kind == "enter" for e in events) == 20
    assert sum(e.kind == "exit" for e in events) == 12
    assert sum(tracker.occupancy().values()) == 8


def test_outside_tracks_hold_no_state() -> None:
    tracker = ZoneTracker("cam", zone(), FRAME, LABELS)
    for k in range(50):
        tracker.update(frame(*[(1000 * k + j, 0.05, 0.05 + 0.01 * j, "car") for j in range(10)]), k)
    assert len(tracker) == 0


@pytest.mark.parametrize(
    ("zone_data", "problem"),
    [
        (
            {"points": [[0, 0], [1, 1]]},
            "cameras[0].zones[0].points: expected at least 3 points, got 2",
        ),
        (
            {"points": SQUARE, "roadway": True, "classes": ["car"]},
            "cameras[0].zones[0]: roadway: the zone's classes must include 'person'",
        ),
        (
            {"points": SQUARE, "stopped_vehicle_s": 5, "classes": ["person"]},
            "cameras[0].zones[0]: stopped_vehicle_s: the zone's classes must include a vehicle",
        ),
        ({"points": SQUARE, "min_frames": 0}, "cameras[0].zones[0].min_frames: Input should be"),
        ({"points": SQUARE, "capacity": 0}, "cameras[0].zones[0].capacity: Input should be"),
    ],
)
def test_zone_config_errors(zone_data: dict[str, object], problem: str) -> None:
    data = {
        "cameras": [
            {"id": "c", "source": {"type": "simulator"}, "zones": [{"id": "z", **zone_data}]}
        ]
    }
    with pytest.raises(ConfigError) as err:
        validate_settings(data)
    assert any(p.startswith(problem) for p in err.value.problems), err.value.problems


def test_free_class_names_accepted() -> None:
    cfg = zone(classes=["tractor", "person"], roadway=True)
    assert cfg.classes == ["tractor", "person"]
