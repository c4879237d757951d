"""The byte budget: usage per period, the level, the gate and the sensor summaries (pure)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from gateway.budget.coarse import MAX_SENSORS, SensorSummaries
from gateway.budget.gate import MAX_HELD, BudgetGate
from gateway.budget.policy import BudgetPolicy
from gateway.budget.traffic import Scene, Truth, scene_drafts
from gateway.budget.usage import Usage, WireUsage
from gateway.config.budget import BudgetConfig
from gateway.config.settings import validate_settings
from gateway.errors import ConfigError
from gateway.events import validate_event
from gateway.events.envelope import Draft, envelope
from tests.support.budget import taken

# 2026-12-01T12:00:00Z: half of the day and 29.5 days of the month left.
NOON = 1_796_126_400.0
DAY = 1_000_000


@pytest.mark.parametrize(
    ("section", "error"),
    [
        ({"bytes_per_day": 1000}, "budget.bytes_per_day: Input should be greater than or equal"),
        ({"bytes_per_day": 2 * DAY, "bytes_per_month": DAY}, "smaller than bytes_per_day"),
        ({"bytes_per_dai": DAY}, "budget.bytes_per_dai: unknown key"),
        ({"sensor_interval_s": 1}, "budget.sensor_interval_s: Input should be greater"),
        ({"resume_ratio": 1.5}, "budget.resume_ratio: Input should be less than 1"),
    ],
)
def test_bad_budget_settings_name_the_field(section: dict[str, object], error: str) -> None:
    with pytest.raises(ConfigError) as info:
        validate_settings({"budget": section})
    assert any(error in line for line in info.value.problems), info.value.problems


def test_the_budget_is_off_by_default() -> None:
    assert not validate_settings({}).budget.enabled
    assert validate_settings({"budget": {"bytes_per_month": DAY}}).budget.enabled


def test_usage_survives_a_restart_and_rolls_over(tmp_path: Path) -> None:
    now = [NOON]
    path = tmp_path / "budget.json"
    meter = WireUsage(path, clock=lambda: now[0])
    meter.observe(5000)
    meter.observe(7000)
    meter.save()
    again = WireUsage(path, clock=lambda: now[0])  # a restart: the link counts from 0
    assert again.usage == Usage("2026-12-01", 7000, "2026-12", 7000)
    again.observe(1000)
    now[0] += 86_400  # the next day, same month
    assert again.observe(1500) == Usage("2026-12-02", 500, "2026-12", 8500)
    now[0] += 31 * 86_400  # next month
    assert again.observe(1600) == Usage("2027-01-02", 100, "2027-01", 100)


@pytest.mark.parametrize("content", ["", "{", "[1]", '{"day_bytes": -5, "day": "2026-12-01"}'])
def test_an_unreadable_usage_file_counts_from_zero(tmp_path: Path, content: str) -> None:
    path = tmp_path / "budget.json"
    path.write_text(content)
    assert WireUsage(path, clock=lambda: NOON).usage.day_bytes == 0


def _usage(day: int, month: int | None = None) -> Usage:
    return Usage("2026-12-01", day, "2026-12", day if month is None else month)


def test_the_level_steps_down_at_most_once_per_window_and_back_after_resume() -> None:
    cfg = BudgetConfig(bytes_per_day=DAY, window_s=60, resume_s=600)
    policy = BudgetPolicy(cfg)
    assert policy.update(_usage(0), NOON, 0) == "full"
    # 100 bytes/s for half a day projects 4.3 MB: beyond the limit.
    assert policy.update(_usage(1000), NOON + 10, 10) == "aggregates"
    assert policy.update(_usage(2000), NOON + 20, 20) == "aggregates"  # within window_s
    assert policy.update(_usage(8000), NOON + 80, 80) == "coarse_sensors"
    assert not policy.over_budget or policy.day.ratio > 1
    for t in range(90, 800, 10):  # quiet: 0 bytes/s, projection = used, well below
        level = policy.update(_usage(8000), NOON + t, t)
    assert level == "aggregates"  # one step back after resume_s, not two
    assert policy.changes == 3


def test_a_limit_reached_goes_straight_to_the_last_level() -> None:
    policy = BudgetPolicy(BudgetConfig(bytes_per_month=DAY))
    assert policy.update(_usage(10, DAY), NOON, 0) == "coarse_sensors"
    assert policy.month.reached


def test_a_restarted_unit_starts_at_the_level_its_kept_usage_asks_for(tmp_path: Path) -> None:
    path = tmp_path / "budget.json"
    usage = {"day": "2026-12-01", "day_bytes": DAY, "month": "2026-12", "month_bytes": DAY}
    path.write_text(json.dumps(usage))
    cfg = BudgetConfig(bytes_per_day=DAY)
    gate = BudgetGate(cfg, WireUsage(path, clock=lambda: NOON), clock=lambda: NOON)
    assert gate.level == "coarse_sensors"  # before any tick
    assert taken(gate.admit([_crossing(1)])) == []


def _crossing(n: int, camera: str = "cam-north") -> Draft:
    data = {
        "camera": camera,
        "line": "l1",
        "track_id": n,
        "label": "car",
        "direction": "left_to_right",
    }
    return Draft("line_crossing", camera, NOON + n, data)


def _aggregate(count: int, camera: str = "cam-north") -> Draft:
    data = {
        "camera": camera,
        "start": "2026-12-01T12:00:00.000Z",
        "end": "2026-12-01T12:01:00.000Z",
        "interval_s": 60.0,
        "lines": {"l1": {"left_to_right": {"car": count}}},
        "zones": {},
        "mean_speed_kmh": {},
    }
    return Draft("aggregate", camera, NOON + 60, data)


def _gate(tmp_path: Path, level: int, **cfg: object) -> BudgetGate:
    gate = BudgetGate(BudgetConfig(bytes_per_day=DAY, **cfg), WireUsage(tmp_path / "b.json"))
    gate.policy.index = level
    return gate


def _valid(draft: Draft) -> None:
    validate_event(envelope(draft, seq=1, event_id="0" * 32, gateway="g", site="s"))


def test_crossings_give_way_to_the_aggregate_that_counts_them(tmp_path: Path) -> None:
    gate = _gate(tmp_path, level=1)
    alert = Draft(
        "alert", "cam-north", NOON, {"camera": "cam-north", "kind": "wrong_way", "details": {}}
    )
    out = taken(gate.admit([_crossing(1), alert, _crossing(2), _crossing(3, "cam-south")]))
    assert out == [alert]  # alerts are never degraded
    (agg,) = taken(gate.admit([_aggregate(2)]))
    assert agg.data["crossings_withheld"] == 2
    assert agg.data["lines"] == _aggregate(2).data["lines"]
    _valid(agg)
    assert gate.health().crossings_held == 1  # cam-south's wait for cam-south's aggregate
    assert taken(gate.flush()) == [_crossing(3, "cam-south")]  # stopping: stored as they are
    gate.policy.index = 0
    assert taken(gate.admit([_crossing(4), _aggregate(1)])) == [_crossing(4), _aggregate(1)]


def test_held_crossings_are_bounded(tmp_path: Path) -> None:
    gate = _gate(tmp_path, level=1)
    out = taken(gate.admit([_crossing(n) for n in range(MAX_HELD + 5)]))
    assert len(out) == 5  # beyond the bound, crossings pass: nothing lost
    assert taken(gate.release("cam-north")) == [_crossing(n) for n in range(MAX_HELD)]


def _reading(sensor: str, t: float, pm: float) -> Draft:
    data = {
        "sensor": sensor,
        "protocol": "pms5003",
        "values": {"pm2_5": pm, "unit": "ug"},
        "extra": {},
    }
    return Draft("sensor_reading", sensor, t, data)


def test_summaries_keep_counts_and_sums() -> None:
    summaries = SensorSummaries(60.0)
    closed: list[Draft] = []
    for i in range(25):
        got = summaries.add(_reading("pm-1", NOON + 10 * i, float(i)))
        assert got is not None
        closed += got
    closed += summaries.flush()
    assert [d.data["summary"]["count"] for d in closed] == [6, 6, 6, 6, 1]
    total = sum(d.data["values"]["pm2_5"] * d.data["summary"]["count"] for d in closed)
    assert total == pytest.approx(sum(range(25)))
    first = closed[0].data
    assert first["values"] == {"pm2_5": 2.5, "unit": "ug"}
    assert first["summary"]["min"] == {"pm2_5": 0.0}
    assert first["summary"]["max"] == {"pm2_5": 5.0}
    for draft in closed:
        _valid(draft)
    assert summaries.add(closed[0]) is None  # a summary is not summarized again


def test_summaries_are_bounded_by_sensor_count() -> None:
    summaries = SensorSummaries(60.0)
    for n in range(MAX_SENSORS):
        assert summaries.add(_reading(f"s{n}", NOON, 1.0)) == []
    assert summaries.add(_reading("one-too-many", NOON, 1.0)) is None
    assert len(summaries) == MAX_SENSORS


def test_the_scene_is_conserved_through_the_gate_at_every_level(tmp_path: Path) -> None:
    """Whatever the level changes, aggregates + summaries carry every crossing and reading."""
    gate = _gate(tmp_path, level=0, sensor_interval_s=60)
    truth = Truth()
    stored: list[Draft] = []
    for second, drafts in enumerate(scene_drafts(Scene(), NOON, 1800, truth)):
        gate.policy.index = (second // 200) % 3  # every level, in and out
        stored += taken(gate.admit(drafts))
        if second % 97 == 0:
            stored += gate.summaries.flush()
    stored += taken(gate.flush())
    aggregates = [d for d in stored if d.type == "aggregate"]
    counted = sum(
        n
        for d in aggregates
        for directions in d.data["lines"].values()
        for labels in directions.values()
        for n in labels.values()
    )
    assert counted == truth.total_crossings
    raw = sum(1 for d in stored if d.type == "line_crossing")
    withheld = sum(int(d.data.get("crossings_withheld", 0)) for d in aggregates)
    assert raw + withheld == truth.total_crossings and withheld > 0
    for sensor in truth.readings:
        mine = [d for d in stored if d.type == "sensor_reading" and d.data["sensor"] == sensor]
        counts = [int(d.data.get("summary", {"count": 1})["count"]) for d in mine]
        assert sum(counts) == truth.readings[sensor]
        for key, expected in truth.sums[sensor].items():
            got = sum(d.data["values"][key] * c for d, c in zip(mine, counts, strict=True))
            assert got == pytest.approx(expected, rel=1e-9)
    json.dumps([d.data for d in stored])  # plain JSON all the way
