"""A rule commanding a sensor board over the firmware bridge: the simulated board on a pty,
the gateway's own sensor reader on the other end, OUTPUT_SET answered by OUTPUT_STATE."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest

from firmware_bridge.messages import OutputSet, OutputState
from gateway.actuation import Actuation
from gateway.config.rules import RuleConfig
from gateway.config.sensors import SensorConfig
from gateway.rules.actuators.bridge import ReaderBridgePorts
from gateway.rules.actuators.registry import ActuatorFactory
from gateway.rules.engine import RulesEngine
from gateway.rules.types import CameraStatus
from gateway.sensors.types import Reading
from gateway.serialports.reader import SensorReader
from gateway.vision.analytics.types import Alert
from simulators.board.board import BoardOptions
from simulators.board.faults import FaultConfig
from simulators.board.runner import BoardRunner
from simulators.sensors.ptyport import PtyPort
from tests.support.rules import wait_for


@pytest.fixture
def line() -> Iterator[PtyPort]:
    pty = PtyPort()
    yield pty
    pty.close()


def bridge_engine(
    reader: SensorReader, **action: Any
) -> tuple[RulesEngine, list[Actuation], dict[str, CameraStatus | None]]:
    cfg = RuleConfig.model_validate(
        {
            "id": "board-beacon",
            "trigger": {"type": "alert", "kind": "pedestrian_in_roadway", "camera": "cam"},
            "actions": [
                {
                    "type": "bridge",
                    "sensor": "board",
                    "node": 3,
                    "output": 1,
                    "active": 1,
                    "idle": 0,
                    "fail_safe": 0,
                    "timeout_s": 0.5,
                    "retry_max_s": 0.2,
                    **action,
                },
            ],
        }
    )
    events: list[Actuation] = []
    status: dict[str, CameraStatus | None] = {"cam": CameraStatus("streaming", 0.0)}
    ports = ReaderBridgePorts({"board": reader}.get)
    engine = RulesEngine(
        [cfg], ActuatorFactory(bridge=ports), events.append, camera_status=status.get
    )
    return engine, events, status


def alert() -> Alert:
    return Alert("cam", "pedestrian_in_roadway", time.time(), zone_id="road", label="person")


def test_board_receives_output_set_and_acknowledges_with_output_state(line: PtyPort) -> None:
    options = BoardOptions(node=3, interval=0.2, seed=4, faults_out=FaultConfig(split=0.3))
    readings: list[Reading] = []
    cfg = SensorConfig(id="board", protocol="rsb", port=line.path, baud=115200)
    reader = SensorReader(cfg, readings.append)
    engine, events, _status = bridge_engine(reader, hold_s=0.4, lease_s=5)
    with BoardRunner(line, options) as runner:
        board = runner.board
        reader.start()
        engine.start()
        try:
            assert wait_for(lambda: any(e.state == "idle" and e.outcome == "ok" for e in events))
            engine.on_analytics([alert()])
            assert wait_for(lambda: [c.value for c in board.output_log] == [1.0, 0.0])
            on, off = board.output_log
            assert off.t - on.t >= 0.4 and on.output == 1 and on.reason == "set"
            assert wait_for(lambda: len(readings) >= 2)  # readings keep flowing meanwhile
        finally:
            engine.stop()
            reader.stop()
    ok = [e for e in events if e.outcome == "ok"]
    assert [e.state for e in ok] == ["idle", "active", "idle", "fail_safe"]
    assert all(e.action_type == "bridge" for e in ok)
    assert board.outputs[1].value == 0.0 and board.outputs[1].fail_safe == 0.0
    assert board.output_sets >= 4
    decoder_stats = reader.health().counters()
    assert int(decoder_stats["responses"]) >= 4


def test_board_falls_back_to_fail_safe_when_the_lease_runs_out(line: PtyPort) -> None:
    """The gateway vanishes while the output is on (no stop, no fail-safe write): the
    board's lease applies the fail-safe value by itself."""
    options = BoardOptions(node=3, interval=0.5, seed=4)
    cfg = SensorConfig(id="board", protocol="rsb", port=line.path, baud=115200)
    reader = SensorReader(cfg, lambda _r: None)
    engine, _events, _status = bridge_engine(reader, hold_s=60, lease_s=0.6, fail_safe=0.5)
    with BoardRunner(line, options) as runner:
        board = runner.board
        reader.start()
        engine.start()
        engine.on_analytics([alert()])
        assert wait_for(lambda: [c.value for c in board.output_log] == [1.0])  # idle was 0
        time.sleep(1.0)
        assert [c.value for c in board.output_log] == [1.0]  # refreshed within the lease
        reader.stop()  # the cable is cut (the engine can no longer reach the board)
        cut = time.monotonic()
        assert wait_for(lambda: [c.reason for c in board.output_log][-1:] == ["lease"])
        assert board.output_log[-1].value == 0.5 and board.output_log[-1].t >= cut
        engine.stop(timeout_s=0.5)
    refreshes = engine.health()[0].outputs[0].refreshes
    assert refreshes >= 2


def test_output_set_payload_round_trip_and_board_refusal(line: PtyPort) -> None:
    options = BoardOptions(node=3, interval=0.5, seed=4)
    cfg = SensorConfig(id="board", protocol="rsb", port=line.path, baud=115200)
    reader = SensorReader(cfg, lambda _r: None)
    engine, events, _status = bridge_engine(reader, output=200, hold_s=1)  # the board has 4
    with BoardRunner(line, options):
        reader.start()
        engine.start()
        try:
            assert wait_for(lambda: any(e.outcome == "failed" for e in events))
        finally:
            engine.stop(timeout_s=0.5)
            reader.stop()
    failed = next(e for e in events if e.outcome == "failed")
    assert "unknown output" in (failed.error or "")
    frame = OutputSet(2, 2, 1, 2, 0, 10000)
    assert OutputSet.unpack(frame.pack()) == frame
    assert OutputState.unpack(OutputState(2, 0, 2, 1, 9000).pack()) == OutputState(2, 0, 2, 1, 9000)
