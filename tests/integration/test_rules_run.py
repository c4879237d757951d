"""``gateway run`` as a real process driving a real Modbus device, with no MQTT broker at all.

A pedestrian walks into a roadway zone on the simulated camera (the demo detector sees
it); the rule switches a relay coil and a sign register on the Modbus RTU device behind
a pty, holds them, switches them off, and puts them into their fail-safe states when the
camera stalls and when the gateway gets SIGTERM. Every actuation is an event in the
outbox (the broker is unplugged, so that is where they wait).
"""

from __future__ import annotations

import json
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from gateway.config.settings import validate_settings
from gateway.demo.scenario import detector_config
from gateway.events import validate_event
from gateway.localservers import free_port
from tests.support.cli import start_gateway
from tests.support.rules import ModbusDevice, wait_for

pytestmark = pytest.mark.slow

# In the simulator's "pedestrian_in_roadway" scenario a pedestrian walks along the near
# carriageway into this roadway zone about 3.5 s after the camera opens and leaves it at
# about 8 s; nothing else moves. (The stall test uses random traffic, seed 9.)
SCENARIO = "pedestrian_in_roadway"
SEED = 9
ZONE = [[0.40, 0.70], [0.60, 0.70], [0.60, 0.86], [0.40, 0.86]]
COIL, REGISTER = 3, 5
HOLD_S = 2.0
MAX_LATENCY_MS = 1000.0
MAX_FRAME_AGE_S = 3.0  # generous: a loaded machine must not look like a stalled camera


@pytest.fixture
def device() -> Iterator[ModbusDevice]:
    dev = ModbusDevice().start()
    yield dev
    dev.stop()


def config(tmp_path: Path, device: ModbusDevice, source: dict[str, Any]) -> Path:
    common = {"port": device.path, "baud": 115200, "timeout_s": 0.3, "hold_s": HOLD_S}
    data = {
        "gateway": {"id": "rsu-rules", "site": "test", "data_dir": str(tmp_path / "data")},
        "logging": {"level": "info"},
        "detector": detector_config().model_dump(mode="json"),
        "cameras": [{
            "id": "cam", "source": source, "stall_timeout_s": 30,
            "zones": [{"id": "road", "points": ZONE, "roadway": True, "classes": ["person"]}],
        }],
        # Nothing listens on this port: the broker is unplugged for the whole run.
        "mqtt": {"host": "127.0.0.1", "port": free_port(), "reconnect_max_s": 1},
        "rules": [{
            "id": "ped-beacon",
            "trigger": {"type": "alert", "kind": "pedestrian_in_roadway", "camera": "cam",
                        "zone": "road"},
            "conditions": {"max_frame_age_s": MAX_FRAME_AGE_S},
            "max_latency_ms": MAX_LATENCY_MS,
            "actions": [
                {"type": "modbus_coil", "address": COIL, "fail_safe": False, **common},
                {"type": "modbus_register", "address": REGISTER, "active": 1, "idle": 0,
                 "fail_safe": 9, **common},
            ],
        }],
    }  # fmt: skip
    validate_settings(data)  # the test's own config is valid
    path = tmp_path / "gateway.toml"
    path.write_text(_toml(data))
    return path


def _toml(data: dict[str, Any]) -> str:
    from gateway.config.patch import to_toml  # the project's one TOML writer

    return to_toml(data)


def stop(proc: subprocess.Popen[bytes]) -> str:
    proc.send_signal(signal.SIGTERM)
    _out, err = proc.communicate(timeout=60)
    return err.decode(errors="replace")


def stored(tmp_path: Path) -> list[dict[str, Any]]:
    """Every event in the outbox (nothing left it: there is no broker), schema-checked."""
    db = sqlite3.connect(tmp_path / "data" / "outbox.sqlite3")
    try:
        rows = db.execute("SELECT payload FROM events ORDER BY seq").fetchall()
    finally:
        db.close()
    events = [json.loads(row[0]) for row in rows]
    for event in events:
        validate_event(event)
    return events


def actuations(tmp_path: Path) -> list[dict[str, Any]]:
    return [e["data"] for e in stored(tmp_path) if e["type"] == "actuation"]


def values(device: ModbusDevice) -> tuple[list[int], list[int]]:
    coil = [w.value for w in device.coil_writes(COIL)]
    register = [w.value for w in device.register_writes(REGISTER)]
    return coil, register


def test_pedestrian_switches_the_coil_offline_and_sigterm_applies_fail_safe(
    tmp_path: Path, device: ModbusDevice
) -> None:
    source = {"type": "simulator", "scenario": SCENARIO, "realtime": True}
    proc = start_gateway(config(tmp_path, device, source))
    try:
        # fail-safe while the camera starts, idle once it streams, active, idle after the
        # hold: on both outputs (the register's write may land before the coil's; a
        # SIGTERM between the two made the coil's idle write the fail-safe one)
        assert wait_for(lambda: values(device) == ([0, 0, 1, 0], [9, 0, 1, 0]), 60), values(device)
    finally:
        err = stop(proc)
    assert proc.returncode == 0, err[-3000:]
    assert values(device) == ([0, 0, 1, 0, 0], [9, 0, 1, 0, 9]), (values(device), err[-3000:])
    coil, register = values(device)
    assert coil == [0, 0, 1, 0, 0] and register == [9, 0, 1, 0, 9]  # last: fail-safe on SIGTERM
    on, off = device.coil_writes(COIL)[2:4]
    assert off.mono - on.mono >= HOLD_S
    events = actuations(tmp_path)
    by_state = [(e["action"], e["state"], e["reason"]) for e in events if e["outcome"] == "ok"]
    assert by_state[-2:] == [(0, "fail_safe", "stop"), (1, "fail_safe", "stop")] or sorted(
        by_state[-2:]
    ) == [(0, "fail_safe", "stop"), (1, "fail_safe", "stop")]
    active = [e for e in events if e["state"] == "active" and e["action"] == 0]
    assert len(active) == 1 and active[0]["reason"] == "alert"
    assert active[0]["details"]["zone"] == "road" and active[0]["details"]["label"] == "person"
    assert not active[0]["late"], active[0]
    # Measured from outside: the frame's time (in the event) to the coil's arrival.
    frame_ts = _epoch(active[0]["trigger_ts"])
    assert (on.wall - frame_ts) * 1000 < MAX_LATENCY_MS
    assert "gateway stopped" in err
    # health shows the rule and its outputs
    health = [e["data"] for e in stored(tmp_path) if e["type"] == "health"]
    rule = health[0]["rules"]["ped-beacon"]
    assert [o["target"] for o in rule["outputs"]] == [
        f"rtu://{device.path}/unit1/coil{COIL}",
        f"rtu://{device.path}/unit1/register{REGISTER}",
    ]


def test_bad_rule_is_refused_with_its_field_path(tmp_path: Path, device: ModbusDevice) -> None:
    path = config(tmp_path, device, {"type": "simulator", "seed": SEED})
    text = path.read_text().replace('"modbus_register"', '"modbus_regster"')
    path.write_text(text.replace("max_frame_age_s = 3.0", "max_frame_age_s = -1"))
    proc = start_gateway(path)
    _out, err = proc.communicate(timeout=60)
    assert proc.returncode == 2, err
    text = err.decode()
    assert "rules[0].actions[1]: Input tag 'modbus_regster'" in text
    assert "rules[0].conditions.max_frame_age_s: Input should be greater than 0" in text


def _left_fail_safe(register: list[int]) -> bool:
    return len(register) >= 2 and register[0] == 9 and register[-1] in (0, 1)


def test_camera_stall_puts_outputs_into_fail_safe(tmp_path: Path, device: ModbusDevice) -> None:
    port = free_port()
    camera = subprocess.Popen(
        [sys.executable, "-m", "simulators", "camera", "--mjpeg-port", str(port),
         "--seed", str(SEED), "--fps", "10"],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
    )  # fmt: skip
    proc = None
    try:
        assert camera.stdout is not None
        assert camera.stdout.readline().startswith(b"MJPEG:")
        source = {"type": "url", "url": f"http://127.0.0.1:{port}/video"}
        proc = start_gateway(config(tmp_path, device, source))
        # fail-safe while the camera starts, then out of it once frames flow: idle, or active
        # when the random traffic happens to have a pedestrian in the zone at that moment
        assert wait_for(lambda: _left_fail_safe(values(device)[1]), 60), values(device)
        stalled_at = time.monotonic()
        camera.send_signal(signal.SIGSTOP)  # frames stop; the connection stays open
        assert wait_for(lambda: values(device)[1][-1:] == [9], 30), values(device)
        assert device.register_writes(REGISTER)[-1].mono - stalled_at >= MAX_FRAME_AGE_S
        stalled = len(values(device)[1])
        camera.send_signal(signal.SIGCONT)
        # streaming again: back out of fail-safe (idle, or active if a pedestrian is there)
        assert wait_for(lambda: values(device)[1][stalled : stalled + 1] in ([0], [1]), 60)
    finally:
        camera.send_signal(signal.SIGCONT)
        if proc is not None:
            err = stop(proc)
        camera.terminate()
        camera.wait(10)
        if camera.stdout is not None:
            camera.stdout.close()
    assert proc.returncode == 0, err[-3000:]
    stalls = [e for e in actuations(tmp_path) if e["reason"] == "camera_not_ok"]
    assert stalls and stalls[0]["state"] == "fail_safe"
    assert stalls[-1]["details"]["frame_age_s"] >= MAX_FRAME_AGE_S


def _epoch(ts: str) -> float:
    from gateway.events.envelope import parse_ts

    return parse_ts(ts)


def test_simulator_scenario_by_name_and_an_unknown_one() -> None:
    from gateway.config.sources import SimulatorSource
    from gateway.errors import SourceError
    from simulators.camera.source import SimulatorReader

    reader = SimulatorReader(SimulatorSource(scenario=SCENARIO, realtime=False))
    reader.open()
    assert reader.world is not None and [a.cls for a in reader.world.actors] == ["person"]
    reader.close()
    with pytest.raises(SourceError, match=r"no scenario 'nope'.*pedestrian_in_roadway"):
        SimulatorReader(SimulatorSource(scenario="nope")).open()
