"""Rules driving a real Modbus RTU device (pymodbus server on a socat pty pair)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest

from gateway.config.rules import RuleConfig
from gateway.rules.actuators.registry import ActuatorFactory
from gateway.rules.engine import RulesEngine
from gateway.rules.types import Actuation, CameraStatus
from gateway.vision.analytics.types import Alert
from tests.rules_support import ModbusDevice


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
        assert device.wait(lambda: len(device.coil_writes(3)) == 1)  # idle at start
        alert = pedestrian()
        engine.on_analytics([alert])
        assert device.wait(lambda: [w.value for w in device.coil_writes(3)] == [0, 1, 0])
        on, off = device.coil_writes(3)[1:]
        assert off.mono - on.mono >= 0.5
        assert [w.value for w in device.register_writes(5)] == [0, 1, 0]
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
        assert device.wait(lambda: len(device.register_writes(5)) == 1)
        device.stop_server()  # the device stops answering: writes time out
        engine.on_analytics([pedestrian()])
        assert device.wait(lambda: any(e.outcome == "failed" for e in events), 10)
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
        assert device.wait(lambda: device.register_writes(5)[-1:] and
                           device.register_writes(5)[-1].value == 9, 20)  # fmt: skip
    finally:
        engine.stop()
    failed = [e for e in events if e.outcome == "failed" and e.action == 1]
    assert failed and all(e.error for e in failed)
    fail_safe = [
        e for e in events if e.state == "fail_safe" and e.outcome == "ok" and e.action == 1
    ]
    assert fail_safe[0].cause.reason == "camera_not_ok" and fail_safe[0].attempts >= 2
