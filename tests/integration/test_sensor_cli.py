"""``gateway sensors`` commands: protocols, decode (file and stdin), read (pty, config)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from gateway.cli import main
from gateway.sensors.registry import PROTOCOLS
from simulators.sensors.generators import PmsGenerator
from simulators.sensors.modbus_sim import ModbusSimulator
from simulators.sensors.stream import StreamSimulator

GATEWAY = str(Path(sys.executable).with_name("gateway"))


def _capture(tmp_path: Path) -> tuple[Path, list[int]]:
    """A PMS capture: 12 good frames, garbage between them, 3 frames with bad checksums."""
    gen = PmsGenerator(seed=4)
    data = bytearray()
    expected = []
    for i in range(12):
        frame = gen.frames(1_700_000_000 + i)[0]
        data += gen.garbage(7)
        if i % 4 == 0:
            data += gen.corrupt(frame)
        data += frame
        expected.append(int.from_bytes(frame[12:14], "big"))  # atmospheric PM2.5 word
    path = tmp_path / "pms.bin"
    path.write_bytes(bytes(data))
    return path, expected


def test_protocols_lists_registry(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["sensors", "protocols"]) == 0
    out = capsys.readouterr().out
    for name in PROTOCOLS:
        assert name in out
    assert main(["sensors", "protocols", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert {r["name"] for r in rows} == set(PROTOCOLS)


def test_decode_capture_json(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path, expected = _capture(tmp_path)
    assert main(["sensors", "decode", "--protocol", "pms5003", str(path), "--json"]) == 0
    captured = capsys.readouterr()
    lines = [json.loads(line) for line in captured.out.splitlines()]
    assert [line["values"]["pm2_5"] for line in lines] == expected
    assert all(line["protocol"] == "pms5003" for line in lines)
    assert "n0_3" in lines[0]["extra"]
    assert "good=12" in captured.err
    assert "bad_checksum=3" in captured.err


def test_decode_stdin_subprocess(tmp_path: Path) -> None:
    path, expected = _capture(tmp_path)
    proc = subprocess.run(
        [GATEWAY, "sensors", "decode", "-p", "pms5003", "-", "--json"],
        input=path.read_bytes(),
        capture_output=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert len(proc.stdout.splitlines()) == len(expected)


def test_decode_text_output_and_option(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    capture = tmp_path / "radar.txt"
    capture.write_bytes(b"10\n-5\n")
    assert main(["sensors", "decode", "-p", "ops243", "-o", "unit=kmh", str(capture)]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out == [
        "ops243 speed_kmh=10.0 direction=inbound",
        "ops243 speed_kmh=5.0 direction=outbound",
    ]


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (
            ["sensors", "decode", "--protocol", "pms9999", "-"],
            2,
            "unknown protocol 'pms9999'; known: modbus, nmea",
        ),
        (["sensors", "decode", "--protocol", "modbus", "-"], 2, "polled"),
        (["sensors", "decode", "-p", "nmea", "-o", "nonsense", "-"], 2, "key=value"),
        (["sensors", "decode", "-p", "nmea", "-o", "colour=red", "-"], 2, "no option(s) colour"),
        (["sensors", "decode", "-p", "nmea", "/nonexistent/capture.bin"], 2, "cannot read capture"),
        (
            ["sensors", "read", "--port", "/nonexistent/ttyUSB9", "-p", "nmea"],
            1,
            "cannot open port /nonexistent/ttyUSB9",
        ),
        (["sensors", "read", "--port", "/dev/null", "-p", "bogus"], 2, "unknown protocol 'bogus'"),
        (["sensors", "read", "-p", "nmea"], 2, "give --port and --protocol"),
    ],
)
def test_bad_input_exit_codes(
    args: list[str], code: int, message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(args) == code
    assert message in capsys.readouterr().err


def test_read_live_pty(capsys: pytest.CaptureFixture[str]) -> None:
    sim = StreamSimulator("sds011", rate_hz=20, seed=9)
    path = sim.start()
    try:
        assert (
            main(["sensors", "read", "--port", path, "-p", "sds011", "--count", "3", "--json"]) == 0
        )
    finally:
        sim.stop()
    captured = capsys.readouterr()
    lines = [json.loads(line) for line in captured.out.splitlines()]
    assert len(lines) == 3
    assert all(0 <= line["values"]["pm2_5"] <= 999.9 for line in lines)
    assert '"reopens": 0' in captured.err


def test_read_seconds_on_silent_port(capsys: pytest.CaptureFixture[str]) -> None:
    sim = StreamSimulator("nmea")
    path = sim.open()  # a port that never speaks
    try:
        assert main(["sensors", "read", "--port", path, "-p", "nmea", "--seconds", "0.5"]) == 0
    finally:
        sim.close()
    captured = capsys.readouterr()
    assert captured.out == ""
    assert "summary:" in captured.err


def test_read_configured_modbus_sensor(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    station = ModbusSimulator(seed=2)
    path = station.start()
    config = tmp_path / "gateway.toml"
    config.write_text(
        f"""
[[sensors]]
id = "station1"
protocol = "modbus"
port = "{path}"
poll_interval_s = 0.1

[sensors.modbus]
timeout_s = 0.5
registers = [
  {{ name = "temperature_c", address = 0, signed = true, scale = 0.1, unit = "C" }},
  {{ name = "pressure_pa", address = 2, count = 2, unit = "Pa" }},
]
"""
    )
    try:
        code = main(
            ["sensors", "read", "-c", str(config), "--sensor", "station1", "--count", "2", "--json"]
        )
    finally:
        station.stop()
    captured = capsys.readouterr()
    assert code == 0, captured.err
    lines = [json.loads(line) for line in captured.out.splitlines()]
    assert [line["sensor_id"] for line in lines] == ["station1", "station1"]
    assert set(lines[0]["values"]) == {"temperature_c", "pressure_pa"}


def test_read_unknown_configured_sensor(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = tmp_path / "gateway.toml"
    config.write_text('[[sensors]]\nid = "gps"\nprotocol = "nmea"\nport = "/dev/ttyUSB0"\n')
    assert main(["sensors", "read", "-c", str(config), "--sensor", "radar"]) == 2
    assert "no sensor 'radar' in the config (configured: gps)" in capsys.readouterr().err
