"""``python -m simulators sensor`` as a process: the path on the first line, faults, unplug."""

from __future__ import annotations

import itertools
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from gateway.config.sensors import SensorConfig
from gateway.sensors.registry import make_decoder
from gateway.sensors.types import Reading
from gateway.serialports.reader import SensorReader
from simulators.sensors.generators import GENERATORS
from simulators.sensors.stream import StreamSimulator, parse_faults


def _spawn(*args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "simulators", "sensor", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _finish(proc: subprocess.Popen[str]) -> str:
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=20)
    assert proc.returncode == 0, err
    return err


def test_process_with_link_unplug_and_garbage(tmp_path: Path) -> None:
    link = tmp_path / "ttyPM0"
    proc = _spawn(
        "--protocol", "pms7003", "--pty", "--link", str(link), "--faults", "unplug,garbage,badsum",
        "--rate", "20", "--fault-period", "1.5", "--seed", "3",
    )  # fmt: skip
    try:
        assert proc.stdout is not None
        first = proc.stdout.readline().strip()
        assert first == str(link)
        assert os.path.realpath(link).startswith("/dev/pts/")
        got: list[Reading] = []
        lock = threading.Lock()

        def sink(r: Reading) -> None:
            with lock:
                got.append(r)

        cfg = SensorConfig(id="pm", protocol="pms7003", port=str(link), reopen_max_s=0.3)
        reader = SensorReader(cfg, sink)
        reader.start()
        try:
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline and not (
                int(reader.health().counters()["reopens"]) >= 1 and len(got) >= 30
            ):
                time.sleep(0.1)
        finally:
            reader.stop()
        stats = reader.health().counters()
        assert int(stats["reopens"]) >= 1
        assert len(got) >= 30
        assert int(stats["bad_checksum"]) >= 1
        assert got[-1].protocol == "pms7003"
    finally:
        err = _finish(proc)
    assert "'unplugs': " in err
    assert not link.exists()  # removed on exit


def test_process_bad_fault_is_usage_error() -> None:
    proc = _spawn("--protocol", "nmea", "--faults", "meteor")
    _, err = proc.communicate(timeout=20)
    assert proc.returncode == 2
    assert "unknown fault(s) meteor" in err


def test_unplug_needs_pty() -> None:
    with pytest.raises(ValueError, match="needs a pty"):
        StreamSimulator("nmea", port="/dev/null", faults=parse_faults("unplug"))


@pytest.mark.parametrize("protocol", sorted(GENERATORS))
def test_generated_frames_decode_and_vary_slowly(protocol: str) -> None:
    sim = StreamSimulator(protocol, seed=1)
    decoder = make_decoder(protocol)
    readings = []
    for i in range(200):
        for frame in sim.generator.frames(1_700_000_000 + i):
            readings += decoder.feed(frame)
    assert len(readings) >= 200
    key = {
        "pms5003": "pm2_5",
        "pms7003": "pm2_5",
        "sds011": "pm2_5",
        "nmea": "lat",
        "ops243": "speed_kmh",
    }[protocol]
    series = [float(r.values[key]) for r in readings if key in r.values]
    assert len(set(series)) > 3  # it varies
    if protocol != "ops243":  # passing vehicles are independent; the others drift slowly
        steps = [abs(a - b) for a, b in itertools.pairwise(series)]
        assert max(steps) < 0.2 * (max(series) - min(series)) + 3.0


def test_modbus_process_serves_the_station() -> None:
    from gateway.serialports.modbus import ModbusPoller
    from simulators.sensors.modbus_sim import default_register_map

    proc = _spawn("--protocol", "modbus", "--seed", "4")
    try:
        assert proc.stdout is not None
        path = proc.stdout.readline().strip()
        cfg = SensorConfig.model_validate(
            {
                "id": "st",
                "protocol": "modbus",
                "port": path,
                "modbus": {"registers": default_register_map()},
            }
        )
        poller = ModbusPoller(cfg)
        poller.connect()
        try:
            reading = poller.poll()
        finally:
            poller.close()
        assert reading is not None
        assert 0 <= float(reading.values["humidity_pct"]) <= 100
    finally:
        _finish(proc)
    assert not os.path.exists(path)


@pytest.mark.parametrize("faults", ["", "garbage,split", "silence"])
def test_idle_simulator_thread_sleeps_between_ticks(faults: str) -> None:
    """The sending thread costs almost no CPU between ticks, with and without timed faults.

    Regression: without ``silence``/``unplug`` the fault deadline passed once and was
    never moved on, so every wait became zero and the thread spun, starving the rest of
    the process (the demo's renderer and detector). Measured as the sending thread's own
    CPU time, not wall-clock time.
    """
    sim = StreamSimulator(
        "pms5003", rate_hz=5, seed=1, faults=parse_faults(faults),
        fault_period_s=0.2, silence_s=0.1,
    )  # fmt: skip
    cpu: list[float] = []
    stop = threading.Event()
    run = sim.run

    def measured() -> None:
        start = time.thread_time()
        run()
        cpu.append(time.thread_time() - start)
        stop.set()

    sim.run = measured  # type: ignore[method-assign]
    sim.start()
    try:
        time.sleep(1.5)  # several fault periods pass while the thread runs
    finally:
        sim.stop()
    assert stop.wait(5.0)
    assert sim.stats.ticks >= 3
    assert cpu[0] < 0.3, f"the simulator thread used {cpu[0]:.2f} s of CPU in 1.5 s"
