"""``gateway demo``: end to end on the embedded broker, on Mosquitto, and bad input."""

from __future__ import annotations

import json
import socket
import subprocess
import time
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from gateway.demo.broker import EmbeddedBroker
from gateway.demo.monitor import MAX_SENSORS, Monitor
from gateway.demo.session import parse_broker
from gateway.errors import TransportError, UsageError
from tests.services import Mosquitto, VictoriaMetrics, free_port

ROOT = Path(__file__).resolve().parent.parent
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
    assert sum(summary["truth"].values()) > 0
    assert sum(summary["counted"].values()) > 0


@pytest.mark.slow
def test_demo_publishes_to_a_given_broker(mosquitto: Mosquitto) -> None:
    proc = run_demo(
        "demo", "--seconds", "8", "--no-view", "--broker", f"127.0.0.1:{mosquitto.port}"
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert f"received on 127.0.0.1:{mosquitto.port}" in proc.stdout
    assert "line crossings: counted vs simulator ground truth" in proc.stdout


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

        deadline = time.monotonic() + 10
        while (monitor.events < n or monitor.invalid < 1) and time.monotonic() < deadline:
            time.sleep(0.05)
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
