"""The real servers the suite relies on start, answer and store what they are sent."""

from __future__ import annotations

import time
import urllib.error
import urllib.request
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from influxdb_client import InfluxDBClient, Point
from influxdb_client.client.write_api import SYNCHRONOUS

from gateway.localservers import Mosquitto, VictoriaMetrics


def test_mosquitto_round_trip(mosquitto: Mosquitto) -> None:
    got: list[bytes] = []
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
    client.on_message = lambda _c, _u, msg: got.append(msg.payload)
    client.connect("127.0.0.1", mosquitto.port)
    client.subscribe("t/#", qos=1)
    client.loop_start()
    try:
        time.sleep(0.3)
        client.publish("t/x", b"hello", qos=1).wait_for_publish(5)
        deadline = time.monotonic() + 5
        while not got and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        client.loop_stop()
        client.disconnect()
    assert got == [b"hello"]


def test_victoria_accepts_influx_v2_write(victoria: VictoriaMetrics) -> None:
    with InfluxDBClient(url=victoria.url, token="any", org="any") as client:
        client.write_api(write_options=SYNCHRONOUS).write(
            bucket="any", record=Point("smoke").tag("gw", "g1").field("value", 42.0)
        )
    series = victoria.export_until('{__name__="smoke_value"}', lambda s: len(s) > 0)
    assert len(series) == 1
    assert series[0]["metric"]["gw"] == "g1"
    assert series[0]["values"] == [42]


def _retained(port: int, topic: str) -> list[bytes]:
    """The retained messages a fresh subscriber to ``topic`` gets within a second."""
    got: list[bytes] = []
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
    client.on_message = lambda _c, _u, msg: got.append(msg.payload)
    client.connect("127.0.0.1", port)
    client.loop_start()
    try:
        client.subscribe(topic, qos=1)
        time.sleep(1.0)
    finally:
        client.loop_stop()
        client.disconnect()
    return got


def _publish_retained(port: int, topic: str, payload: bytes) -> None:
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
    client.connect("127.0.0.1", port)
    client.loop_start()
    try:
        client.publish(topic, payload, qos=1, retain=True).wait_for_publish(5)
    finally:
        client.loop_stop()
        client.disconnect()


@pytest.mark.parametrize(
    ("persistence", "kill", "kept"),
    [
        (True, False, True),  # saved on SIGTERM
        (False, False, False),
        (True, True, False),  # kill -9 before the first autosave: nothing saved
    ],
)
def test_mosquitto_restarts_on_its_port_with_or_without_persistence(
    tmp_path: Path, persistence: bool, kill: bool, kept: bool
) -> None:
    broker = Mosquitto(tmp_path / "broker", persistence=persistence)
    with broker:
        port = broker.port
        _publish_retained(port, "keep/me", b"v1")
        broker.restart(kill=kill)
        assert broker.port == port
        assert _retained(port, "keep/me") == ([b"v1"] if kept else [])


def test_a_paused_server_does_not_answer_and_resumes(tmp_path: Path) -> None:
    with VictoriaMetrics(tmp_path / "vm") as db:
        db.pause()
        with pytest.raises((TimeoutError, urllib.error.URLError)):
            urllib.request.urlopen(f"{db.url}/health", timeout=1)
        db.resume()
        with urllib.request.urlopen(f"{db.url}/health", timeout=30) as resp:
            assert resp.status == 200
        db.pause()
        # SIGTERM reaches a paused process: thawed after the signal, it exits cleanly
        assert db.stop(timeout=60) == 0
        assert not db.running


def test_victoria_keeps_its_data_across_a_clean_restart(tmp_path: Path) -> None:
    with VictoriaMetrics(tmp_path / "vm") as db:
        with InfluxDBClient(url=db.url, token="any", org="any") as client:
            client.write_api(write_options=SYNCHRONOUS).write(
                bucket="any", record=Point("kept").field("value", 7.0)
            )
        db.restart()
        series = db.export_until('{__name__="kept_value"}', lambda s: len(s) > 0)
        assert [s["values"] for s in series] == [[7]]


def test_mosquitto_tls_listener_and_a_second_plain_listener(tmp_path: Path) -> None:
    from gateway.localservers import Listener, MqttTls, free_port

    extra = free_port()
    broker = Mosquitto(
        tmp_path / "b",
        tls=MqttTls(Path("/ca.crt"), Path("/s.crt"), Path("/s.key"), require_certificate=False),
        listeners=[Listener(extra)],
    )
    conf = broker.config_text()
    assert f"listener {broker.port} 127.0.0.1\ncafile /ca.crt\n" in conf
    assert "require_certificate false" in conf
    assert conf.index(f"listener {extra} 127.0.0.1") > conf.index("keyfile /s.key")


def test_a_missing_binary_is_a_clear_error() -> None:
    from gateway.localservers import ServerError, find_binary

    with pytest.raises(ServerError, match="no-such-server is not installed"):
        find_binary("no-such-server")


def test_a_server_that_exits_at_start_fails_with_its_log(tmp_path: Path) -> None:
    from gateway.localservers import ServerError

    broker = Mosquitto(tmp_path / "b", extra_config="no_such_option 1")
    with pytest.raises(ServerError, match="mosquitto did not start"):
        broker.start()
    assert not broker.running


def test_free_port_does_not_hand_out_a_port_twice_in_a_row() -> None:
    # The kernel may give a just-closed port out again; two servers set up before either
    # binds (a broker and its second listener) then got the same port.
    from gateway.localservers import free_port

    for _ in range(5):  # the kernel's choice alone repeats within 250 in most rounds here
        ports = [free_port() for _ in range(250)]
        assert len(set(ports)) == len(ports)
