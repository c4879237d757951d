"""Rules driving a real Modbus RTU device (pymodbus server on a socat pty pair)."""

from __future__ import annotations

import itertools
import time
from collections.abc import Iterator
from typing import Any

import pytest

from gateway.actuation import Actuation
from gateway.config.rules import RuleConfig
from gateway.rules.actuators.registry import ActuatorFactory
from gateway.rules.engine import RulesEngine
from gateway.rules.types import CameraStatus
from gateway.vision.analytics.types import Alert
from tests.support.rules import ModbusDevice, wait_for


@pytest.fixture
def device() -> Iterator[ModbusDevice]:
    dev = ModbusDevice().start()
    yield dev
    dev.stop()


def beacon_rule(port: str, **timing: Any) -> RuleConfig:
    common = {"port": port, "baud": 115200, "timeout_s": 0.3, "retry_max_s": 0.2, **timing}
    return RuleConfig.model_validate(
        {
            "id": "beacon",
            "trigger": {"type": "alert", "kind": "pedestrian_in_roadway", "camera": "cam"},
            "actions": [
                {"type": "modbus_coil", "address": 3, "fail_safe": False, **common},
                {
                    "type": "modbus_register",
                    "address": 5,
                    "active": 1,
                    "idle": 0,
                    "fail_safe": 9,
                    **common,
                },
            ],
        }
    )


def pedestrian() -> Alert:
    return Alert("cam", "pedestrian_in_roadway", time.time(), zone_id="road", track_id=4,
                 label="person")  # fmt: skip


def beacon_engine(
    device: ModbusDevice, hold_s: float
) -> tuple[RulesEngine, list[Actuation], dict[str, CameraStatus | None]]:
    events: list[Actuation] = []
    status: dict[str, CameraStatus | None] = {"cam": CameraStatus("streaming", 0.0)}
    engine = RulesEngine(
        [beacon_rule(device.path, hold_s=hold_s)],
        ActuatorFactory(gateway_id="gw"),
        events.append,
        camera_status=status.get,
    )
    return engine, events, status


def test_coil_on_within_latency_off_after_hold_fail_safe_on_stop(device: ModbusDevice) -> None:
    engine, events, _status = beacon_engine(device, hold_s=0.5)
    engine.start()
    try:
        assert wait_for(lambda: len(device.coil_writes(3)) == 1)  # idle at start
        alert = pedestrian()
        engine.on_analytics([alert])
        assert wait_for(lambda: [w.value for w in device.coil_writes(3)] == [0, 1, 0])
        on, off = device.coil_writes(3)[1:]
        assert off.mono - on.mono >= 0.5
        # the sign's register shares the bus: its writes queue behind the coil's
        assert wait_for(lambda: [w.value for w in device.register_writes(5)] == [0, 1, 0])
        # The event's latency is the time from the frame to the device's confirmation.
        active = next(e for e in events if e.state == "active" and e.action == 0)
        assert active.outcome == "ok" and not active.late
        assert active.latency_ms >= (on.wall - alert.timestamp) * 1000 - 1
    finally:
        engine.stop()
    assert [w.value for w in device.coil_writes(3)][-1] == 0
    assert [w.value for w in device.register_writes(5)][-1] == 9  # the sign's fail-safe message
    assert [e.cause.reason for e in events if e.state == "fail_safe"] == ["stop", "stop"]
    assert device.coils[3] is False and device.registers[5] == 9


def test_device_gone_is_reported_retried_and_the_latest_state_written_when_back(
    device: ModbusDevice,
) -> None:
    engine, events, status = beacon_engine(device, hold_s=0.3)
    engine.start()
    try:
        assert wait_for(lambda: len(device.register_writes(5)) == 1)
        device.stop_server()  # the device stops answering: writes time out
        engine.on_analytics([pedestrian()])
        assert wait_for(lambda: any(e.outcome == "failed" for e in events), 10)
        time.sleep(1.0)  # the alert's hold runs out while the device is away
        engine.on_analytics([pedestrian()])
        time.sleep(0.1)
        status["cam"] = CameraStatus("stalled", 9.0)  # and then the camera stalls
        time.sleep(0.5)
        health = engine.health()[0]
        assert health.state == "fail_safe" and health.outputs[0].pending
        assert health.outputs[0].failures >= 2 and health.outputs[0].last_error
        device.start_server()
        # What matters is the desired state now: fail-safe, written once the device is back.
        assert wait_for(lambda: device.register_writes(5)[-1:] and
                           device.register_writes(5)[-1].value == 9, 20)  # fmt: skip
        # The device can hold the value before the engine has its answer (or the answer of
        # a device just back is lost and the write retried): wait for the engine's word.
        assert wait_for(lambda: any(e.state == "fail_safe" and e.outcome == "ok" and
                                    e.action == 1 for e in events), 20)  # fmt: skip
    finally:
        engine.stop()
    failed = [e for e in events if e.outcome == "failed" and e.action == 1]
    assert failed and all(e.error for e in failed)
    fail_safe = [
        e for e in events if e.state == "fail_safe" and e.outcome == "ok" and e.action == 1
    ]
    assert fail_safe[0].cause.reason == "camera_not_ok" and fail_safe[0].attempts >= 2


def test_modbus_tcp_register_write_and_device_restart() -> None:
    """The same outputs over Modbus TCP: a sign controller's register, its server restarted."""
    from gateway.localservers import free_port
    from simulators.sensors.relay import RelayBoard

    port = free_port()
    board = RelayBoard(tcp_port=port).start()
    cfg = RuleConfig.model_validate(
        {
            "id": "sign",
            "trigger": {"type": "alert", "kind": "wrong_way", "camera": "cam"},
            "actions": [
                {
                    "type": "modbus_register",
                    "transport": "tcp",
                    "host": "127.0.0.1",
                    "tcp_port": port,
                    "unit": 1,
                    "address": 7,
                    "active": 3,
                    "idle": 0,
                    "fail_safe": 2,
                    "hold_s": 0.3,
                    "timeout_s": 0.3,
                    "retry_max_s": 0.2,
                }
            ],
        }
    )
    events: list[Actuation] = []
    engine = RulesEngine([cfg], ActuatorFactory(), events.append,
                         camera_status={"cam": CameraStatus("streaming", 0.0)}.get)  # fmt: skip
    engine.start()
    try:
        assert wait_for(lambda: [w.value for w in board.register_writes(7)] == [0])
        board.stop_server()  # the controller reboots: connection refused, then back
        engine.on_analytics([Alert("cam", "wrong_way", time.time(), line_id="l1")])
        assert wait_for(lambda: any(e.outcome == "failed" for e in events))
        board.start_server()
        # what was wanted while it was away is written when it is back, then the hold ends
        assert wait_for(lambda: [w.value for w in board.register_writes(7)] == [0, 3, 0], 20)
    finally:
        engine.stop()
        board.stop()
    assert [w.value for w in board.register_writes(7)] == [0, 3, 0, 2]  # fail-safe on stop


@pytest.mark.slow
def test_random_faults_then_reconcile(device: ModbusDevice) -> None:
    """Device outages, camera stalls and alerts at random (fixed seed), then quiet: the
    output converges to idle, every failure is followed by a good write, and the hold
    held on the device's own record (the rate limit's deferral is tested in
    ``test_rules_engine.py``; here it must not bind, so the run ends quickly)."""
    import random

    rng = random.Random(15)
    hold = 0.3
    events: list[Actuation] = []
    status: dict[str, CameraStatus | None] = {"cam": CameraStatus("streaming", 0.0)}
    cfg = beacon_rule(device.path, hold_s=hold, max_changes_per_min=600)
    engine = RulesEngine([cfg], ActuatorFactory(), events.append, camera_status=status.get)
    engine.start()
    server_up = True
    restarts: list[float] = []
    try:
        deadline = time.monotonic() + 8.0
        while time.monotonic() < deadline:
            roll = rng.random()
            if roll < 0.45:
                engine.on_analytics([pedestrian()])
            elif roll < 0.6:
                status["cam"] = rng.choice([CameraStatus("stalled", 9.0), None])
            elif roll < 0.75:
                status["cam"] = CameraStatus("streaming", 0.0)
            elif roll < 0.9:
                if server_up:
                    device.stop_server()
                else:
                    device.start_server()
                    restarts.append(time.monotonic())
                server_up = not server_up
            time.sleep(rng.uniform(0.0, 0.4))
        if not server_up:
            device.start_server()
        status["cam"] = CameraStatus("streaming", 0.0)
        # quiet: the desired state is idle; it must get there (rate limit allowing)
        assert wait_for(lambda: engine.health()[0].outputs[1].state == "idle" and
                           not engine.health()[0].outputs[1].pending, 90)  # fmt: skip
        assert device.registers[5] == 0 and device.coils[3] is False
    finally:
        engine.stop()
    assert device.registers[5] == 9 and device.coils[3] is False  # fail-safe on stop
    for action in (0, 1):
        mine = [e for e in events if e.action == action]
        last_failure = max((i for i, e in enumerate(mine) if e.outcome != "ok"), default=-1)
        assert all(e.outcome == "ok" for e in mine[last_failure + 1 :])
        assert mine[-1].outcome == "ok"
    register = device.register_writes(5)
    assert {w.value for w in register} == {0, 1, 9}  # every state was shown
    for prev, cur in itertools.pairwise(register):
        if prev.value == 1 and cur.value == 0:  # active -> idle: never before the hold
            assert cur.mono - prev.mono >= hold - 0.01, (prev, cur, restarts)
