"""The MQTT link counts the bytes it puts on the wire, every packet whole (real Mosquitto).

The expected figures are computed from the MQTT packet layout, independently of the
link: a QoS 1 PUBLISH is a fixed header (type byte + remaining-length varint), the topic
(2-byte length + UTF-8), the packet id (2), the properties length (v5 only, 1 byte when
empty) and the payload. The broker answers each with a PUBACK of 4 bytes, 5 in v5 when
it carries a reason code (Mosquitto sends 16 "no matching subscribers" here: no one
subscribes).
"""

from __future__ import annotations

import itertools
import threading
from pathlib import Path

import pytest

from gateway.localservers import Mosquitto
from gateway.transport.mqtt import MqttLink
from tests.support import polling
from tests.support.transport import settings_for


def _varint_len(n: int) -> int:
    return 1 + (n >= 128) + (n >= 16_384) + (n >= 2_097_152)


def _publish_bytes(topic: str, payload: bytes, v5: bool) -> int:
    remaining = 2 + len(topic.encode()) + 2 + (1 if v5 else 0) + len(payload)
    return 1 + _varint_len(remaining) + remaining


@pytest.mark.parametrize("protocol", ["5", "3.1.1"])
def test_the_link_counts_every_publish_and_puback(
    tmp_path: Path, mosquitto: Mosquitto, protocol: str
) -> None:
    settings = settings_for(tmp_path, mosquitto.port)
    cfg = settings.mqtt.model_copy(update={"protocol": protocol})
    acked: list[int] = []
    lock = threading.Lock()

    def on_published(_generation: int, mid: int, code: int) -> None:
        with lock:
            acked.append(code)

    link = MqttLink(cfg, "wire-test", on_published=on_published)
    link.start()
    try:
        link.wait_connected(10)
        assert polling.wait_for(lambda: link.wire_bytes()[1] > 0, 5)  # the CONNACK
        sent0, received0 = link.wire_bytes()
        assert sent0 > 0  # the CONNECT
        messages = [
            (f"city/s/g/events/cam-{i % 3}/line_crossing", b"x" * (i * 37 % 300)) for i in range(60)
        ]
        messages.append(("city/s/g/sensors/big", b"y" * 20_000))  # a 3-byte length
        for topic, payload in messages:
            assert link.publish(topic, payload, qos=1) is not None
        assert polling.wait_for(lambda: len(acked) == len(messages), 10)
        v5 = protocol == "5"
        assert set(acked) == ({16} if v5 else {0})
        pubacks = (5 if v5 else 4) * len(messages)
        assert polling.wait_for(lambda: link.wire_bytes()[1] - received0 >= pubacks, 5)
        sent, received = link.wire_bytes()
        assert sent - sent0 == sum(_publish_bytes(t, p, v5) for t, p in messages)
        assert received - received0 == pubacks
        assert link.health().bytes_sent == sent
        assert link.health().bytes_received == received
    finally:
        link.stop()


def test_the_count_goes_on_across_reconnects(tmp_path: Path, mosquitto: Mosquitto) -> None:
    settings = settings_for(tmp_path, mosquitto.port)
    link = MqttLink(settings.mqtt, "wire-test")
    link.start()
    try:
        link.wait_connected(10)
        link.publish("city/s/g/health", b"z" * 1000, qos=1)
        assert polling.wait_for(lambda: link.wire_bytes()[0] > 1000, 5)
        before = link.wire_bytes()
        mosquitto.restart()
        assert polling.wait_for(lambda: link.connects >= 2, 20)
        link.publish("city/s/g/health", b"z" * 1000, qos=1)
        assert polling.wait_for(lambda: link.wire_bytes()[0] > before[0] + 1000, 5)
        assert link.wire_bytes()[1] > before[1]  # the second CONNACK and PUBACK
    finally:
        link.stop()
    after_stop = link.wire_bytes()
    assert after_stop[0] >= before[0] + 1000  # the closed connections stay counted


def test_the_ip_layer_count_adds_every_segments_headers_and_survives_reconnects(
    tmp_path: Path, mosquitto: Mosquitto
) -> None:
    """What a plan bills (kernel TCP counters): at least the MQTT bytes plus 52 bytes of
    TCP/IP headers per segment each way; a closed connection's bytes stay counted (read
    as paho closes the socket) and the total never goes back."""
    settings = settings_for(tmp_path, mosquitto.port)
    link = MqttLink(settings.mqtt, "ip-test")
    link.start()
    try:
        link.wait_connected(10)
        for _ in range(20):
            link.publish("city/s/g/health", b"z" * 500, qos=1)
        assert polling.wait_for(lambda: link.wire_bytes()[1] >= 4 * 20, 5)  # the PUBACKs
        wire, ip = link.wire_bytes(), link.ip_bytes()
        # Plain TCP on IPv4 loopback, nothing in flight: the TCP payload is the MQTT
        # bytes exactly, and every segment (the handshake's, the data's, the ACKs) adds
        # 52 bytes of headers: CONNECT and PUBLISHes out, CONNACK and PUBACKs in at least.
        for layer_ip, layer_wire in zip(ip, wire, strict=True):
            headers = layer_ip - layer_wire
            assert headers % 52 == 0, (ip, wire)
            assert headers >= 3 * 52, (ip, wire)
        health = link.health()
        assert health.ip_bytes_sent >= ip[0] and health.ip_bytes_received >= ip[1]
        before = link.ip_bytes()
        mosquitto.restart()
        assert polling.wait_for(lambda: link.connects >= 2, 20)
        seen = [link.ip_bytes() for _ in range(50)]
        assert all(a[0] <= b[0] and a[1] <= b[1] for a, b in itertools.pairwise(seen))  # never back
        assert seen[0][0] >= before[0] and seen[0][1] >= before[1]
        link.publish("city/s/g/health", b"z" * 1000, qos=1)
        assert polling.wait_for(lambda: link.ip_bytes()[0] > before[0] + 1000 + 52, 5)
    finally:
        link.stop()
    assert link.ip_bytes()[0] > before[0] + 1000  # the closed connections stay counted
