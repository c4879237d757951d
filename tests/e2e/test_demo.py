"""``gateway demo``: end to end on the embedded broker, on Mosquitto, and bad input."""

from __future__ import annotations

import json
import re
import signal
import socket
import subprocess
import time
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from gateway.config.sources import SimulatorSource
from gateway.demo.broker import EmbeddedBroker
from gateway.demo.monitor import MAX_SENSORS, Monitor
from gateway.demo.scenario import TruthCounter
from gateway.demo.session import DemoState, parse_broker
from gateway.demo.view import behind_warning, status_line
from gateway.errors import TransportError, UsageError
from gateway.localservers import Mosquitto, VictoriaMetrics, free_port
from tests.support.cli import popen_as_on_a_terminal
from tests.support.polling import wait_for

ROOT = Path(__file__).resolve().parents[2]
GATEWAY = str(ROOT / ".venv" / "bin" / "gateway")


def run_demo(*args: str, timeout: float = 180) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [GATEWAY, *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
        stdin=subprocess.DEVNULL,
    )


def start_demo(*args: str) -> subprocess.Popen[str]:
    """Start ``gateway`` and return once its runtime is up (its log says so)."""
    proc = popen_as_on_a_terminal(  # the Ctrl-C test needs SIGINT as on a terminal
        [GATEWAY, *args],
        cwd=ROOT,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert proc.stderr is not None
    for line in proc.stderr:  # the gateway logs this once its cameras and sensors run
        if "running: 1 camera(s)" in line:
            return proc
    proc.kill()
    raise AssertionError(f"the demo did not start (exit {proc.wait()})")


def wait_frames(proc: subprocess.Popen[str], seconds: float) -> None:
    """Let the demo run ``seconds`` (it must not exit meanwhile)."""
    with pytest.raises(subprocess.TimeoutExpired):
        proc.wait(seconds)


@pytest.mark.slow
def test_demo_runs_end_to_end_on_the_embedded_broker() -> None:
    proc = run_demo("demo", "--seconds", "15", "--no-view", "--json")
    assert proc.returncode == 0, proc.stderr[-3000:]
    summary = json.loads(proc.stdout.strip().splitlines()[-1])
    received = summary["received_by_type"]
    assert summary["events_received"] > 0
    for kind in ("line_crossing", "sensor_reading", "health", "aggregate"):
        assert received.get(kind, 0) > 0, f"no {kind} events reached the broker: {received}"
    assert received.get("availability", 0) >= 1
    assert summary["interrupted"] is False
    # Frames: the camera's, the capture's, the processed ones; dropped is the difference.
    camera, processed = summary["frames_camera"], summary["frames_processed"]
    assert 0 < processed <= summary["frames_captured"] <= camera
    assert summary["frames_dropped"] == camera - processed
    assert summary["camera_fps"] == 10.0
    # Counts and completed-crossing truth are flat maps line/direction/class -> number.
    for name in ("counted", "truth", "truth_in_flight"):
        for key, n in summary[name].items():
            assert key.count("/") == 2 and isinstance(n, int), (name, key, n)
    assert summary["truth_total"] == sum(summary["truth"].values()) > 0
    assert summary["counted_total"] == sum(summary["counted"].values()) > 0
    assert "mosquitto_sub -h 127.0.0.1 -p " in summary["watch"]


@pytest.mark.slow
def test_demo_warns_when_processing_falls_behind_the_camera(mosquitto: Mosquitto) -> None:
    """The process is stopped for 3 s (SIGSTOP): the camera's frames go on, unprocessed."""
    proc = start_demo(
        "demo", "--seconds", "10", "--no-view", "--broker", f"127.0.0.1:{mosquitto.port}"
    )
    wait_frames(proc, 2.0)
    proc.send_signal(signal.SIGSTOP)
    time.sleep(3.0)
    proc.send_signal(signal.SIGCONT)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err[-3000:]
    assert f"received on 127.0.0.1:{mosquitto.port}" in out
    assert "line crossings: counted vs simulator ground truth" in out
    assert f"watch its events with: mosquitto_sub -h 127.0.0.1 -p {mosquitto.port} -t" in out
    assert "warning: processing is behind the camera" in out, out
    dropped = int(re.search(r"dropped (\d+)", out).group(1))  # type: ignore[union-attr]
    assert dropped >= 25, out  # 3 s at 10 fps


@pytest.mark.slow
def test_demo_ctrl_c_ends_with_the_summary_and_exit_130() -> None:
    proc = start_demo("demo", "--seconds", "120", "--no-view", "--json")
    wait_frames(proc, 3.0)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err[-3000:]
    summary = json.loads(out.strip().splitlines()[-1])
    assert summary["interrupted"] is True
    assert summary["frames_processed"] > 0
    assert summary["seconds"] < 60
    assert "Traceback" not in err
    assert "terminate called" not in err


@pytest.mark.slow
def test_demo_with_ingest_into_the_database(
    mosquitto: Mosquitto, victoria: VictoriaMetrics
) -> None:
    proc = run_demo(
        "demo",
        "--seconds",
        "10",
        "--no-view",
        "--broker",
        f"127.0.0.1:{mosquitto.port}",
        "--influx-url",
        victoria.url,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    series = victoria.export_until('{gateway="demo-gw"}', lambda s: len(s) > 0)
    names = {str(s["metric"]["__name__"]) for s in series}  # type: ignore[index]
    assert any(n.startswith("camera_health") for n in names), names
    assert any(n.startswith("sensor") for n in names), names


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--influx-url", "http://127.0.0.1:1"], "needs --broker"),
        (["--broker", "nohostport"], "HOST:PORT"),
        (["--broker", "127.0.0.1:99999"], "HOST:PORT"),
        (["--seconds", "0"], "Invalid value"),
        (["--condition", "fog"], "Invalid value"),
    ],
)
def test_demo_bad_arguments_exit_2(args: list[str], message: str) -> None:
    proc = run_demo("demo", "--no-view", *args, timeout=60)
    assert proc.returncode == 2
    assert message in proc.stderr


def test_demo_unreachable_broker_is_one_clear_error() -> None:
    proc = run_demo(
        "demo", "--no-view", "--seconds", "2", "--broker", f"127.0.0.1:{free_port()}", timeout=60
    )
    assert proc.returncode == 1
    assert "cannot connect to the broker" in proc.stderr
    assert "Traceback" not in proc.stderr


@pytest.mark.parametrize(
    ("text", "expected"),
    [("127.0.0.1:1883", ("127.0.0.1", 1883)), ("broker.local:8883", ("broker.local", 8883))],
)
def test_parse_broker(text: str, expected: tuple[str, int]) -> None:
    assert parse_broker(text) == expected


@pytest.mark.parametrize("text", ["", ":1883", "host:", "host:0", "host:x"])
def test_parse_broker_rejects(text: str) -> None:
    with pytest.raises(UsageError):
        parse_broker(text)


def test_embedded_broker_on_a_taken_port_fails_clearly() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        broker = EmbeddedBroker(sock.getsockname()[1])
        with pytest.raises(TransportError, match="embedded MQTT broker"):
            broker.start()
        broker.stop()


def test_monitor_counts_and_bounds_its_sensor_table() -> None:
    broker = EmbeddedBroker(free_port())
    broker.start()
    monitor = Monitor(broker.host, broker.port, "city/#")
    monitor.start()
    pub = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv311)
    pub.connect(broker.host, broker.port)
    pub.loop_start()
    try:
        n = MAX_SENSORS + 10
        for i in range(n):
            event = {"type": "sensor_reading", "data": {"sensor": f"s{i}", "values": {"v": i}}}
            pub.publish(f"city/x/y/sensors/s{i}", json.dumps(event), qos=1).wait_for_publish(5)
        pub.publish("city/x/y/bad", b"not json", qos=1).wait_for_publish(5)

        wait_for(lambda: monitor.events >= n and monitor.invalid >= 1, 10)
        by_type, sensors = monitor.snapshot()
    finally:
        pub.disconnect()
        pub.loop_stop()
        monitor.stop()
        broker.stop()
    assert by_type == {"sensor_reading": n}
    assert monitor.invalid == 1
    assert len(sensors) == MAX_SENSORS
    assert sensors["s0"] == {"v": 0}


def test_truth_counts_a_crossing_once_the_object_is_past_the_dead_band() -> None:
    """A walker that just crossed is in flight; a second later it is completed truth."""
    source = SimulatorSource(seed=7)
    probe = TruthCounter(source)
    probe.advance(3000)
    world = probe._world
    walker = next(c for c in world.crossings if c.cls == "person")
    at_cross = TruthCounter(source).advance(walker.frame)
    key = (walker.line_id, walker.direction, walker.cls)
    assert at_cross.in_flight[key] >= 1
    later = TruthCounter(source).advance(walker.frame + 10)
    assert later.completed[key] == at_cross.completed[key] + 1
    # Every logged crossing is in exactly one of the two.
    total = sum(later.completed.values()) + sum(later.in_flight.values())
    assert total == sum(1 for c in world.crossings if c.frame <= walker.frame + 10)


def test_view_warns_with_the_dropped_frames_when_processing_is_behind() -> None:
    state = DemoState(seconds=60, broker="127.0.0.1:1883", camera_fps=10.0)
    state.frames_camera, state.frames_captured, state.frames_processed = 300, 290, 180
    state.processed_fps = 6.0
    warning = behind_warning(state)
    assert warning is not None
    assert "6.0 fps processed of 10 fps; 120 of 300 camera frames dropped" in warning.plain
    text = status_line(state).plain
    assert "camera 10 fps, 300 frames" in text
    assert "processed  6.0 fps, 180 frames" in text
    assert "dropped 120 frames" in text
    state.processed_fps = 9.8
    assert behind_warning(state) is None
