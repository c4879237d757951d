"""The fault campaign's schedule: reproducible, complete, non-overlapping per target."""

from __future__ import annotations

import itertools

import pytest

from gateway.bench.chaos.plan import KINDS, TIMELINES, Targets, plan

TARGETS = Targets(("rsu-1", "rsu-2", "rsu-3"), ("a", "b"), "rsu-1", "rsu-2")


@pytest.mark.parametrize("seconds", [90, 180, 1800])
@pytest.mark.parametrize("seed", [1, 2, 3])
def test_every_kind_of_fault_is_played_within_the_run(seconds: float, seed: int) -> None:
    faults = plan(seconds, seed, TARGETS)
    assert {f.kind for f in faults} == set(KINDS)
    assert all(f.at_s >= 15.0 and f.end_s <= seconds * 0.9 + 0.2 for f in faults)


@pytest.mark.parametrize("seed", [1, 2, 3, 4])
def test_faults_of_one_timeline_never_overlap(seed: int) -> None:
    faults = plan(1800, seed, TARGETS)
    for line in TIMELINES.values():
        mine = [f for f in faults if f.kind in line.kinds]
        for first, second in itertools.pairwise(mine):
            assert first.end_s <= second.at_s + 0.2, (first, second)


def test_broker_outages_are_2_to_120_s_and_take_both_persistence_modes() -> None:
    outages = [f for f in plan(1800, 5, TARGETS) if f.kind.startswith("broker_")]
    assert all(2.0 <= f.hold_s <= 120.0 for f in outages)
    assert {f.persistence for f in outages} == {True, False}
    assert max(f.hold_s for f in outages) > 60  # long ones too, not only short ones


@pytest.mark.parametrize(
    ("targets", "absent"),
    [
        (Targets(("g",), ("a",), None, "g"), "disk_full"),
        (Targets(("g",), ("a",), "g", None), "clock_step"),
    ],
)
def test_a_fault_without_its_target_is_not_planned(targets: Targets, absent: str) -> None:
    assert absent not in {f.kind for f in plan(600, 1, targets)}


def test_the_seed_decides_the_plan() -> None:
    assert plan(600, 9, TARGETS) == plan(600, 9, TARGETS)
    assert plan(600, 9, TARGETS) != plan(600, 10, TARGETS)


def test_clock_steps_go_both_ways() -> None:
    steps = [f.offset_s for f in plan(1800, 3, TARGETS) if f.kind == "clock_step"]
    assert min(steps) < 0 < max(steps)


@pytest.mark.parametrize("seconds", [300, 600, 1800])
@pytest.mark.parametrize("seed", [1, 5, 6, 556])
def test_a_run_of_5_minutes_or_more_takes_the_broker_down_for_2_s_and_for_about_2_minutes(
    seconds: float, seed: int
) -> None:
    outages = [f for f in plan(seconds, seed, TARGETS) if f.kind in ("broker_kill", "broker_stop")]
    assert min(f.hold_s for f in outages) == 2.0
    assert max(f.hold_s for f in outages) >= 108.0
    assert all(f.hold_s <= 120.0 for f in outages)


def test_a_run_too_short_for_a_2_minute_outage_draws_every_length() -> None:
    outages = [f for f in plan(240, 5, TARGETS) if f.kind.startswith("broker_")]
    assert max(f.hold_s for f in outages) < 60.0
