"""Sensor config: the documented example loads; bad settings name their field."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from gateway.config.settings import load_settings, validate_settings
from gateway.errors import ConfigError

DOCS = Path(__file__).resolve().parents[3] / "docs" / "sensors.md"


def test_documented_example_validates(tmp_path: Path) -> None:
    text = DOCS.read_text()
    block = re.search(r"```toml\n(.*?)```", text, re.S)
    assert block is not None
    config = tmp_path / "gateway.toml"
    config.write_text(block.group(1))
    settings = load_settings(config)
    assert [s.protocol for s in settings.sensors] == ["pms5003", "nmea", "ops243", "modbus"]
    station = settings.sensors[3]
    assert station.modbus is not None
    assert [r.name for r in station.modbus.registers] == [
        "temperature_c",
        "humidity_pct",
        "pressure_pa",
    ]


@pytest.mark.parametrize(
    ("sensor", "problem"),
    [
        ({"protocol": "pms9000"}, "sensors[0].protocol: unknown protocol 'pms9000'; known: modbus"),
        ({"protocol": "nmea", "options": {"colour": "red"}}, "no option(s) colour"),
        ({"protocol": "ops243", "options": {"unit": "furlongs"}}, "unknown radar unit"),
        ({"protocol": "modbus"}, "at least one register"),
        ({"protocol": "nmea", "baud": 0}, "sensors[0].baud"),
        ({"protocol": "nmea", "reopen_max_s": 0}, "sensors[0].reopen_max_s"),
        ({"protocol": "nmea", "parity": "E"}, "sensors[0].parity: unknown key"),
    ],
)
def test_bad_sensor_settings(sensor: dict[str, object], problem: str) -> None:
    with pytest.raises(ConfigError) as info:
        validate_settings({"sensors": [{"id": "s1", "port": "/dev/ttyUSB0"} | sensor]})
    assert any(problem in line for line in info.value.problems), info.value.problems
