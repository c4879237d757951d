"""A lost MQTT connection is logged with a cause an operator can read (real Mosquitto).

paho hands ``on_disconnect`` the reason "Unspecified error" when the socket closes
under it (the broker killed or stopped, the network gone): that reads like a
DISCONNECT the broker sent. The fault campaign's logs showed it after every broker
kill and stop, on every unit and worker.
"""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from paho.mqtt.client import DisconnectFlags
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.reasoncodes import ReasonCode

from gateway.localservers import Mosquitto
from gateway.transport.mqtt import MqttLink
from gateway.transport.paho_client import disconnect_cause
from tests.support import polling
from tests.support.transport import settings_for

CLOSED = "the connection closed (the broker stopped or the network dropped it)"


@pytest.mark.parametrize(
    ("from_broker", "reason", "text"),
    [
        (False, "Unspecified error", CLOSED),
        (False, "Keep alive timeout", "no answer from the broker within the keepalive"),
        (True, "Unspecified error", "the broker disconnected us: Unspecified error"),
        (True, "Session taken over", "the broker disconnected us: Session taken over"),
        (True, "Server shutting down", "the broker disconnected us: Server shutting down"),
        (False, "Protocol error", "Protocol error"),
    ],
)
def test_the_cause_of_a_lost_connection(from_broker: bool, reason: str, text: str) -> None:
    code = ReasonCode(PacketTypes.DISCONNECT, reason)
    assert disconnect_cause(DisconnectFlags(from_broker), code) == text


@pytest.mark.parametrize("kill", [True, False])
def test_a_broker_gone_is_logged_as_a_closed_connection_not_an_unspecified_error(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, kill: bool
) -> None:
    broker = Mosquitto(tmp_path / "broker")
    broker.start()
    link = MqttLink(settings_for(tmp_path, broker.port).mqtt, "cause-test")
    link.start()
    try:
        link.wait_connected(10)
        with caplog.at_level(logging.WARNING, logger="gateway.transport.mqtt"):
            broker.stop(kill=kill)
            assert polling.wait_for(lambda: "connection lost" in caplog.text, 10)
        assert f"MQTT connection lost: {CLOSED}" in caplog.text
        assert "Unspecified error" not in caplog.text
    finally:
        link.stop()
        broker.stop()
