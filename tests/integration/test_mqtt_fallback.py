"""MQTT v5 refused -> v3.1.1, against a real MQTT 3.1.1-only broker (amqtt)."""

from __future__ import annotations

import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest

from gateway.app import App
from gateway.errors import TransportError
from gateway.events import validate_event
from gateway.localservers import Mosquitto, free_port, wait_port
from gateway.transport.mqtt import V5_CLOSES_BEFORE_FALLBACK
from tests.support.polling import wait_for
from tests.support.transport import Collector, sensor_draft, settings_for


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


@pytest.mark.slow
def test_falls_back_to_311_when_v5_is_refused(tmp_path: Path, amqtt_broker: int) -> None:
    collector = Collector(amqtt_broker, ["city/#"], protocol=mqtt.MQTTv311)
    app = App(settings_for(tmp_path, amqtt_broker))  # protocol = "auto"
    try:
        app.start()
        app.link.wait_connected(40)  # two v5 attempts first (amqtt may take 10 s for one)
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


@pytest.mark.slow
def test_v5_only_config_does_not_fall_back(tmp_path: Path, amqtt_broker: int) -> None:
    app = App(settings_for(tmp_path, amqtt_broker, mqtt={"protocol": "5"}))
    try:
        app.start()
        # amqtt refuses a plain v5 CONNECT, and gives up on one carrying a v5 will after 10 s.
        wait_for(lambda: app.link.last_error is not None, 25)
        with pytest.raises(TransportError, match=r"Unsupported protocol version|CONNACK"):
            app.link.wait_connected(0.1)
        assert app.link.health().state == "error"
        assert app.link.protocol is None and app.link.connects == 0
    finally:
        app.stop()


def test_a_v5_broker_closing_before_connack_does_not_pin_v311(
    tmp_path: Path, mosquitto: Mosquitto
) -> None:
    # A broker that is shutting down closes v5 CONNECTs before their CONNACK, as a
    # v3-only broker does: after a few in a row the link falls back, and must come back
    # to v5 later.
    port = mosquitto.port
    mosquitto.stop()
    closer = socket.socket()
    closer.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    closer.bind(("127.0.0.1", port))
    closer.listen(1)
    app = App(settings_for(tmp_path, port, mqtt={"reconnect_min_s": 0.2, "reconnect_max_s": 0.5}))
    try:
        app.start()
        for _ in range(V5_CLOSES_BEFORE_FALLBACK):
            conn, _ = closer.accept()
            conn.close()  # closed before any CONNACK
        closer.close()
        mosquitto.start()
        app.link.wait_connected(15)
        assert app.link.protocol == "3.1.1"  # the fallback happened
        mosquitto.stop()  # a broker restart: the connection drops
        mosquitto.start()
        wait_for(lambda: app.link.connected and app.link.connects >= 2, 15)
        assert app.link.connects >= 2
        assert app.link.protocol == "5"  # reason codes are visible again
    finally:
        app.stop()


def _close_connects(port: int, count: int) -> None:
    """Listen on ``port``, close ``count`` connections before any CONNACK, then go away."""
    closer = socket.socket()
    closer.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    closer.bind(("127.0.0.1", port))
    closer.listen(1)
    for _ in range(count):
        conn, _ = closer.accept()
        conn.close()
    closer.close()


def test_a_known_v5_broker_closing_connects_keeps_v5_and_nothing_is_lost(
    tmp_path: Path, mosquitto: Mosquitto
) -> None:
    # A v5 broker restarting closes CONNECTs before their CONNACK (here as many as make a
    # unit that never spoke v5 fall back). This unit has spoken v5 with it already:
    # falling back to v3.1.1 there makes "no matching subscribers" (the central
    # subscriber is not back yet) invisible, and the broker drops what it accepts.
    port = mosquitto.port
    app = App(
        settings_for(
            tmp_path,
            port,
            mqtt={"reconnect_min_s": 0.2, "reconnect_max_s": 0.5},
            outbox={"retry_min_s": 0.2, "retry_max_s": 1.0},
        )
    )
    try:
        app.start()
        app.link.wait_connected(15)
        assert app.link.protocol == "5"
        mosquitto.stop()  # restarted without persistence: nobody subscribes for a while
        _close_connects(port, V5_CLOSES_BEFORE_FALLBACK)
        mosquitto.start()
        assert wait_for(lambda: app.link.connected and app.link.connects >= 2, 15)
        stored = app.emit([sensor_draft(i) for i in range(20)])  # while nobody subscribes
        # Each event is either held (refused with 16, kept) or gone from the outbox.
        assert wait_for(lambda: app.forwarder.held_topics or app.outbox.depth == 0, 15)
        assert app.link.protocol == "5"
        collector = Collector(port, ["city/#"])  # the central subscriber is back
        try:
            want = set(stored.seqs)
            got = collector.wait_for(
                lambda: want <= {e["seq"] for e in collector.payloads("/sensors/pm-1")}
            )
            assert got, "events published while nobody subscribed were lost"
        finally:
            collector.close()
    finally:
        app.stop()
