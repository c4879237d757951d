"""Flow measures on synthetic tracks with exact answers: lanes, queues, movements, config."""

from __future__ import annotations

import re
from typing import Any

import numpy as np
import pytest
from pydantic import ValidationError

from gateway.config.flow import GateConfig
from gateway.config.vision import CameraConfig
from gateway.events import envelope, validate_event
from gateway.events.builder import from_analytics
from gateway.ingest.mapping import event_points
from gateway.vision.analytics.engine import AnalyticsEngine
from gateway.vision.analytics.movements import MovementCounter
from gateway.vision.analytics.stats import Samples, TimeWeighted, percentile
from gateway.vision.analytics.types import (
    AnalyticsEvent,
    FlowReport,
    LaneFlow,
    LineCrossing,
)
from gateway.vision.detections import Detections
from tests.support.analytics_builders import FRAME, LABELS, merge, path, track_frames

DT = 0.1
T0 = 1_700_000_000.0
STOP = {"id": "stop", "points": [[0.0, 0.5], [1.0, 0.5]]}
# 20 m x 20 m of road across the whole frame: 0.05 (normalised) is 1 m.
FLAT = {
    "image_points": [[0.0, 0.0], [1.0, 0.0], [1.0, 1.0], [0.0, 1.0]],
    "world_points": [[0.0, 0.0], [20.0, 0.0], [20.0, 20.0], [0.0, 20.0]],
}
BELOW = [[0.3, 0.5], [0.7, 0.5], [0.7, 1.0], [0.3, 1.0]]
ABOVE = [[0.3, 0.0], [0.7, 0.0], [0.7, 0.5], [0.3, 0.5]]


def camera(flow: dict[str, Any], **kw: Any) -> CameraConfig:
    return CameraConfig.model_validate(
        {"id": "cam", "source": {"type": "simulator"}, "lines": [STOP], "flow": flow, **kw}
    )


def run(engine: AnalyticsEngine, frames: list[Detections]) -> list[AnalyticsEvent]:
    events: list[AnalyticsEvent] = []
    for k, dets in enumerate(frames):
        events += engine.update(dets, T0 + k * DT)
    return events


def reports(events: list[AnalyticsEvent]) -> list[FlowReport]:
    return [e for e in events if isinstance(e, FlowReport)]


def still(tid: int, x: float, y: float, n: int, label: str = "car") -> list[Detections]:
    return track_frames(tid, [(x, y)] * n, label=label)


def pad(frames: list[Detections], n: int) -> list[Detections]:
    """Let ``frames`` start ``n`` frames late."""
    return [Detections.empty()] * n + frames


def until(frames: list[Detections], n: int) -> list[Detections]:
    """Extend with empty frames to ``n`` frames (time goes on)."""
    return frames + [Detections.empty()] * (n - len(frames))


# -- config ---------------------------------------------------------------------------------

LANE = {"id": "l1", "line": "stop"}


@pytest.mark.parametrize(
    ("flow", "extra", "message"),
    [
        ({"lanes": [{"id": "l1", "line": "nope"}]}, {}, "flow.lanes[0].line: no line 'nope'"),
        ({}, {}, "give at least one lane or gate"),
        ({"lanes": [LANE, LANE]}, {}, "lanes: duplicate id l1"),
        (
            {"lanes": [{**LANE, "queue": {"area": BELOW}}]},
            {},
            "queue.area: needs [cameras.speed]",
        ),
        ({"lanes": [{**LANE, "queue": {}}]}, {}, "give exactly one of area"),
        (
            {"lanes": [{**LANE, "queue": {"zones": [BELOW], "zone_lengths_m": [1, 2]}}]},
            {},
            "zone_lengths_m: expected 1 lengths",
        ),
        ({"lanes": [{**LANE, "presence": [[0, 0], [1, 1]]}]}, {}, "at least 3 points"),
        ({"gates": [{"id": "n", "line": "stop"}]}, {}, "entry: a line gate needs"),
        (
            {"gates": [{"id": "n", "line": "stop", "zone": "z", "entry": "left_to_right"}]},
            {},
            "exactly one of line or zone",
        ),
        ({"gates": [{"id": "unknown", "zone": "z"}]}, {}, "'unknown' is reserved"),
        ({"gates": [{"id": "n", "zone": "z"}]}, {}, "flow.gates[0].zone: no zone 'z'"),
        (
            {
                "gates": [
                    {"id": "a", "line": "stop", "entry": "left_to_right"},
                    {"id": "b", "line": "stop", "entry": "right_to_left"},
                ]
            },
            {},
            "gates: stop used by more than one gate",
        ),
        ({"lanes": [LANE], "congestion": {"occupancy": [0.5, 0.2]}}, {}, "heavy < congested"),
        ({"lanes": [LANE], "bogus": 1}, {}, "Extra inputs are not permitted"),
    ],
)
def test_bad_flow_config_names_the_field(flow: dict[str, Any], extra: Any, message: str) -> None:
    with pytest.raises(ValidationError) as info:
        camera(flow, **extra)
    assert message in str(info.value)


# -- lanes ----------------------------------------------------------------------------------


# Cars moving down across the stop line over ``steps`` frames from y 0.3 to 0.7 (8 m):
# steps 10 -> 8 m/s, 20 -> 4 m/s, 40 -> 2 m/s. The line counts a car on the first frame
# its anchor is beyond the dead band (1 % of the diagonal, 14.1 px = 0.0141).
def crossing_frame(steps: int) -> float:
    """When (in frames) a track from 0.3 to 0.7 in ``steps`` frames passes the line at 0.5.

    Headways are measured between the instants the vehicles passed the line (the
    crossings' ``crossed_at``, interpolated), not the frames their crossing was confirmed.
    """
    return steps * 0.2 / 0.4


CARS = [(1, 10, 0, "car"), (2, 20, 25, "bus"), (3, 40, 40, "car")]  # id, steps, delay, label


def test_volume_headway_and_speed_percentiles_at_the_line() -> None:
    flow = {"interval_s": 10.0, "lanes": [{"id": "l1", "line": "stop"}]}
    engine = AnalyticsEngine(camera(flow, speed=FLAT), LABELS, FRAME)
    tracks = [
        pad(track_frames(tid, path((0.5, 0.3), (0.5, 0.7), steps), label), delay)
        for tid, steps, delay, label in CARS
    ]
    (report,) = reports(run(engine, until(merge(*tracks), 101)))
    lane = report.lanes["l1"]
    times = sorted((delay + crossing_frame(steps)) * DT for _, steps, delay, _ in CARS)
    gaps = np.diff(times)
    speeds = [8.0 / (steps * DT) * 3.6 for _, steps, _, _ in CARS]
    assert lane.volume == {"car": 2, "bus": 1}
    assert lane.headways == 2
    assert lane.headway_mean_s == pytest.approx(gaps.mean(), abs=1e-3)
    assert lane.headway_min_s == pytest.approx(gaps.min(), abs=1e-3)
    assert lane.speeds == 3
    assert lane.speed_mean_kmh == pytest.approx(np.mean(speeds), abs=0.05)
    assert lane.speed_p85_kmh == pytest.approx(np.percentile(speeds, 85), abs=0.05)
    assert report.end - report.start == pytest.approx(10.0)


def test_lane_direction_and_area_select_crossings() -> None:
    flow = {
        "lanes": [
            {"id": "down", "line": "stop", "direction": "left_to_right"},
            {"id": "up", "line": "stop", "direction": "right_to_left"},
            {"id": "left-half", "line": "stop", "area": [[0, 0], [0.5, 0], [0.5, 1], [0, 1]]},
        ],
        "interval_s": 5.0,
    }
    engine = AnalyticsEngine(camera(flow), LABELS, FRAME)
    tracks = [
        track_frames(1, path((0.2, 0.3), (0.2, 0.7), 20)),  # down, left half
        track_frames(2, path((0.8, 0.3), (0.8, 0.7), 20)),  # down, right half
        track_frames(3, path((0.3, 0.7), (0.3, 0.3), 20)),  # up, left half
        track_frames(4, path((0.6, 0.3), (0.6, 0.7), 20), label="person"),  # not a vehicle
    ]
    (report,) = reports(run(engine, until(merge(*tracks), 51)))
    assert report.lanes["down"].volume == {"car": 2}
    assert report.lanes["up"].volume == {"car": 1}
    assert report.lanes["left-half"].volume == {"car": 2}
    assert report.lanes["down"].speed_mean_kmh is None  # no calibration


def test_occupancy_is_the_share_of_time_the_presence_zone_is_held() -> None:
    zone = [[0.4, 0.55], [0.6, 0.55], [0.6, 0.65], [0.4, 0.65]]
    flow = {"interval_s": 10.0, "lanes": [{"id": "l1", "line": "stop", "presence": zone}]}
    engine = AnalyticsEngine(camera(flow), LABELS, FRAME)
    # In the zone from frame 10 to frame 39 (3.0 s), then parked outside it.
    parked = pad(still(1, 0.5, 0.6, 30) + still(1, 0.5, 0.9, 80), 10)
    walker = still(2, 0.5, 0.6, 100, label="person")  # not a vehicle: does not occupy
    (report,) = reports(run(engine, until(merge(parked, walker), 101)))
    assert report.lanes["l1"].occupancy == pytest.approx(0.3, abs=1e-4)


@pytest.mark.parametrize(
    ("area", "extent", "positions", "spacing", "vehicles", "length"),
    [
        (BELOW, "anchor", [0.55, 0.7, 0.85, 0.995], 3.5, 4, 9.9),
        (BELOW, "anchor", [0.55, 0.7, 0.85, 0.995], 2.5, 1, 1.0),
        (BELOW, "anchor", [0.7, 0.85], 2.5, 0, 0.0),  # first one too far from the line
        (ABOVE, "anchor", [0.45], 15.0, 1, 1.0),
        (ABOVE, "box", [0.45], 15.0, 1, 2.2),  # the box top is 60 px = 1.2 m farther
    ],
)
def test_area_queue_is_the_run_of_stopped_vehicles_from_the_stop_line(
    area: list[list[float]],
    extent: str,
    positions: list[float],
    spacing: float,
    vehicles: int,
    length: float,
) -> None:
    queue = {"area": area, "extent": extent, "max_spacing_m": spacing}
    flow = {"interval_s": 10.0, "lanes": [{"id": "l1", "line": "stop", "queue": queue}]}
    engine = AnalyticsEngine(camera(flow, speed=FLAT), LABELS, FRAME)
    tracks = [still(i + 1, 0.5, y, 101) for i, y in enumerate(positions)]
    # Moving at 6 m/s through the area, then parked outside it: never queued.
    mover = track_frames(9, path((0.35, 0.99), (0.65, 0.99), 10)) + still(9, 0.9, 0.99, 90)
    (report,) = reports(run(engine, merge(*tracks, mover)))
    lane = report.lanes["l1"]
    assert lane.queue_max_vehicles == vehicles
    assert lane.queue_max_m == pytest.approx(length, abs=0.01)
    # Speeds are known from the 4th frame on (3 positions over 0.3 s): queued from 0.3 s.
    assert lane.queue_mean_m == pytest.approx(length * 9.7 / 10, abs=0.05)


def test_zone_chain_queue_reaches_the_last_unbroken_queued_zone() -> None:
    chain = [[[0.3, y], [0.7, y], [0.7, y + 0.1], [0.3, y + 0.1]] for y in (0.5, 0.6, 0.7)]
    queue = {"zones": chain, "zone_lengths_m": [2.0, 2.0, 2.0], "dwell_s": 2.0}
    flow = {"interval_s": 10.0, "lanes": [{"id": "l1", "line": "stop", "queue": queue}]}
    engine = AnalyticsEngine(camera(flow), LABELS, FRAME)
    first = still(1, 0.5, 0.55, 101)
    third = still(3, 0.5, 0.75, 101)
    second = pad(still(2, 0.5, 0.65, 51), 50)  # from 5.0 s: zone 2 queued from 7.0 s
    (report,) = reports(run(engine, merge(first, third, second)))
    lane = report.lanes["l1"]
    assert lane.queue_max_m == 6.0
    assert lane.queue_max_vehicles == 3
    # 2 m from 2.0 s to 7.0 s, then 6 m to 10 s: (2 * 5 + 6 * 3) / 10.
    assert lane.queue_mean_m == pytest.approx(2.8, abs=0.03)


@pytest.mark.parametrize(
    ("occupancy", "speed", "free", "level"),
    [
        (0.05, None, None, "free"),
        (0.2, None, None, "heavy"),
        (0.35, None, None, "congested"),
        (None, 45.0, 50.0, "free"),
        (None, 30.0, 50.0, "heavy"),
        (0.05, 15.0, 50.0, "congested"),  # the worse of the two
        (None, 15.0, None, None),  # speed without a free-flow speed says nothing
    ],
)
def test_congestion_level(
    occupancy: float | None, speed: float | None, free: float | None, level: str | None
) -> None:
    from gateway.config.flow import CongestionConfig
    from gateway.vision.analytics.lanes import congestion_level

    assert congestion_level(occupancy, speed, free, CongestionConfig()) == level


# -- movements ------------------------------------------------------------------------------

GATES_CAMERA = {
    "lines": [
        {"id": "n", "points": [[0.3, 0.2], [0.7, 0.2]]},
        {"id": "s", "points": [[0.3, 0.8], [0.7, 0.8]]},
        {"id": "w", "points": [[0.2, 0.3], [0.2, 0.7]]},
    ],
    "zones": [{"id": "east", "points": [[0.85, 0.3], [1.0, 0.3], [1.0, 0.7], [0.85, 0.7]]}],
}
GATES = [
    {"id": "N", "line": "n", "entry": "left_to_right"},  # moving down enters
    {"id": "S", "line": "s", "entry": "right_to_left"},  # moving up enters
    {"id": "W", "line": "w", "entry": "right_to_left"},  # moving right enters
    {"id": "E", "zone": "east"},
]


def test_movement_matrix_from_line_and_zone_gates() -> None:
    cam = CameraConfig.model_validate(
        {
            "id": "cam",
            "source": {"type": "simulator"},
            **GATES_CAMERA,
            "flow": {"interval_s": 20.0, "gates": GATES},
        }
    )
    engine = AnalyticsEngine(cam, LABELS, FRAME)
    tracks = [
        track_frames(1, path((0.5, 0.1), (0.5, 0.9), 40)),  # N -> S
        track_frames(2, path((0.5, 0.9), (0.5, 0.5), 20) + path((0.5, 0.5), (0.1, 0.5), 20)[1:]),
        # S -> W above: a left turn
        track_frames(3, path((0.1, 0.5), (0.95, 0.5), 40), label="bus"),  # W -> E (zone)
        track_frames(4, path((0.5, 0.5), (0.5, 0.9), 20)),  # first seen inside: ? -> S
        track_frames(5, path((0.4, 0.1), (0.4, 0.4), 15)),  # N -> lost in the middle
    ]
    (report,) = reports(run(engine, until(merge(*tracks), 201)))
    assert report.movements == {
        "N": {"S": {"car": 1}, "unknown": {"car": 1}},
        "S": {"W": {"car": 1}},
        "W": {"E": {"bus": 1}},
        "unknown": {"S": {"car": 1}},
    }


def crossing(tid: int, line: str, direction: str, ts: float) -> LineCrossing:
    return LineCrossing("cam", line, tid, "car", direction, ts)


def test_movement_state_is_bounded_and_evicted_trips_count_as_unknown() -> None:
    gates = [GateConfig.model_validate(g) for g in GATES[:2]]
    counter = MovementCounter(gates, forget_s=1.5, max_transit_s=60.0, max_tracks=5)
    counter.update([crossing(t, "n", "left_to_right", T0) for t in range(10)], range(10), T0)
    assert len(counter) == 5  # capped: the 5 stalest given up
    counter.update([], [], T0 + 1.0)
    assert len(counter) == 5
    counter.update([], [], T0 + 2.0)  # unseen for 2 s > forget_s: given up
    assert len(counter) == 0
    assert counter.take() == {"N": {"unknown": {"car": 10}}}
    assert counter.take() == {}


def test_a_trip_that_takes_too_long_counts_as_unknown_once() -> None:
    gates = [GateConfig.model_validate(g) for g in GATES[:2]]
    counter = MovementCounter(gates, forget_s=1.5, max_transit_s=3.0)
    counter.update([crossing(1, "n", "left_to_right", T0)], [1], T0)
    for k in range(1, 60):
        counter.update([], [1], T0 + k * 0.1)  # seen every frame, waiting
    counter.update([crossing(1, "s", "left_to_right", T0 + 6.0)], [1], T0 + 6.0)
    assert counter.take() == {"N": {"unknown": {"car": 1}}}


# -- statistics -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("values", "q", "expected"),
    [([], 85, None), ([7.0], 85, 7.0), ([1.0, 2.0], 85, 1.85), ([3.0, 1.0, 2.0, 4.0], 50, 2.5)],
)
def test_percentile_interpolates_between_ranks(
    values: list[float], q: float, expected: float | None
) -> None:
    result = percentile(values, q)
    assert result == (None if expected is None else pytest.approx(expected))


def test_samples_are_bounded() -> None:
    samples = Samples(cap=3)
    for v in range(10):
        samples.add(float(v))
    assert (samples.values, samples.overflow) == ([0.0, 1.0, 2.0], 7)


def test_time_weighted_value_holds_until_the_next_reading() -> None:
    tw = TimeWeighted()
    tw.observe(2.0, 0.0)
    tw.observe(4.0, 1.0)
    tw.observe(1.0, 3.0)
    tw.observe(9.0, 2.0)  # a reading from the past is ignored
    mean, maximum = tw.close(0.0, 4.0)
    assert mean == pytest.approx((2.0 * 1 + 4.0 * 2 + 1.0 * 1) / 4.0)
    assert maximum == 4.0
    assert tw.close(4.0, 5.0) == (1.0, 1.0)  # the last value carries on


# -- event and ingest -----------------------------------------------------------------------


def sample_report() -> FlowReport:
    lane = LaneFlow(
        volume={"car": 12, "bus": 1},
        occupancy=0.2345,
        headway_mean_s=4.5,
        headway_min_s=1.2,
        headways=12,
        speed_mean_kmh=41.0,
        speed_p85_kmh=48.5,
        speeds=13,
        queue_max_m=34.5,
        queue_mean_m=12.0,
        queue_max_vehicles=6,
        queue_mean_vehicles=2.1,
        congestion="heavy",
    )
    empty = LaneFlow(volume={})
    return FlowReport(
        "cam",
        T0,
        T0 + 300,
        lanes={"l1": lane, "l2": empty},
        movements={"N": {"S": {"car": 3}, "unknown": {"bus": 1}}},
    )


def published(report: FlowReport) -> dict[str, Any]:
    draft = from_analytics(report)
    return envelope(draft, seq=7, event_id="0" * 32, gateway="gw-1", site="site-1")


def test_flow_event_is_valid_against_the_published_schema() -> None:
    event = validate_event(published(sample_report()))
    assert event["type"] == "flow"
    assert event["ts"] == event["data"]["end"]
    lane = event["data"]["lanes"]["l1"]
    assert lane["congestion"] == "heavy"
    assert lane["congestion_level"] == 1
    assert event["data"]["lanes"]["l2"] == {"volume": {}, "headways": 0, "speeds": 0}


@pytest.mark.parametrize(
    ("path_", "value", "problem"),
    [
        (("lanes", "l1", "occupancy"), 1.5, "greater than the maximum"),
        (("lanes", "l1", "volume", "car"), -1, "less than the minimum"),
        (("lanes", "l1", "surprise"), 1, "Additional properties"),
        (("movements", "N", "S", "car"), 1.5, "is not of type 'integer'"),
    ],
)
def test_schema_refuses_bad_flow_data(path_: tuple[str, ...], value: Any, problem: str) -> None:
    from gateway.events import event_problems

    event = published(sample_report())
    target = event["data"]
    for key in path_[:-1]:
        target = target[key]
    target[path_[-1]] = value
    assert any(problem in p for p in event_problems(event))


def test_ingest_maps_flow_to_lane_volume_and_movement_points() -> None:
    points = event_points(published(sample_report()))
    by = {(p.measurement, tuple(sorted(p.tags.items()))): p.fields for p in points}
    base = (("gateway", "gw-1"), ("site", "site-1"), ("source", "cam"))
    lane = by[("flow_lane", tuple(sorted((*base, ("lane", "l1")))))]
    assert lane["volume"] == 13
    assert lane["occupancy"] == 0.2345
    assert lane["congestion_level"] == 1.0
    assert lane["queue_max_vehicles"] == 6
    assert lane["seq"] == 7
    car = by[("flow_volume", tuple(sorted((*base, ("lane", "l1"), ("class", "car")))))]
    assert car["count"] == 12
    move = (
        "flow_movement",
        tuple(sorted((*base, ("origin", "N"), ("destination", "S"), ("class", "car")))),
    )
    assert by[move]["count"] == 3
    assert {p.measurement for p in points} == {"flow_lane", "flow_volume", "flow_movement"}


@pytest.mark.parametrize(
    ("path_", "value", "where"),
    [
        (("lanes", "l1", "volume", "car"), -1, "data.lanes.l1.volume.car"),
        (("lanes", "l1", "occupancy"), "high", "data.lanes.l1.occupancy"),
        (("lanes", "l1"), [], "data.lanes.l1: expected an object"),
        (("movements", "N", "S"), 3, "data.movements.N.S: expected an object"),
    ],
)
def test_ingest_refuses_bad_flow_values(path_: tuple[str, ...], value: Any, where: str) -> None:
    from gateway.ingest.mapping import MappingError

    event = published(sample_report())
    target = event["data"]
    for key in path_[:-1]:
        target = target[key]
    target[path_[-1]] = value
    with pytest.raises(MappingError, match=re.escape(where)):
        event_points(event)


def test_prepared_polygon_agrees_with_the_zone_test() -> None:
    from gateway.vision.analytics.polygon import Polygon
    from gateway.vision.analytics.zones import points_in_polygon

    rng = np.random.default_rng(3)
    concave = np.array([[100, 100], [900, 120], [500, 500], [880, 900], [90, 850]], float)
    points = rng.uniform(0, 1000, (2000, 2))
    assert np.array_equal(Polygon(concave).contains(points), points_in_polygon(points, concave))
    boxes = np.concatenate([points, points + rng.uniform(1, 80, (2000, 2))], axis=1)
    overlap = Polygon(concave).overlaps_boxes(boxes)
    inside_any = points_in_polygon(boxes[:, :2], concave) | points_in_polygon(boxes[:, 2:], concave)
    assert overlap[inside_any].all()  # a corner inside always overlaps
    far = boxes[:, 0] > 1000
    assert not overlap[far].any()


def test_a_clock_set_back_restarts_the_interval_and_keeps_the_counts() -> None:
    zone = [[0.4, 0.55], [0.6, 0.55], [0.6, 0.65], [0.4, 0.65]]
    flow = {"interval_s": 10.0, "lanes": [{"id": "l1", "line": "stop", "presence": zone}]}
    engine = AnalyticsEngine(camera(flow), LABELS, FRAME)
    car = track_frames(1, path((0.5, 0.3), (0.5, 0.7), 20))  # crosses at about 1.1 s
    parked = still(1, 0.5, 0.9, 60)  # then parked outside the zone until 8 s
    events: list[AnalyticsEvent] = []
    for k, dets in enumerate(car + parked):
        events += engine.update(dets, T0 + k * DT)
    back = T0 + 3.0  # a time sync sets the clock 5 s back, inside the interval
    for k in range(120):
        events += engine.update(still(1, 0.5, 0.6, 1)[0], back + k * DT)  # in the zone now
    (report,) = reports(events)
    assert report.start == back  # restarted at the new time
    assert report.end - report.start == pytest.approx(10.0)
    lane = report.lanes["l1"]
    assert lane.volume == {"car": 1}  # the crossing before the step is kept
    assert lane.occupancy == pytest.approx(1.0, abs=1e-6)  # in the zone all the new interval


def many(n: int, x: float, y: float, first_id: int = 1) -> Detections:
    from tests.support.analytics_builders import frame

    return frame(*[(first_id + i, x, y, "car") for i in range(n)])


def test_presence_and_queue_state_is_capped_and_forgotten() -> None:
    from gateway.config.flow import QueueConfig
    from gateway.vision.analytics.occupancy import PresenceOccupancy
    from gateway.vision.analytics.queues import ZoneChainQueue

    zone = [(0.3, 0.5), (0.7, 0.5), (0.7, 0.7), (0.3, 0.7)]
    presence = PresenceOccupancy(
        "cam", "l1", zone, classes=["car"], frame_size=FRAME, labels=LABELS,
        forget_s=1.5, extent="box", max_tracks=50,
    )  # fmt: skip
    chain = ZoneChainQueue(QueueConfig(zones=[zone]), FRAME, forget_s=1.5, max_tracks=50)
    for k in range(20):  # 20 frames of 100 new vehicles each
        dets = many(100, 0.5, 0.6, first_id=1 + 100 * k)
        presence.update(dets, T0 + k * DT)
        chain.measure(dets, T0 + k * DT)
        assert presence.held() <= 50
        assert chain.held() <= 50
    presence.update(Detections.empty(), T0 + 10.0)
    chain.measure(Detections.empty(), T0 + 10.0)
    assert presence.held() == chain.held() == 0


def test_speeds_waiting_for_their_track_are_bounded_and_not_lost() -> None:
    from gateway.vision.analytics.lanes import MAX_PENDING

    flow = {"interval_s": 30.0, "lanes": [{"id": "l1", "line": "stop"}]}
    engine = AnalyticsEngine(camera(flow, speed=FLAT), LABELS, FRAME)
    # 10 groups of 30 cars, 0.1 s apart, cross together and vanish right after the line,
    # before their centred speed is due: 300 crossings wait at once, more than the cap.
    # (Seen twice past the line: a side change counts once confirmed by a second sighting.)
    ys = path((0.5, 0.3), (0.5, 0.54), 12)
    events: list[AnalyticsEvent] = []
    for f in range(10 + len(ys)):
        rows = [  # small boxes side by side: a box mostly covered by others counts nothing
            (g * 30 + i + 1, 0.02 + 0.032 * i, ys[f - g][1])
            for g in range(10)
            if 0 <= f - g < len(ys)
            for i in range(30)
        ]
        from tests.support.analytics_builders import CLS, at

        dets = Detections.from_arrays(
            [at(x, y, 10.0, 10.0) for _, x, y in rows],
            [0.9] * len(rows),
            [CLS["car"]] * len(rows),
            [tid for tid, *_ in rows],
        )
        events += engine.update(dets, T0 + f * DT)
    assert len(engine._flow.lanes[0]) <= MAX_PENDING  # type: ignore[union-attr]
    for k in range(400):
        events += engine.update(Detections.empty(), T0 + 3.0 + k * 0.1)
    (report, *_) = reports(events)
    lane = report.lanes["l1"]
    assert sum(lane.volume.values()) == lane.speeds == 300  # every speed kept (at the line)
    assert lane.speed_mean_kmh == pytest.approx(14.4, rel=0.02)


@pytest.mark.parametrize(("extent", "length"), [("anchor", 0.0), ("box", 6.0)])
def test_a_long_vehicle_holds_the_zones_its_body_covers(extent: str, length: float) -> None:
    chain = [[[0.3, y], [0.7, y], [0.7, y + 0.1], [0.3, y + 0.1]] for y in (0.5, 0.6, 0.7)]
    queue = {"zones": chain, "zone_lengths_m": [2.0] * 3, "dwell_s": 1.0, "extent": extent}
    flow = {"interval_s": 5.0, "lanes": [{"id": "l1", "line": "stop", "queue": queue}]}
    engine = AnalyticsEngine(camera(flow), LABELS, FRAME)
    # A bus stopped from 0.52 to 0.75: its anchor is in the last zone, its body in all.
    bus = Detections.from_arrays([[480, 520, 520, 750]], [0.9], [LABELS.index("bus")], [1])
    events: list[AnalyticsEvent] = []
    for k in range(51):
        events += engine.update(bus, T0 + k * DT)
    (report,) = reports(events)
    assert report.lanes["l1"].queue_max_m == length


# -- changed remotely (set_config) ------------------------------------------------------------

SITE_CAMERA = {"id": "cam-a", "source": {"type": "simulator"}, "lines": [STOP]}


def live_settings(tmp_path: Any) -> tuple[Any, Any, list[str]]:
    from gateway.config.patch import to_toml
    from gateway.config.settings import load_settings
    from gateway.runtime.live_settings import LiveSettings

    path = tmp_path / "gateway.toml"
    path.write_text(to_toml({"cameras": [SITE_CAMERA]}))
    restarted: list[str] = []
    live = LiveSettings(load_settings(path), path, lambda cam: restarted.append(cam.id))
    return path, live, restarted


@pytest.mark.parametrize(
    "change",
    [
        {"flow": {"lanes": [{"id": "l1", "line": "stop", "presence": BELOW}], "interval_s": 300}},
        {"drift": {"reference_epoch": 1}},  # accept the current view as the new reference
    ],
)
def test_flow_and_drift_patches_are_applied_to_the_camera_live(
    tmp_path: Any, change: dict[str, Any]
) -> None:
    from gateway.config.settings import load_settings
    from gateway.runtime.live_settings import MergePatch

    path, live, restarted = live_settings(tmp_path)
    result = live.apply_settings(MergePatch({"cameras": [SITE_CAMERA | change]}))
    assert (result.status, result.applied, restarted) == ("applied", ("cam-a",), ["cam-a"])
    saved = load_settings(path).cameras[0]
    assert saved == CameraConfig.model_validate(SITE_CAMERA | change)


@pytest.mark.parametrize(
    ("flow", "problem"),
    [
        ({"lanes": [{"id": "l1", "line": "nope"}]}, "flow.lanes[0].line: no line 'nope'"),
        ({"gates": [{"id": "g", "line": "stop"}]}, "entry: a line gate needs"),
        (
            {"lanes": [{"id": "l1", "line": "stop", "queue": {"area": BELOW}}]},
            "needs [cameras.speed]",
        ),
    ],
)
def test_a_bad_flow_patch_is_refused_and_changes_nothing(
    tmp_path: Any, flow: dict[str, Any], problem: str
) -> None:
    from gateway.errors import ConfigError
    from gateway.runtime.live_settings import MergePatch

    path, live, restarted = live_settings(tmp_path)
    before, running = path.read_bytes(), live.current
    with pytest.raises(ConfigError) as info:
        live.apply_settings(MergePatch({"cameras": [SITE_CAMERA | {"flow": flow}]}))
    assert any(problem in p and p.startswith("cameras[0]") for p in info.value.problems), (
        info.value.problems
    )
    assert path.read_bytes() == before and live.current is running and restarted == []
