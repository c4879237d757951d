"""An alert is written ahead of the bulk packets the MQTT client has queued (real Mosquitto).

The forwarder publishes alert- and control-lane events with ``publish_first``: paho
writes its packets in the order they were queued and reads up to one PUBACK per
message in flight before it writes, so without it an alert published behind a window
of bulk events waited for all of them. These tests drive the client by hand (no
network thread), so what was queued, written and read at each step is exact.
"""

from __future__ import annotations

import fcntl
import socket
import struct
import termios
import time
from collections.abc import Iterator

import paho.mqtt.client as paho
import pytest

from gateway.config.transport import MqttConfig
from gateway.localservers import Mosquitto
from gateway.transport.paho_client import make_client, publish_first, wire_bytes
from tests.support.polling import wait_for
from tests.support.transport import Collector


@pytest.fixture
def client(mosquitto: Mosquitto) -> Iterator[paho.Client]:
    """A connected client of the link's kind: packets are written only by loop() calls."""
    made = make_client(MqttConfig(host="127.0.0.1", port=mosquitto.port), "first", False, None)
    made.on_socket_register_write = lambda *_a: None  # as MqttLink: writes left to loop()
    connected: list[bool] = []
    made.on_connect = lambda *_a: connected.append(True)
    made.connect("127.0.0.1", mosquitto.port)
    assert wait_for(lambda: made.loop(0.05) == paho.MQTT_ERR_SUCCESS and bool(connected), 10)
    yield made
    made.disconnect()
    made._reset_sockets()


def _serve(client: paho.Client, infos: list[paho.MQTTMessageInfo]) -> None:
    assert wait_for(
        lambda: client.loop(0.02) == paho.MQTT_ERR_SUCCESS and all(i.is_published() for i in infos),
        20,
    ), "not every PUBACK arrived"


def test_alerts_overtake_queued_bulk_packets_in_their_order(
    mosquitto: Mosquitto, client: paho.Client
) -> None:
    collector = Collector(mosquitto.port, ["t/#"])
    try:
        bulk = [client.publish("t/bulk", str(n).encode(), qos=1) for n in range(200)]
        alerts = [publish_first(client, "t/alert", f"a{n}".encode()) for n in range(2)]
        _serve(client, bulk + alerts)
        assert collector.wait_for(lambda: len(collector.messages) == 202)
        order = [m.payload.decode() for m in collector.messages]
    finally:
        collector.close()
    assert order[:2] == ["a0", "a1"]  # written before every queued bulk packet, in order
    assert order[2:] == [str(n) for n in range(200)]  # the bulk lane keeps its order


def _readable(client: paho.Client) -> int:
    sock = client.socket()
    assert sock is not None
    raw = fcntl.ioctl(sock.fileno(), termios.FIONREAD, struct.pack("i", 0))
    return int(struct.unpack("i", raw)[0])


def test_an_alert_is_written_while_pubacks_are_being_read(client: paho.Client) -> None:
    bulk = [client.publish("t/bulk", b"x" * 200, qos=1) for _ in range(100)]
    while client.want_write():
        assert client.loop_write() == paho.MQTT_ERR_SUCCESS
    # 100 PUBACKs (4 bytes each in MQTT v5) wait in the socket, none read yet
    assert wait_for(lambda: _readable(client) >= 400, 10)
    alert = publish_first(client, "t/alert", b"now")
    sent_before = wire_bytes(client)[0]
    assert client.loop_read() == paho.MQTT_ERR_SUCCESS  # one call reads the PUBACKs
    assert wire_bytes(client)[0] > sent_before, "the alert waited for the PUBACKs to be read"
    assert any(info.is_published() for info in bulk)  # and it read on after the write
    _serve(client, [*bulk, alert])


def test_a_packet_half_written_is_finished_before_an_alert(
    mosquitto: Mosquitto, client: paho.Client
) -> None:
    collector = Collector(mosquitto.port, ["t/#"])
    try:
        sock = client.socket()
        assert isinstance(sock, socket.socket)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 8192)  # the send takes a part
        big = client.publish("t/big", b"b" * 2**20, qos=1)
        assert client.loop_write() == paho.MQTT_ERR_SUCCESS
        half = client._out_packet[0]
        assert half["pos"] > 0 and half["to_process"] > 0  # the socket took part of it
        alert = publish_first(client, "t/alert", b"now")
        started = time.monotonic()
        _serve(client, [big, alert])
        assert collector.wait_for(
            lambda: len(collector.messages) == 2, 30 + time.monotonic() - started
        )
        got = [(m.topic, len(m.payload)) for m in collector.messages]
    finally:
        collector.close()
    assert got == [("t/big", 2**20), ("t/alert", 3)]  # intact, in that order
