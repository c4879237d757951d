"""Scripted simulator scenes with exact ground truth: each a way of miscounting a line.

Every scenario (``simulators/camera/scenarios.py``) is played through the same camera
pipeline as the live gateway (tracker, line counter), with the ideal detector (the
visible part of every object, cut by the frame edge and by nearer objects) and with
the demo's trained detector, and every counted crossing must match a true one.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
from click.testing import CliRunner

from gateway.commands.demo import demo_command
from gateway.config.sources import SimulatorSource
from gateway.demo.accuracy import run_scenario
from gateway.errors import UsageError
from gateway.vision.analytics.score import score
from simulators.camera.oracle import MIN_VISIBLE
from simulators.camera.scenarios import SCENARIOS
from simulators.camera.source import SimulatorReader, make_world

L, R = "left_to_right", "right_to_left"
# (line, direction, object id, class, frame) of every true crossing.
TRUTH = {
    "already_past": [("mid", R, 7, "car", 53), ("mid", L, 8, "car", 59)],
    "edges": [
        ("east", R, 3, "person", 9),
        ("west", L, 1, "person", 10),
        ("west", R, 4, "person", 12),
        ("east", L, 2, "person", 13),
        ("west", L, 5, "car", 13),
        ("east", R, 6, "car", 18),
        ("west", L, 7, "bus", 36),
        ("mid", L, 5, "car", 43),
        ("mid", R, 6, "car", 51),
        ("east", L, 5, "car", 73),
        ("mid", L, 7, "bus", 76),
        ("west", R, 6, "car", 84),
        ("mid", R, 3, "person", 89),
        ("mid", L, 1, "person", 94),
        ("east", L, 7, "bus", 115),
    ],
    "bus_occlusion": [
        ("mid", L, 1, "bus", 31),
        ("mid", L, 2, "car", 31),
        ("mid", R, 3, "bus", 35),
        ("mid", R, 4, "car", 35),
    ],
    "standing": [("mid", R, 2, "person", 31), ("mid", L, 4, "person", 63)],
    # Tracked from the doorway with its box cut by the standing person's, on the line
    # side: no side from the rules until it is past; its first (whole) box gives it.
    "behind_standing": [("mid", R, 2, "person", 24)],
    "far_sidewalk": [
        ("mid", L, 4, "person", 13),
        ("mid", R, 5, "person", 34),
        ("mid", L, 6, "person", 65),
        ("mid", R, 7, "person", 95),
        ("mid", L, 8, "person", 116),
    ],
    "pedestrian_in_roadway": [],  # no lines: a zone scene for the rules
}


@pytest.mark.parametrize("name", sorted(SCENARIOS))
def test_scenario_ground_truth(name: str) -> None:
    scenario = SCENARIOS[name]
    world = make_world(SimulatorSource(seed=1), scenario.lines, scenario.spawns)
    while world.t < scenario.duration_s:
        world.step()
    got = [(c.line_id, c.direction, c.object_id, c.cls, c.frame) for c in world.crossings]
    assert got == TRUTH[name]


def test_bus_occlusion_hides_each_car_longer_than_the_tracker_keeps_it() -> None:
    scenario = SCENARIOS["bus_occlusion"]
    reader = SimulatorReader(SimulatorSource(seed=1, realtime=False), (), scenario.spawns)
    reader.open()
    hidden: dict[int, list[int]] = {2: [], 4: []}
    for frame in range(1, 61):
        reader.read()
        assert reader.truth is not None
        for car, frames in hidden.items():
            rows = np.flatnonzero(reader.truth.ids == car)
            if not len(rows) or reader.truth.visible[rows[0]] < MIN_VISIBLE:
                frames.append(frame)
    reader.close()
    for car, crossing in ((2, 31), (4, 35)):
        frames = hidden[car]
        assert crossing in frames
        assert len(frames) >= 20, frames  # 2 s at 10 fps > the tracker's 1.5 s max age


# Crossings still missed, by object id, with why (docs/analytics.md, "Not handled").
# far_sidewalk object 7 with the demo detector was one until a track first boxed together
# with a nearer walker continued the track that had just vanished there.
KNOWN_MISSES: dict[tuple[str, str], list[int]] = {}


@pytest.mark.parametrize("detector", ["truth", "model"])
@pytest.mark.parametrize("name", sorted(SCENARIOS))
def test_every_counted_crossing_is_a_true_one(name: str, detector: str) -> None:
    """far_sidewalk with the demo detector: the tracker moves a counted walker's id onto
    a walker going the other way while the confirming boxes slide across (object 6 was
    missed before the shift was measured from before the confirming run)."""
    run = run_scenario(name, detector)  # type: ignore[arg-type]
    assert len(run.truth) == len(TRUTH[name])
    result = score(run.counted, run.truth)
    assert not result.false_counts, result.table()
    missed = sorted(r.object_id or 0 for r in result.misses)
    assert missed == KNOWN_MISSES.get((name, detector), []), result.table()


def test_unknown_scenario_is_a_usage_error() -> None:
    with pytest.raises(UsageError, match="unknown scenario 'nope'"):
        run_scenario("nope")


def test_crossings_the_detector_never_saw_are_told_apart() -> None:
    """With nothing counted, every crossing is a miss; the unseen ones are exactly the cars
    the bus hides through the whole window around their crossing (no box of them at all);
    the buses and the cars on the ideal detector's boxes elsewhere are seen. The
    evidence is the simulator's boxes and the run's raw detections."""
    run = run_scenario("bus_occlusion", "truth")
    assert all(r.boxes is not None for r in run.truth)
    result = score([], run.truth, detections=run.detections)
    assert sorted((r.object_id, r.frame, r.boxes) for r in result.unseen or ()) == [
        (2, 31, ()),
        (4, 35, ()),
    ]
    assert result.worst(seen=True) == (1.0, 0.0)  # each direction: its bus missed, seen
    # Counted as they are, nothing is missed, so nothing is unseen.
    assert score(run.counted, run.truth, detections=run.detections).unseen == []
    # An object partly in the frame on an edge line is seen by its visible part.
    edges = run_scenario("edges", "truth")
    assert score([], edges.truth, detections=edges.detections).unseen == []


def test_demo_lists_every_registered_scenario() -> None:
    """``gateway demo --list-scenarios`` names every scene --scenario plays, from the
    registry (a scene added there is listed without touching the command)."""
    result = CliRunner().invoke(demo_command, ["--list-scenarios", "--json"])
    assert result.exit_code == 0, result.output
    listed = json.loads(result.output)
    assert [d["name"] for d in listed] == list(SCENARIOS)
    assert all(d["description"] == SCENARIOS[d["name"]].description for d in listed)
    text = CliRunner().invoke(demo_command, ["--list-scenarios"]).output
    assert all(f"{name} (" in text for name in SCENARIOS)


@pytest.mark.parametrize("name", sorted(SCENARIOS))
def test_every_scenario_counts_exactly_at_5_fps(name: str) -> None:
    """A unit whose detector keeps up with 5 frames a second (``fps_limit = 5``, or a
    slow board) sees each scene in half the frames: with the ideal detector every
    crossing still counts once. Before a track could be confirmed over ``confirm_s``
    (two matches 0.2 s apart) instead of only after ``min_hits`` = 3 frames, ``edges``
    lost 2 of its 15 and ``far_sidewalk`` 1 of its 5."""
    run = run_scenario(name, "truth", fps=5.0)
    result = score(run.counted, run.truth)
    assert not result.false_counts, result.table()
    assert not result.misses, result.table()
