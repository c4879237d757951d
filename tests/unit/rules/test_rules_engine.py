"""Rules engine logic: triggers, conditions, holds, rate limits, coalescing, fail-safe.

The actuator here records writes in memory (and can be made slow or failing); the same
engine drives real devices in ``test_rules_modbus.py`` and ``test_rules_run.py``.
"""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest

from gateway.actuation import Actuation, OutputValue
from gateway.config.rules import RuleConfig
from gateway.rules.actuators.base import ActuatorError, WriteContext
from gateway.rules.engine import RulesEngine, in_window
from gateway.rules.triggers import MAX_MEMBERS, ZoneOccupancyEvaluator
from gateway.rules.types import CameraStatus
from gateway.sensors.types import Reading
from gateway.vision.analytics.types import Alert, LineCrossing, ZoneTransition
from tests.support.rules import wait_for

STREAMING = CameraStatus("streaming", 0.05)


class Recorder:
    """An actuator that records (monotonic time, value, state); optionally slow or failing."""

    def __init__(self) -> None:
        self.writes: list[tuple[float, OutputValue, str]] = []
        self.delay_s = 0.0
        self.fail = 0  # fail this many writes
        self.hang = threading.Event()
        self.hang.set()
        self.lock = threading.Lock()

    def open(self) -> None:
        pass

    def write(self, value: OutputValue, context: WriteContext) -> None:
        self.hang.wait(30)
        if self.delay_s:
            time.sleep(self.delay_s)
        with self.lock:
            if self.fail > 0:
                self.fail -= 1
                raise ActuatorError("relay board says no")
            self.writes.append((time.monotonic(), value, context.state))

    def close(self) -> None:
        pass

    def states(self) -> list[str]:
        with self.lock:
            return [s for _t, _v, s in self.writes]


class Factory:
    def __init__(self) -> None:
        self.made: list[Recorder] = []

    def make(self, action: Any) -> Recorder:
        self.made.append(Recorder())
        return self.made[-1]

    def close(self) -> None:
        pass


def coil(**extra: Any) -> dict[str, Any]:
    return {"type": "modbus_coil", "port": "/dev/null", "address": 0, "fail_safe": False, **extra}


Made = tuple[RulesEngine, Recorder, list[Actuation], dict[str, Any]]


def make(
    trigger: dict[str, Any],
    *,
    status: CameraStatus | None = STREAMING,
    conditions: dict[str, Any] | None = None,
    **action: Any,
) -> Made:
    cfg = RuleConfig.model_validate(
        {"id": "r", "trigger": trigger, "conditions": conditions or {}, "actions": [coil(**action)]}
    )
    factory = Factory()
    events: list[Actuation] = []
    camera = {"status": status}
    engine = RulesEngine(
        [cfg], factory, events.append, camera_status=lambda _c: camera["status"], tick_s=0.01
    )
    return engine, factory.made[0], events, camera


ALERT = {"type": "alert", "kind": "pedestrian_in_roadway", "camera": "cam"}


def alert(ts: float | None = None, zone: str = "road") -> Alert:
    return Alert("cam", "pedestrian_in_roadway", ts or time.time(), zone_id=zone, track_id=1,
                 label="person")  # fmt: skip


def test_hold_counts_from_the_devices_confirmation_of_a_slow_switch_on() -> None:
    """A switch-on that takes long to reach the device still shows for the whole hold."""
    engine, rec, _events, _ = make(ALERT, hold_s=0.3)
    engine.start()
    try:
        assert wait_for(lambda: rec.states() == ["idle"])
        rec.hang.clear()  # the bus is slow: the next write reaches the device 0.5 s late
        engine.on_analytics([alert()])
        time.sleep(0.5)
        rec.hang.set()
        assert wait_for(lambda: rec.states() == ["idle", "active", "idle"])
        on, off = rec.writes[1][0], rec.writes[2][0]
        assert off - on >= 0.3, f"the device showed the output on for {off - on:.3f} s"
    finally:
        engine.stop()


def test_alert_switches_on_then_off_after_hold() -> None:
    engine, rec, events, _ = make(ALERT, hold_s=0.3)
    engine.start()
    try:
        assert wait_for(lambda: rec.states() == ["idle"])  # camera streaming: idle at start
        sent = time.monotonic()
        engine.on_analytics([alert()])
        assert wait_for(lambda: rec.states() == ["idle", "active", "idle"])
        _on, off = rec.writes[1][0], rec.writes[2][0]
        assert off - sent >= 0.3  # never before the hold ran out
        assert rec.writes[1][1] is True and rec.writes[2][1] is False
    finally:
        engine.stop()
    assert rec.states()[-1] == "fail_safe"
    active = [e for e in events if e.state == "active"]
    assert active[0].cause.reason == "alert" and active[0].cause.details["zone"] == "road"
    idle = [e for e in events if e.state == "idle"][-1]
    assert idle.cause.reason == "hold_expired"
    assert [e.state for e in events][-1] == "fail_safe" and events[-1].cause.reason == "stop"


def test_a_new_alert_during_the_hold_extends_it_without_a_new_write() -> None:
    engine, rec, _events, _ = make(ALERT, hold_s=0.4)
    engine.start()
    try:
        assert wait_for(lambda: rec.states() == ["idle"])
        engine.on_analytics([alert()])
        assert wait_for(lambda: rec.states() == ["idle", "active"])
        time.sleep(0.2)
        second = time.monotonic()
        engine.on_analytics([alert()])
        assert wait_for(lambda: rec.states() == ["idle", "active", "idle"])
        assert rec.writes[2][0] - second >= 0.4
    finally:
        engine.stop()


@pytest.mark.parametrize(
    ("event", "fires"),
    [
        (Alert("cam", "pedestrian_in_roadway", 0, zone_id="road", label="person"), True),
        (Alert("cam", "pedestrian_in_roadway", 0, zone_id="other", label="person"), False),
        (Alert("cam", "wrong_way", 0, zone_id="road"), False),
        (Alert("cam2", "pedestrian_in_roadway", 0, zone_id="road"), False),
    ],
)
def test_alert_filter(event: Alert, fires: bool) -> None:
    engine, rec, _e, _ = make({**ALERT, "zone": "road"}, hold_s=5)
    engine.start()
    try:
        assert wait_for(lambda: rec.states() == ["idle"])
        engine.on_analytics([event])
        time.sleep(0.15)
        assert ("active" in rec.states()) is fires
    finally:
        engine.stop()


def test_camera_not_streaming_puts_outputs_in_fail_safe_and_back() -> None:
    engine, rec, events, camera = make(ALERT, hold_s=30)
    engine.start()
    try:
        assert wait_for(lambda: rec.states() == ["idle"])
        engine.on_analytics([alert()])
        assert wait_for(lambda: rec.states()[-1:] == ["active"])
        camera["status"] = CameraStatus("streaming", 5.0)  # frames stopped arriving
        assert wait_for(lambda: rec.states()[-1:] == ["fail_safe"])  # despite the 30 s hold
        stalled = [e for e in events if e.state == "fail_safe"][-1]
        assert stalled.cause.reason == "camera_not_ok"
        assert stalled.cause.details["frame_age_s"] == 5.0
        camera["status"] = STREAMING
        assert wait_for(lambda: rec.states()[-1:] == ["idle"])
    finally:
        engine.stop()


def test_camera_ok_false_keeps_driving_while_the_camera_is_down() -> None:
    engine, rec, _e, _ = make(ALERT, hold_s=30, status=None, conditions={"camera_ok": False})
    engine.start()
    try:
        assert wait_for(lambda: rec.states() == ["idle"])
        engine.on_analytics([alert()])
        assert wait_for(lambda: rec.states() == ["idle", "active"])
    finally:
        engine.stop()


def enter(track: int, ts: float, label: str = "person", zone: str = "road") -> ZoneTransition:
    return ZoneTransition("cam", zone, track, label, "enter", ts)


def leave(track: int, ts: float, label: str = "person", zone: str = "road") -> ZoneTransition:
    return ZoneTransition("cam", zone, track, label, "exit", ts, dwell_s=1.0)


def test_zone_occupancy_with_min_duration_and_labels() -> None:
    trigger = {"type": "zone_occupancy", "camera": "cam", "zone": "road", "min_count": 2,
               "labels": ["person"]}  # fmt: skip
    engine, rec, events, _ = make(trigger, hold_s=0, conditions={"min_duration_s": 0.3})
    engine.start()
    try:
        assert wait_for(lambda: rec.states() == ["idle"])
        now = time.time()
        engine.on_analytics([enter(1, now), enter(2, now, label="car")])  # a car does not count
        time.sleep(0.5)
        assert rec.states() == ["idle"]
        started = time.monotonic()
        engine.on_analytics([enter(3, time.time())])
        assert wait_for(lambda: rec.states() == ["idle", "active"])
        assert rec.writes[1][0] - started >= 0.3 - 0.02  # min_duration_s from the 2nd enter
        engine.on_analytics([leave(3, time.time())])
        assert wait_for(lambda: rec.states() == ["idle", "active", "idle"])
    finally:
        engine.stop()
    active = next(e for e in events if e.state == "active")
    assert active.cause.details["occupancy"] == 2


def test_zone_dwell_fires_when_a_track_has_stayed_long_enough() -> None:
    trigger = {"type": "zone_dwell", "camera": "cam", "zone": "road", "dwell_s": 0.4}
    engine, rec, events, _ = make(trigger, hold_s=0)
    engine.start()
    try:
        assert wait_for(lambda: rec.states() == ["idle"])
        entered = time.monotonic()
        engine.on_analytics([enter(7, time.time(), label="car")])
        assert wait_for(lambda: rec.states() == ["idle", "active"])
        assert rec.writes[1][0] - entered >= 0.4 - 0.02
        engine.on_analytics([leave(7, time.time(), label="car")])
        assert wait_for(lambda: rec.states() == ["idle", "active", "idle"])
    finally:
        engine.stop()
    active = next(e for e in events if e.state == "active")
    assert active.cause.reason == "dwell" and active.cause.details["track_id"] == 7


def test_line_rate_over_a_window() -> None:
    trigger = {"type": "line_rate", "camera": "cam", "line": "l1", "min_count": 3,
               "window_s": 0.5, "direction": "left_to_right"}  # fmt: skip
    engine, rec, _e, _ = make(trigger, hold_s=0)
    engine.start()

    def cross(track: int, direction: str = "left_to_right") -> LineCrossing:
        return LineCrossing("cam", "l1", track, "car", direction, time.time())

    try:
        assert wait_for(lambda: rec.states() == ["idle"])
        engine.on_analytics([cross(1), cross(2), cross(3, "right_to_left")])
        time.sleep(0.1)
        assert rec.states() == ["idle"]
        engine.on_analytics([cross(4)])
        assert wait_for(lambda: rec.states() == ["idle", "active"])
        # no more crossings: the window passes and the level falls
        assert wait_for(lambda: rec.states() == ["idle", "active", "idle"])
    finally:
        engine.stop()


def test_sensor_limit_with_clear_margin_and_staleness() -> None:
    trigger = {"type": "sensor", "sensor": "pm", "value": "pm2_5", "above": 50,
               "clear_margin": 10, "max_age_s": 0.5}  # fmt: skip
    engine, rec, events, _ = make(trigger, hold_s=0)

    def reading(value: float) -> Reading:
        return Reading("pms5003", {"pm2_5": value}, time.time(), "pm")

    engine.start()
    try:
        assert wait_for(lambda: rec.states() == ["fail_safe"])  # no reading yet: unknown
        engine.on_reading(reading(20))
        assert wait_for(lambda: rec.states() == ["fail_safe", "idle"])
        engine.on_reading(reading(51))
        assert wait_for(lambda: rec.states()[-1:] == ["active"])
        engine.on_reading(reading(45))  # inside the clear margin: stays on
        time.sleep(0.1)
        assert rec.states()[-1] == "active"
        engine.on_reading(reading(39))
        assert wait_for(lambda: rec.states()[-1:] == ["idle"])
        # the sensor goes quiet: stale after max_age_s
        assert wait_for(lambda: rec.states()[-1:] == ["fail_safe"])
    finally:
        engine.stop()
    assert any(e.cause.reason == "sensor_stale" for e in events)


def test_a_slow_actuator_never_blocks_the_caller_and_the_latest_state_wins() -> None:
    engine, rec, _events, _ = make(ALERT, hold_s=0.05)
    engine.start()
    try:
        assert wait_for(lambda: rec.states() == ["idle"])
        rec.hang.clear()  # the device stops answering
        engine.on_analytics([alert()])
        time.sleep(0.1)
        started = time.monotonic()
        for _ in range(200):
            engine.on_analytics([alert()])
        assert time.monotonic() - started < 2.0  # (generous: 200 calls, no waiting on the device)
        rec.hang.set()
        assert wait_for(lambda: rec.states()[-1:] == ["idle"])
    finally:
        engine.stop()
    # The writes were coalesced: not one per alert.
    assert len(rec.states()) <= 5


def test_failing_writes_are_retried_reported_and_later_triggers_still_apply() -> None:
    engine, rec, events, camera = make(ALERT, hold_s=30, retry_max_s=0.05)
    engine.start()
    try:
        assert wait_for(lambda: rec.states() == ["idle"])
        rec.fail = 5
        engine.on_analytics([alert()])
        assert wait_for(lambda: rec.states() == ["idle", "active"])
        camera["status"] = None
        assert wait_for(lambda: rec.states() == ["idle", "active", "fail_safe"])
    finally:
        engine.stop()
    failed = [e for e in events if e.outcome == "failed"]
    assert len(failed) == 1 and failed[0].state == "active"  # reported once, not per retry
    ok = next(e for e in events if e.outcome == "ok" and e.state == "active")
    assert ok.attempts == 6
    health = engine.health()[0].outputs[0]
    assert health.failures == 5 and health.retries == 4


def test_rate_limit_defers_changes_without_losing_the_last_one() -> None:
    engine, rec, _events, _ = make(ALERT, hold_s=0.01, max_changes_per_min=3)
    engine.start()
    try:
        assert wait_for(lambda: rec.states() == ["idle"])  # change 1
        for _ in range(5):
            engine.on_analytics([alert()])
            time.sleep(0.08)
        time.sleep(0.3)
        assert rec.states() == ["idle", "active", "idle"]  # 3 changes in the minute
        assert engine.health()[0].outputs[0].deferred >= 1
    finally:
        engine.stop(timeout_s=1)
    assert rec.states()[-1] == "fail_safe"  # fail-safe is never rate limited


def test_min_off_delays_switching_on_again() -> None:
    engine, rec, _events, _ = make(ALERT, hold_s=0.05, min_off_s=0.5)
    engine.start()
    try:
        assert wait_for(lambda: rec.states() == ["idle"])
        engine.on_analytics([alert()])
        assert wait_for(lambda: rec.states() == ["idle", "active", "idle"])
        engine.on_analytics([alert()])
        assert wait_for(lambda: rec.states() == ["idle", "active", "idle", "active"])
        assert rec.writes[3][0] - rec.writes[2][0] >= 0.5 - 0.02
    finally:
        engine.stop()


def test_zone_members_are_bounded() -> None:
    from gateway.config.rules import ZoneOccupancyTrigger

    evaluator = ZoneOccupancyEvaluator(
        ZoneOccupancyTrigger(type="zone_occupancy", camera="cam", zone="road")
    )
    for track in range(MAX_MEMBERS + 50):
        evaluator.feed(enter(track, 1.0))
    assert len(evaluator.members) == MAX_MEMBERS and evaluator.evicted == 50
    assert 0 not in evaluator.members and MAX_MEMBERS + 49 in evaluator.members


@pytest.mark.parametrize(
    ("window", "local", "inside"),
    [
        ({"start": "06:00", "end": "22:00"}, (2026, 12, 1, 12, 0), True),
        ({"start": "06:00", "end": "22:00"}, (2026, 12, 1, 22, 0), False),
        ({"start": "22:00", "end": "06:00"}, (2026, 12, 1, 23, 30), True),
        ({"start": "22:00", "end": "06:00"}, (2026, 12, 2, 5, 59), True),
        ({"start": "22:00", "end": "06:00"}, (2026, 12, 2, 6, 0), False),
        # 2026-12-01 is a Tuesday; the night from Tuesday belongs to Tuesday
        ({"start": "22:00", "end": "06:00", "days": ["tue"]}, (2026, 12, 2, 1, 0), True),
        ({"start": "22:00", "end": "06:00", "days": ["wed"]}, (2026, 12, 2, 1, 0), False),
    ],
)
def test_time_of_day_window(window: dict[str, Any], local: tuple[int, ...], inside: bool) -> None:
    from gateway.config.rules import TimeWindow

    epoch = time.mktime((*local, 0, 0, 0, -1))
    assert in_window(TimeWindow.model_validate(window), epoch) is inside


def test_a_failed_switch_on_that_reached_the_device_still_holds() -> None:
    """The switch-on reaches the device but its echo is lost; meanwhile the camera blips
    (fail-safe, then back, faster than the output could act). The device is on: it must
    not be switched off before the hold (a short on-blip is what the hold prevents)."""
    hold = 2.0
    engine, rec, _events, camera = make(ALERT, hold_s=hold, retry_max_s=5)
    echo_lost, release = threading.Event(), threading.Event()
    on_at: list[float] = []
    original = rec.write

    def write(value: OutputValue, context: WriteContext) -> None:
        if value is True and echo_lost.is_set():
            on_at.append(time.monotonic())  # the device takes it ...
            release.wait(10)
            echo_lost.clear()
            raise ActuatorError("no echo")  # ... but its answer never comes back
        original(value, context)

    rec.write = write  # type: ignore[method-assign]
    engine.start()
    try:
        assert wait_for(lambda: rec.states() == ["idle"])
        echo_lost.set()
        engine.on_analytics([alert()])
        assert wait_for(lambda: len(on_at) == 1)
        camera["status"] = CameraStatus("stalled", 9.0)
        assert wait_for(lambda: engine.health()[0].state == "fail_safe")
        camera["status"] = STREAMING
        assert wait_for(lambda: engine.health()[0].state == "idle")
        release.set()  # the lost echo times out now
        assert wait_for(lambda: rec.states()[-1:] == ["idle"] and len(rec.states()) > 1, 10)
    finally:
        engine.stop()
    off_at = rec.writes[1][0]
    assert off_at - on_at[0] >= hold
