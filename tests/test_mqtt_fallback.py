"""MQTT v5 refused -> v3.1.1, against a real MQTT 3.1.1-only broker (amqtt)."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest

from gateway.app import App
from gateway.errors import TransportError
from gateway.events import validate_event
from tests.services import free_port, wait_port
from tests.transport_support import Collector, sensor_draft, settings_for


@pytest.fixture
def amqtt_broker(tmp_path: Path) -> Iterator[int]:
    port = free_port()
    conf = tmp_path / "amqtt.yaml"
    conf.write_text(
        "listeners:\n  default:\n    type: tcp\n"
        f"    bind: 127.0.0.1:{port}\n"
        "plugins:\n  amqtt.plugins.authentication.AnonymousAuthPlugin:\n"
        "    allow_anonymous: true\n"
    )
    amqtt = Path(sys.executable).parent / "amqtt"
    with (tmp_path / "amqtt.log").open("wb") as log:
        proc = subprocess.Popen([str(amqtt), "-c", str(conf)], stdout=log, stderr=subprocess.STDOUT)
    try:
        wait_port(port, 30)
        yield port
    finally:
        proc.terminate()
        proc.wait(10)


def test_falls_back_to_311_when_v5_is_refused(tmp_path: Path, amqtt_broker: int) -> None:
    collector = Collector(amqtt_broker, ["city/#"], protocol=mqtt.MQTTv311)
    app = App(settings_for(tmp_path, amqtt_broker))  # protocol = "auto"
    try:
        app.start()
        app.link.wait_connected(15)
        assert app.link.protocol == "3.1.1"
        stored = app.emit([sensor_draft(i) for i in range(20)])
        assert collector.wait_for(lambda: len(collector.payloads("/sensors/pm-1")) >= 20)
    finally:
        app.stop()
        collector.close()
    events = collector.payloads("/sensors/pm-1")
    assert [e["seq"] for e in events] == stored.seqs
    for event in events:
        validate_event(event)
    assert app.outbox.depth == 0


def test_v5_only_config_does_not_fall_back(tmp_path: Path, amqtt_broker: int) -> None:
    app = App(settings_for(tmp_path, amqtt_broker, mqtt={"protocol": "5"}))
    try:
        app.start()
        # amqtt refuses a plain v5 CONNECT, and gives up on one carrying a v5 will after 10 s.
        deadline = time.monotonic() + 25
        while app.link.last_error is None and time.monotonic() < deadline:
            time.sleep(0.05)
        with pytest.raises(TransportError, match=r"Unsupported protocol version|CONNACK"):
            app.link.wait_connected(0.1)
        assert app.link.health().state == "error"
        assert app.link.protocol is None and app.link.connects == 0
    finally:
        app.stop()
