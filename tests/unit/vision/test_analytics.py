"""AnalyticsEngine: crossings with speed, totals, interval aggregates, occupancy, bounds."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from gateway.config.vision import CameraConfig
from gateway.vision.analytics.alerts.stopped_vehicle import StoppedVehicle
from gateway.vision.analytics.engine import AnalyticsEngine
from gateway.vision.analytics.types import AnalyticsEvent, LineCrossing, ZoneTransition
from gateway.vision.detections import Detections
from gateway.vision.tracker import make_tracker
from tests.support.analytics_builders import FRAME, LABELS, at, frame, merge, path, track_frames

DT = 0.1
T0 = 1_700_000_000.0
GATE = {"id": "gate", "points": [[0.0, 0.5], [1.0, 0.5]]}
SQUARE = [[0.3, 0.3], [0.7, 0.3], [0.7, 0.7], [0.3, 0.7]]
# 20 m x 20 m of road across the whole frame: 50 px per metre.
FLAT = {
    "image_points": [[0.0, 0.0], [1.0, 0.0], [1.0, 1.0], [0.0, 1.0]],
    "world_points": [[0.0, 0.0], [20.0, 0.0], [20.0, 20.0], [0.0, 20.0]],
}


def camera(**kw: Any) -> CameraConfig:
    return CameraConfig.model_validate({"id": "cam", "source": {"type": "simulator"}, **kw})


def run(engine: AnalyticsEngine, frames: list[Detections], t0: float = T0) -> list[AnalyticsEvent]:
    events: list[AnalyticsEvent] = []
    for k, dets in enumerate(frames):
        events += engine.update(dets, t0 + k * DT)
    return events


def crossing_down(tid: int, label: str = "car", x: float = 0.5) -> list[Detections]:
    return track_frames(tid, path((x, 0.3), (x, 0.7), 20), label=label)


def crossing_up(tid: int, label: str = "car", x: float = 0.5) -> list[Detections]:
    return track_frames(tid, path((x, 0.7), (x, 0.3), 20), label=label)


def test_crossings_without_calibration_have_no_speed() -> None:
    engine = AnalyticsEngine(camera(lines=[GATE]), LABELS, FRAME)
    events = run(engine, crossing_down(1))
    (crossing,) = [e for e in events if isinstance(e, LineCrossing)]
    assert (crossing.camera_id, crossing.line_id, crossing.track_id) == ("cam", "gate", 1)
    assert (crossing.label, crossing.direction, crossing.speed_kmh) == (
        "car",
        "left_to_right",
        None,
    )


@pytest.mark.parametrize("kmh", [18.0, 36.0])
def test_crossings_carry_speed_with_calibration(kmh: float) -> None:
    engine = AnalyticsEngine(camera(lines=[GATE], speed=FLAT), LABELS, FRAME)
    step = kmh / 3.6 * DT / 20.0  # normalised per frame
    pts = [(0.5, 0.2 + step * k) for k in range(int(0.5 / step))]
    (crossing,) = [e for e in run(engine, track_frames(1, pts)) if isinstance(e, LineCrossing)]
    assert crossing.speed_kmh == pytest.approx(kmh, rel=0.05)


def test_totals_and_interval_aggregates() -> None:
    engine = AnalyticsEngine(camera(lines=[GATE], aggregate_interval_s=10), LABELS, FRAME)
    assert engine.aggregate(T0) is None  # starts the first interval
    run(
        engine,
        merge(crossing_down(1), crossing_up(2, "bus", x=0.2), crossing_down(3, "person", x=0.8)),
    )
    assert engine.aggregate(T0 + 9.9) is None
    first = engine.aggregate(T0 + 10.0)
    assert first is not None
    assert (first.camera_id, first.start, first.end) == ("cam", T0, T0 + 10.0)
    assert first.lines == {
        "gate": {"left_to_right": {"car": 1, "person": 1}, "right_to_left": {"bus": 1}}
    }
    assert engine.aggregate(T0 + 10.5) is None
    run(engine, crossing_down(4), t0=T0 + 12.0)
    second = engine.aggregate(T0 + 20.0)
    assert second is not None
    assert second.start == T0 + 10.0
    assert second.lines == {"gate": {"left_to_right": {"car": 1}}}
    assert engine.counts() == {
        "gate": {"left_to_right": {"car": 2, "person": 1}, "right_to_left": {"bus": 1}}
    }
    third = engine.aggregate(T0 + 30.0)
    assert third is not None
    assert third.lines == {"gate": {}}


def test_counts_is_a_copy() -> None:
    engine = AnalyticsEngine(camera(lines=[GATE]), LABELS, FRAME)
    run(engine, crossing_down(1))
    engine.counts()["gate"]["left_to_right"]["car"] = 99
    assert engine.counts() == {"gate": {"left_to_right": {"car": 1}}}


def test_occupancy_and_time_weighted_mean() -> None:
    cam = camera(zones=[{"id": "bay", "points": SQUARE}], aggregate_interval_s=10)
    engine = AnalyticsEngine(cam, LABELS, FRAME)
    both = frame((1, 0.4, 0.4, "car"), (2, 0.5, 0.5, "car"), (3, 0.6, 0.6, "person"))
    engine.update(both, T0)
    assert engine.occupancy() == {"bay": {"car": 2, "person": 1}}
    engine.update(both, T0 + 5.0)  # held for 5 s
    for k in range(1, 51):  # everyone gone: they exit once forgotten (max_age_s = 1.5 s)
        engine.update(Detections.empty(), T0 + 5.0 + k * DT)
    assert engine.occupancy() == {"bay": {}}
    agg = engine.aggregate(T0 + 10.0)
    assert agg is not None
    # 2 cars for ~6.6 s (5 s seen + 1.6 s until forgotten) of 10 s.
    assert agg.zones["bay"]["car"] == pytest.approx(2 * 6.6 / 10, abs=0.05)
    assert agg.zones["bay"]["person"] == pytest.approx(6.6 / 10, abs=0.05)


def test_mean_speed_per_label() -> None:
    cam = camera(lines=[GATE], speed=FLAT, aggregate_interval_s=30)
    engine = AnalyticsEngine(cam, LABELS, FRAME)
    engine.aggregate(T0)

    def drive(tid: int, kmh: float, x: float) -> list[Detections]:
        step = kmh / 3.6 * DT / 20.0
        return track_frames(tid, [(x, 0.2 + step * k) for k in range(int(0.5 / step))])

    run(engine, merge(drive(1, 20.0, 0.2), drive(2, 40.0, 0.5), drive(3, 30.0, 0.8)))
    agg = engine.aggregate(T0 + 30.0)
    assert agg is not None
    assert agg.mean_speed_kmh["car"] == pytest.approx(30.0, rel=0.05)


def test_zone_events_through_engine() -> None:
    engine = AnalyticsEngine(camera(zones=[{"id": "bay", "points": SQUARE}]), LABELS, FRAME)
    events = run(engine, track_frames(5, path((0.1, 0.5), (0.9, 0.5), 40)))
    kinds = [(e.kind, e.zone_id) for e in events if isinstance(e, ZoneTransition)]
    assert kinds == [("enter", "bay"), ("exit", "bay")]


def test_untracked_rows_and_unknown_class_ids() -> None:
    engine = AnalyticsEngine(camera(lines=[GATE]), ["person"], FRAME)
    frames = track_frames(1, path((0.5, 0.3), (0.5, 0.7), 20))  # class id 2: not in ["person"]
    untracked = [Detections(d.xyxy, d.score, d.class_id) for d in crossing_down(9)]
    events = run(engine, merge(frames, untracked))
    labels = [e.label for e in events if isinstance(e, LineCrossing)]
    assert labels == ["2"]


def test_tracker_and_engine_count_each_car_once() -> None:
    """Raw detections (no ids) through the tracker and engine: three cars, some jitter."""
    rng = np.random.default_rng(3)
    cam = camera(lines=[GATE])
    tracker = make_tracker(cam.tracker)
    engine = AnalyticsEngine(cam, LABELS, FRAME)
    starts = {0.2: 0, 0.5: 15, 0.8: 30}  # x -> first frame
    events: list[AnalyticsEvent] = []
    for k in range(90):
        boxes, scores = [], []
        for x, first in starts.items():
            step = k - first
            if 0 <= step <= 40:
                y = 0.25 + 0.0125 * step + rng.uniform(-0.002, 0.002)
                boxes.append(at(x, y, w=60, h=60))
                scores.append(0.9 if step % 7 else 0.3)  # every 7th frame a weak detection
        dets = Detections.from_arrays(np.array(boxes).reshape(-1, 4), scores, [2] * len(scores))
        ts = T0 + k * DT
        events += engine.update(tracker.update(dets, ts), ts)
    crossings = [e for e in events if isinstance(e, LineCrossing)]
    assert len(crossings) == 3
    assert len({c.track_id for c in crossings}) == 3
    assert engine.counts() == {"gate": {"left_to_right": {"car": 3}}}


def test_every_per_track_store_is_bounded() -> None:
    """Hundreds of short-lived tracks over minutes leave no per-track state behind."""
    cam = camera(
        lines=[GATE],
        zones=[{"id": "bay", "points": SQUARE, "stopped_vehicle_s": 3, "capacity": 50}],
        speed=FLAT,
    )
    engine = AnalyticsEngine(cam, LABELS, FRAME)
    tid = 0
    for k in range(1200):
        if k % 3 == 0:
            tid += 1
        objs = [(tid * 10 + j, 0.1 + 0.08 * j, 0.3 + 0.002 * (k % 200), "car") for j in range(10)]
        engine.update(frame(*objs), T0 + k * DT)
    engine.update(Detections.empty(), T0 + 1200 * DT + 10.0)
    assert all(len(c) == 0 for c in engine._lines)
    assert all(len(z) == 0 for z in engine._zones)
    assert engine._speed is not None
    assert len(engine._speed) == 0
    stopped = [r for rule in engine._rules if isinstance(rule, StoppedVehicle) for r in rule.rules]
    assert stopped and all(len(r) == 0 for r in stopped)


def test_clock_going_back_restarts_the_interval_and_forgets_stale_tracks() -> None:
    engine = AnalyticsEngine(camera(lines=[GATE], aggregate_interval_s=10), LABELS, FRAME)
    run(engine, crossing_down(1)[:5], t0=T0)  # track 1 seen up to T0 + 0.4
    assert len(engine._lines[0]) == 1
    back = T0 - 3600.0
    engine.update(Detections.empty(), back)
    assert len(engine._lines[0]) == 0  # state from the "future" is stale
    assert engine.aggregate(back + 5.0) is None
    run(engine, crossing_down(2), t0=back + 6.0)
    agg = engine.aggregate(back + 10.0)
    assert agg is not None
    assert agg.start == back
    assert agg.lines == {"gate": {"left_to_right": {"car": 1}}}
