"""``gateway rules list|test`` against a real Modbus relay board on a pty."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from gateway.config.patch import to_toml
from tests.support.cli import run_cli
from tests.support.rules import ModbusDevice


@pytest.fixture
def device() -> Iterator[ModbusDevice]:
    dev = ModbusDevice().start()
    yield dev
    dev.stop()


def write_config(tmp_path: Path, port: str) -> Path:
    data: dict[str, Any] = {
        "cameras": [{"id": "cam", "source": {"type": "simulator"}, "zones": [
            {"id": "road", "points": [[0, 0], [1, 0], [1, 1]], "roadway": True}]}],
        "rules": [{
            "id": "beacon",
            "trigger": {"type": "alert", "kind": "pedestrian_in_roadway", "camera": "cam"},
            "actions": [
                {"type": "modbus_coil", "port": port, "baud": 115200, "address": 2,
                 "fail_safe": False, "timeout_s": 0.3},
                {"type": "modbus_register", "port": port, "baud": 115200, "address": 4,
                 "active": 7, "idle": 0, "fail_safe": 9, "timeout_s": 0.3},
            ],
        }],
    }  # fmt: skip
    path = tmp_path / "gateway.toml"
    path.write_text(to_toml(data))
    return path


def gateway(*args: str) -> subprocess.CompletedProcess[str]:
    return run_cli("gateway", "rules", *args)


def test_list_and_test_drive_the_real_outputs(tmp_path: Path, device: ModbusDevice) -> None:
    config = write_config(tmp_path, device.path)
    listed = gateway("list", "--config", str(config))
    assert listed.returncode == 0, listed.stderr
    assert "beacon: alert(camera=cam, kind=pedestrian_in_roadway)" in listed.stdout
    assert "register4: active=7 idle=0 fail_safe=9" in listed.stdout
    tested = gateway("test", "--config", str(config), "beacon", "--hold", "0.2", "--json")
    assert tested.returncode == 0, tested.stderr
    rows = [json.loads(line) for line in tested.stdout.splitlines()]
    assert [(r["action"], r["state"], r["ok"]) for r in rows] == [
        (0, "active", True), (1, "active", True), (0, "fail_safe", True), (1, "fail_safe", True)
    ]  # fmt: skip
    assert [w.value for w in device.coil_writes(2)] == [1, 0]
    assert [w.value for w in device.register_writes(4)] == [7, 9]


def test_a_failing_output_and_an_unknown_rule(tmp_path: Path) -> None:
    config = write_config(tmp_path, str(tmp_path / "no-such-tty"))
    tested = gateway("test", "--config", str(config), "beacon", "--hold", "0")
    assert tested.returncode == 1
    assert "FAILED: cannot open modbus rtu://" in tested.stdout
    assert "4 write(s) failed" in tested.stderr
    unknown = gateway("test", "--config", str(config), "nope")
    assert unknown.returncode == 2 and "no rule 'nope'" in unknown.stderr
