"""The priority bench's tracer finds an alert's payload in the packet paho writes."""

from __future__ import annotations

import json
import socket

import paho.mqtt.client as paho
import pytest
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion

from gateway.bench.priority_trace import _publish_parts

TOPIC = "city/bench/rsu-0001/events/cam-1/alert"


def _packet(protocol: MQTTProtocolVersion, mid: int, payload: bytes) -> bytes:
    """The bytes paho itself writes for a QoS 1 PUBLISH with packet id ``mid``."""
    client = paho.Client(CallbackAPIVersion.VERSION2, client_id="t", protocol=protocol)
    ours, theirs = socket.socketpair()
    with ours, theirs:
        client._sock = ours
        info = paho.MQTTMessageInfo(mid)
        client._send_publish(mid, TOPIC.encode(), payload, 1, False, False, info, None)
        client._sock = None
        theirs.settimeout(5)
        return theirs.recv(65536)


@pytest.mark.parametrize("protocol", [paho.MQTTv5, paho.MQTTv311])
@pytest.mark.parametrize("mid", [1, 0x7B, 0x7B00 + 1, 0x7B22, 6011, 65535])
def test_payload_found_whatever_the_packet_id(protocol: MQTTProtocolVersion, mid: int) -> None:
    # 0x7B is "{": a search for the JSON's first brace landed in such packet ids,
    # the parse failed inside paho's write, and paho wrote the packet again, for ever.
    payload = json.dumps({"type": "alert", "data": {"details": {"n": 5}}}).encode() * 3
    found = _publish_parts(_packet(protocol, mid, payload), protocol == paho.MQTTv5)
    assert found == (TOPIC.encode(), payload)


def test_partial_and_foreign_packets_are_not_publishes() -> None:
    whole = _packet(paho.MQTTv5, 7, b'{"n": 1}')
    assert _publish_parts(whole[:-3], True) is None  # a partial write
    assert _publish_parts(b"\x40\x02\x00\x07", True) is None  # a PUBACK
    assert _publish_parts(b"", True) is None
