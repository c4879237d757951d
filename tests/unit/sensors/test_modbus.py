"""Modbus RTU polling against pymodbus's serial server over a socat pty pair."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from pydantic import ValidationError

from gateway.config.sensors import ModbusRegister, SensorConfig
from gateway.errors import UsageError
from gateway.serialports.modbus import crc16, crc_ok, plan_blocks, scale
from gateway.serialports.reader import SensorReader
from simulators.sensors.modbus_sim import ModbusSimulator, default_register_map
from tests.support.polling import wait_until
from tests.support.sensors import Sink


def test_crc16_reference_vector() -> None:
    # "read 10 holding registers from 0 on device 1" is sent as 01 03 00 00 00 0A C5 CD
    frame = bytes.fromhex("01030000000ac5cd")
    assert crc16(frame[:-2]) == 0xCDC5
    assert crc_ok(frame)
    assert not crc_ok(frame[:-1] + b"\xce")


def _reg(name: str, address: int, **kw: Any) -> ModbusRegister:
    return ModbusRegister.model_validate({"name": name, "address": address} | kw)


def test_plan_blocks_groups_contiguous_runs() -> None:
    regs = [_reg("c", 10), _reg("a", 0), _reg("b", 1, count=2), _reg("d", 11)]
    blocks = plan_blocks(regs)
    assert [(b.start, b.count, [e.name for e in b.entries]) for b in blocks] == [
        (0, 3, ["a", "b"]),
        (10, 2, ["c", "d"]),
    ]


def test_plan_blocks_limit_and_overlap() -> None:
    regs = [_reg(f"r{i}", i) for i in range(130)]
    assert [b.count for b in plan_blocks(regs)] == [125, 5]
    with pytest.raises(UsageError, match="overlap"):
        plan_blocks([_reg("a", 0, count=2), _reg("b", 1)])


@pytest.mark.parametrize(
    ("kw", "words", "expected"),
    [
        ({}, [1234], 1234),
        ({"signed": True, "scale": 0.1}, [0xFF85], -12.3),
        ({"scale": 0.1}, [0xFF85], 6541.3),  # 65413 unsigned
        ({"count": 2}, [0x0001, 0x8CA5], 101541),
        ({"count": 2, "signed": True}, [0xFFFF, 0xFFFE], -2),
        ({"scale": 2.0, "offset": -40.0}, [30], 20.0),
    ],
)
def test_scale(kw: dict[str, Any], words: list[int], expected: float) -> None:
    assert scale(_reg("x", 0, **kw), words) == pytest.approx(expected)


def test_config_needs_registers_and_unique_names() -> None:
    with pytest.raises(ValidationError, match="at least one register"):
        SensorConfig.model_validate({"id": "m", "protocol": "modbus", "port": "/dev/x"})
    with pytest.raises(ValidationError, match="repeated: a"):
        SensorConfig.model_validate(
            {
                "id": "m",
                "protocol": "modbus",
                "port": "/dev/x",
                "modbus": {"registers": [{"name": "a", "address": 0}, {"name": "a", "address": 1}]},
            }
        )


def _cfg(path: str, registers: list[dict[str, Any]], **modbus: Any) -> SensorConfig:
    return SensorConfig.model_validate(
        {
            "id": "station",
            "protocol": "modbus",
            "port": path,
            "poll_interval_s": 0.05,
            "reopen_max_s": 0.5,
            "modbus": {"registers": registers, "timeout_s": 0.3} | modbus,
        }
    )


@pytest.fixture
def station() -> Iterator[ModbusSimulator]:
    sim = ModbusSimulator(seed=11)
    sim.start()
    yield sim
    sim.stop()


def test_readings_timeout_and_recovery(station: ModbusSimulator) -> None:
    sink = Sink()
    reader = SensorReader(_cfg(station.path, default_register_map()), sink)
    reader.start()
    try:
        wait_until(lambda: sink.count() >= 3, what="readings")
        station.stop_server()
        wait_until(lambda: int(reader.health().counters()["timeouts"]) >= 2, what="timeouts")
        before = sink.count()
        station.start_server()
        wait_until(lambda: sink.count() >= before + 3, what="readings after the server returns")
    finally:
        reader.stop()
    first = sink.readings[0]
    assert first.sensor_id == "station"
    assert set(first.values) == {
        "temperature_c",
        "humidity_pct",
        "pressure_pa",
        "wind_mps",
        "noise_dba",
    }
    assert 95000 <= float(first.values["pressure_pa"]) <= 105000
    assert -40 <= float(first.values["temperature_c"]) <= 60
    assert first.extra["pressure_pa_unit"] == "Pa"
    stats = reader.health().counters()
    assert stats["exceptions"] == 0
    assert stats["bad_checksum"] == 0


def test_exception_response_counted_other_values_kept(station: ModbusSimulator) -> None:
    registers = [*default_register_map(), {"name": "unmapped", "address": 100}]
    sink = Sink()
    reader = SensorReader(_cfg(station.path, registers), sink)
    reader.start()
    try:
        wait_until(lambda: sink.count() >= 3, what="readings")
    finally:
        reader.stop()
    stats = reader.health().counters()
    assert int(stats["exceptions"]) >= 3
    assert stats["last_exception_code"] == 2  # illegal data address
    assert stats["exception_2"] == stats["exceptions"]
    assert "unmapped" not in sink.readings[0].values
    assert "pressure_pa" in sink.readings[0].values


def test_bad_crc_counted_separately() -> None:
    sim = ModbusSimulator(seed=5, faults=frozenset({"badcrc"}), fault_probability=0.5)
    sim.start()
    sink = Sink()
    reader = SensorReader(_cfg(sim.path, default_register_map()), sink)
    reader.start()
    try:
        wait_until(
            lambda: int(reader.health().counters()["bad_checksum"]) >= 2 and sink.count() >= 2,
            what="bad CRCs",
        )
    finally:
        reader.stop()
        sim.stop()
    stats = reader.health().counters()
    assert stats["bad_checksum"] == stats["bad_crc"]
    assert int(stats["bad_crc"]) <= sim.corrupted
    assert stats["good"] == sink.count()


def test_unopenable_modbus_port_retries(tmp_path: Any) -> None:
    reader = SensorReader(_cfg(str(tmp_path / "none"), default_register_map()), Sink())
    reader.start()
    try:
        wait_until(
            lambda: int(reader.health().counters()["open_failures"]) >= 2, what="open failures"
        )
    finally:
        reader.stop()
    assert "cannot open modbus port" in str(reader.health().counters()["last_error"])
