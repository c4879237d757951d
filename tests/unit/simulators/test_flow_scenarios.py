"""Flow measures against the simulated world's exact truth (docs/analytics.md tolerances).

Two scenarios from ``simulators/camera/flow_scenarios.py``, seen by a top-down mast
camera and detected by the truth-based detector (1 px box jitter, 3 % of objects missed
per frame); tracker, lines, zones and flow measures are the gateway's own. The truth
comes from the world's log, never from the pipeline (``simulators/camera/flow_truth.py``).
"""

from __future__ import annotations

from collections import defaultdict
from functools import cache

import numpy as np
import pytest

from simulators.camera.flow_scenarios import SCENARIOS, Pair, Run, compare, run
from simulators.camera.intersection import Intersection, IntersectionConfig
from simulators.camera.mount import Mount
from simulators.camera.topdown import TopDownRenderer

# measure -> largest |measured - true| allowed per lane and interval. Spot speeds at a
# stop line: a vehicle pulling away from the queue gains speed over its own length, and
# the camera's anchor is its rear on approaches moving away from the camera (its front
# on the others) while the truth is taken at its centre: one vehicle's reading differs
# by up to about a * L / (2 v), 5-6 km/h for a car at 15 km/h; the mean is much closer.
# The same offset moves crossing instants by L / (2 v) (0.75 s for a car pulling away at
# 3 m/s), which shows in the mean headway of an interval with few vehicles.
TOLERANCE = {
    "volume": 1.0,
    "movement": 1.0,
    "occupancy": 0.02,
    "headway_mean_s": 1.0,
    "speed_mean_kmh": 7.0,
    "speed_p85_kmh": 7.0,
    "queue_max_m": 8.0,
    "queue_mean_m": 2.5,
    "queue_max_vehicles": 1.0,
    "queue_chain_max_m": 8.5,  # quantised to 7.5 m zones, a zone held by any part of a box
    "congestion_level": 0.0,
}
# measure -> largest mean |error| over all lanes and intervals of a run
MEAN_TOLERANCE = {
    "volume": 0.1,
    "movement": 0.1,
    "occupancy": 0.005,
    "headway_mean_s": 0.25,
    "speed_mean_kmh": 2.0,
    "speed_p85_kmh": 2.5,
    "queue_max_m": 3.0,
    "queue_mean_m": 1.0,
    "queue_max_vehicles": 0.4,
    "queue_chain_max_m": 3.0,
    "congestion_level": 0.0,
}


@cache
def scenario_run(name: str) -> tuple[Run, tuple[Pair, ...]]:
    result = run(SCENARIOS[name](), 125.0)
    return result, tuple(compare(result))


@pytest.mark.slow
@pytest.mark.parametrize("name", ["intersection", "queueing-lane"])
def test_every_flow_measure_matches_the_world(name: str) -> None:
    result, pairs = scenario_run(name)
    assert len(result.reports) == 2  # two full 60 s intervals
    errors: dict[str, list[float]] = defaultdict(list)
    for pair in pairs:
        if pair.error is None:
            continue
        errors[pair.measure].append(abs(pair.error))
        assert abs(pair.error) <= TOLERANCE[pair.measure], pair
    assert set(errors) == set(TOLERANCE)  # every measure was compared
    for measure, values in errors.items():
        assert float(np.mean(values)) <= MEAN_TOLERANCE[measure], (measure, values)
    # The scenes are what they claim: turning traffic, and a queue that builds and clears.
    trips = [p for p in pairs if p.measure == "movement" and (p.true or 0) > 0]
    assert len({p.lane.split(":")[0] for p in trips}) >= (8 if name == "intersection" else 3)
    queues = [p.true for p in pairs if p.measure == "queue_max_vehicles" and p.true]
    assert max(q for q in queues if q is not None) >= 4


def test_the_mount_moves_the_picture_and_the_truth_together() -> None:
    world = Intersection(IntersectionConfig(seed=2, warmup_s=20.0))
    world.step()
    still = TopDownRenderer(320, 320, seed=2)
    moved = TopDownRenderer(320, 320, seed=2, mount=Mount(shift_px=(12.0, -5.0)))
    _, truth = still.render(world)
    _, shifted = moved.render(world)
    assert len(truth) > 0
    inside = (truth.xyxy[:, 0] > 15) & (truth.xyxy[:, 2] < 305) & (truth.xyxy[:, 1] > 8)
    delta = shifted.xyxy[inside] - truth.xyxy[inside]
    assert np.allclose(delta[:, [0, 2]], 12.0, atol=0.01)
    assert np.allclose(delta[:, [1, 3]], -5.0, atol=0.01)
