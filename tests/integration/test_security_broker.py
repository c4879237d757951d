"""The generated Mosquitto authorization, attacked on a real Mosquitto 2.0 broker.

Every identity is made by the test with ``FleetCA``; the broker runs exactly the
``roadside.conf`` and ACL that ``gateway pki broker-config`` generates. Each refusal
is asserted by the MQTT reason code and/or the broker's own log line. What Mosquitto
2.0.11 really does: a denied PUBLISH is logged ``Denied PUBLISH from <id>`` (debug
level), answered PUBACK 135 (not authorized) in MQTT v5 and a plain PUBACK in v3.1.1
(silently dropped); SUBSCRIBE is not checked by its ACL (SUBACK grants it) but
every delivery is, so a forbidden subscription receives nothing.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest

from tests.support.security import (
    PASSPHRASE,
    Fleet,
    SecureBroker,
    TlsClient,
    secure_broker,
    tls_alert,
)

NOT_AUTHORIZED = 135
NO_SUBSCRIBERS = 16


@pytest.fixture(scope="module")
def fleet(tmp_path_factory: pytest.TempPathFactory) -> Fleet:
    f = Fleet(tmp_path_factory.mktemp("fleet"))
    f.unit("east", "rsu-a")
    f.unit("east", "rsu-b")
    f.unit("west", "rsu-a")
    f.operator("alice", "admin")
    f.operator("bob", "read-only")
    f.ingest("w1")
    f.unit("east", "rsu-stolen")
    f.ca.revoke(PASSPHRASE, "east/rsu-stolen", reason="stolen")
    f.expired_unit("east", "rsu-old")
    return f


@pytest.fixture
def broker(tmp_path: Path, fleet: Fleet) -> Iterator[SecureBroker]:
    yield from secure_broker(tmp_path / "broker", fleet)


@pytest.fixture
def clients() -> Iterator[list[TlsClient]]:
    made: list[TlsClient] = []
    yield made
    for c in made:
        c.close()


def connect(clients: list[TlsClient], broker: SecureBroker, stem: str, **kw: object) -> TlsClient:
    protocol = kw.pop("protocol", mqtt.MQTTv5)
    client_id = kw.pop("client_id", "")
    client = TlsClient(broker, broker.fleet.ids / stem, str(client_id), int(protocol))  # type: ignore[call-overload]
    clients.append(client)
    assert client.connect(**kw) == "connected"  # type: ignore[arg-type]
    return client


def test_unit_publishes_its_own_topics_and_ingest_reads_them(
    broker: SecureBroker, clients: list[TlsClient]
) -> None:
    ingest = connect(clients, broker, "ingest.w1")
    assert ingest.subscribe("$share/ingest/+/+/+/events/#") == [1]
    assert ingest.subscribe("$share/ingest/+/+/+/health") == [1]
    unit = connect(clients, broker, "east.rsu-a")
    for topic in ("city/east/rsu-a/health", "city/east/rsu-a/events/cam-1/line_crossing"):
        assert unit.publish(topic) == 0
    assert ingest.wait_received("city/east/rsu-a/", 2)
    broker.wait_log("New client connected from 127.0.0.1")
    broker.wait_log("as east/rsu-a (p5")  # the client id is the certificate's name


@pytest.mark.parametrize(
    ("topic", "why"),
    [
        ("city/east/rsu-b/health", "another unit's health"),
        ("city/east/rsu-b/events/cam-1/line_crossing", "another unit's events"),
        ("city/west/rsu-a/status", "the same gateway id at another site"),
        ("city/east/rsu-b/cmd/set_config", "a command to another unit"),
        ("city/east/rsu-a/cmd/set_config", "a command to itself"),
        ("city/ingest/deadletter", "the ingest's dead letters"),
        ("city/east/rsu-a", "its own base without a kind"),
        ("city/central/capabilities/ingest", "the ingest's declaration"),
        ("city/central/capabilities/east", "a declaration of its own"),
        ("other/east/rsu-a/health", "another prefix"),
    ],
)
def test_unit_a_is_refused_outside_its_own_topics(
    broker: SecureBroker, clients: list[TlsClient], topic: str, why: str
) -> None:
    ingest = connect(clients, broker, "ingest.w1")
    ingest.subscribe("#")
    unit = connect(clients, broker, "east.rsu-a")
    assert unit.publish(topic) == NOT_AUTHORIZED, why
    broker.wait_log(f"Denied PUBLISH from east/rsu-a (d0, q1, r0, m1, '{topic}'")
    assert unit.publish("city/east/rsu-a/health") == 0  # still connected, still allowed
    assert ingest.wait_received("city/east/rsu-a/health")
    assert ingest.received(topic) == [] or topic == "city/east/rsu-a"


def test_v311_denied_publish_is_acked_but_dropped(
    broker: SecureBroker, clients: list[TlsClient]
) -> None:
    ingest = connect(clients, broker, "ingest.w1")
    ingest.subscribe("$share/ingest/+/+/+/health")
    unit = connect(clients, broker, "east.rsu-a", protocol=mqtt.MQTTv311)
    assert unit.publish("city/east/rsu-b/health") == "acked"  # v3.1.1 has no reason codes
    broker.wait_log("Denied PUBLISH from east/rsu-a (d0, q1, r0, m1, 'city/east/rsu-b/health'")
    assert unit.publish("city/east/rsu-a/health") == "acked"
    assert ingest.wait_received("city/east/rsu-a/health")
    assert ingest.received("rsu-b") == []


def test_unit_a_cannot_read_unit_b_commands(broker: SecureBroker, clients: list[TlsClient]) -> None:
    a = connect(clients, broker, "east.rsu-a")
    b = connect(clients, broker, "east.rsu-b")
    # Mosquitto 2.0 grants every SUBSCRIBE and checks each delivery instead.
    assert a.subscribe("city/east/rsu-b/cmd/#") == [1]
    assert a.subscribe("city/#") == [1]
    assert b.subscribe("city/east/rsu-b/cmd/#") == [1]
    operator = connect(clients, broker, "operator.alice")
    assert operator.publish("city/east/rsu-b/cmd/get_config", b"{}") == 0
    assert b.wait_received("cmd/get_config")
    broker.wait_log(
        "Sending PUBLISH to east/rsu-b (d0, q1, r0, m1, 'city/east/rsu-b/cmd/get_config'"
    )
    assert operator.publish("city/east/rsu-a/cmd/get_config", b"{}") == 0
    assert a.wait_received("city/east/rsu-a/cmd/get_config")  # its own: delivered
    assert a.received("rsu-b") == []
    assert (
        "Sending PUBLISH to east/rsu-a (d0, q1, r0, m1, 'city/east/rsu-b" not in broker.log_text()
    )


@pytest.mark.parametrize(
    ("stem", "topic"),
    [
        ("operator.alice", "city/east/rsu-a/health"),  # an operator cannot pose as a unit
        ("operator.alice", "city/operator:alice/events/x/y"),  # nor via the unit patterns
        ("ingest.w1", "city/east/rsu-a/cmd/set_config"),  # ingest reads; it does not command
        ("ingest.w1", "city/east/rsu-a/events/cam-1/count"),
    ],
)
def test_operators_and_ingest_stay_in_their_roles(
    broker: SecureBroker, clients: list[TlsClient], stem: str, topic: str
) -> None:
    client = connect(clients, broker, stem)
    assert client.publish(topic) == NOT_AUTHORIZED
    broker.wait_log(f"Denied PUBLISH from {client_name(stem)} (d0, q1, r0, m1, '{topic}'")


def client_name(stem: str) -> str:
    kind, _, name = stem.partition(".")
    return f"{kind}:{name}" if kind in ("operator", "ingest") else f"{kind}/{name}"


@pytest.mark.parametrize(
    ("stem", "allowed"),
    [("ingest.w1", True), ("operator.alice", True), ("operator.bob", False)],
)
def test_only_the_ingest_and_admins_declare_and_every_unit_reads_it(
    broker: SecureBroker, clients: list[TlsClient], stem: str, allowed: bool
) -> None:
    unit = connect(clients, broker, "east.rsu-a")
    assert unit.subscribe("city/central/capabilities/+") == [1]
    writer = connect(clients, broker, stem)
    code = writer.publish("city/central/capabilities/ingest", b"{}")
    if not allowed:  # a read-only operator cannot switch the fleet's batches
        assert code == NOT_AUTHORIZED
        broker.wait_log(f"Denied PUBLISH from {client_name(stem)}")
        return
    assert code == 0
    assert unit.wait_received("city/central/capabilities/ingest")


def test_ingest_publishes_dead_letters_and_stats(
    broker: SecureBroker, clients: list[TlsClient]
) -> None:
    ingest = connect(clients, broker, "ingest.w1")
    assert ingest.publish("city/ingest/deadletter") in (0, NO_SUBSCRIBERS)
    assert ingest.publish("city/ingest/stats/w1") in (0, NO_SUBSCRIBERS)


def test_replies_reach_only_the_operator_they_are_addressed_to(
    broker: SecureBroker, clients: list[TlsClient]
) -> None:
    alice = connect(clients, broker, "operator.alice")
    bob = connect(clients, broker, "operator.bob")
    other_unit = connect(clients, broker, "east.rsu-b")
    for c in (alice, bob, other_unit):
        c.subscribe("city/+/+/reply/#")
    unit = connect(clients, broker, "east.rsu-a")
    assert unit.publish("city/east/rsu-a/reply/operator:alice/42") == 0
    assert alice.wait_received("reply/operator:alice/42")
    # The reply is not delivered to bob nor to another unit, and a unit cannot reply
    # into another unit's space.
    assert unit.publish("city/east/rsu-b/reply/operator:alice/43") == NOT_AUTHORIZED
    assert unit.publish("city/east/rsu-a/reply/operator:bob/44") == 0
    assert bob.wait_received("reply/operator:bob/44")
    assert bob.received("operator:alice") == []
    assert other_unit.received("reply") == []


@pytest.mark.parametrize(
    ("stem", "client_line", "broker_line"),
    [
        ("east.rsu-stolen", "alert certificate revoked", "certificate verify failed"),
        ("east.rsu-old", "alert certificate expired", "certificate verify failed"),
        (None, "alert certificate required", "peer did not return a certificate"),
    ],
    ids=["revoked", "expired", "anonymous"],
)
def test_revoked_expired_and_anonymous_clients_are_refused_at_connect(
    broker: SecureBroker, fleet: Fleet, stem: str | None, client_line: str, broker_line: str
) -> None:
    path = fleet.ids / stem if stem else None
    assert client_line in tls_alert(broker.port, fleet.ca.cert_path, path)
    broker.wait_log(broker_line)
    client = TlsClient(broker, path)  # and paho never gets a CONNACK
    try:
        assert client.connect(timeout=5).startswith("refused")
    finally:
        client.close()
    broker.wait_log("Client <unknown> disconnected: Protocol error")


def test_certificate_of_another_ca_is_refused(tmp_path: Path, broker: SecureBroker) -> None:
    rogue = Fleet(tmp_path / "rogue")
    rogue.unit("east", "rsu-b")  # the right name, the wrong CA
    client = TlsClient(broker, rogue.ids / "east.rsu-b")
    try:
        assert client.connect(timeout=5).startswith("refused")
    finally:
        client.close()
    broker.wait_log("certificate verify failed")


def test_revocation_takes_effect_after_sighup(
    tmp_path: Path, broker: SecureBroker, fleet: Fleet, clients: list[TlsClient]
) -> None:
    fleet.unit("east", "rsu-lost")
    first = TlsClient(broker, fleet.ids / "east.rsu-lost")
    clients.append(first)
    assert first.connect() == "connected"
    first.close()
    fleet.ca.revoke(PASSPHRASE, "east/rsu-lost", reason="lost")
    broker.reload()
    assert "alert certificate revoked" in tls_alert(
        broker.port, fleet.ca.cert_path, fleet.ids / "east.rsu-lost"
    )
    # Everyone else still gets in.
    connect(clients, broker, "east.rsu-a")


def test_a_with_b_client_id_cannot_kick_b(broker: SecureBroker, clients: list[TlsClient]) -> None:
    b = connect(clients, broker, "east.rsu-b", client_id="east/rsu-b")
    b.subscribe("city/east/rsu-b/cmd/#")
    mark = len(broker.log_text())
    a = connect(clients, broker, "east.rsu-a", client_id="east/rsu-b")
    broker.wait_log("as east/rsu-a (p5", start=mark)  # the broker replaced the client id
    assert "already connected, closing old connection" not in broker.log_text()[mark:]
    assert not b.disconnected.is_set()
    operator = connect(clients, broker, "operator.alice")
    operator.publish("city/east/rsu-b/cmd/get_config", b"{}")
    assert b.wait_received("cmd/get_config")  # B is still there and still gets its commands
    assert a.received() == []


@pytest.mark.parametrize("attacker", ["east.rsu-a", "operator.alice"])
def test_nobody_can_wipe_an_ingest_workers_session(
    broker: SecureBroker, clients: list[TlsClient], attacker: str
) -> None:
    worker = connect(clients, broker, "ingest.w1", clean_start=False, session_expiry=3600)
    assert worker.subscribe("$share/ingest/+/+/+/health") == [1]
    worker.client.disconnect()
    worker.client.loop_stop()
    unit = connect(clients, broker, "east.rsu-b")
    for _ in range(3):
        unit.publish("city/east/rsu-b/health")
    mark = len(broker.log_text())
    # The attacker asks for the worker's client id with a clean start.
    connect(clients, broker, attacker, client_id="ingest:w1", clean_start=True)
    broker.wait_log(f"as {client_name(attacker)} (p5, c1", start=mark)
    back = connect(clients, broker, "ingest.w1", clean_start=False, session_expiry=3600)
    assert back.session_present is True
    assert back.wait_received("city/east/rsu-b/health", 3)


def test_an_offline_ingest_worker_keeps_more_than_mosquittos_default_queue(
    broker: SecureBroker, clients: list[TlsClient]
) -> None:
    """The generated broker config lifts Mosquitto's default of 1000 queued messages.

    Beyond a session's ``max_queued_messages`` Mosquitto drops messages for it while it
    still answers the publisher with reason 0, so the default would lose, in silence,
    everything past the first 1000 events of an ingest outage.
    """
    sent = 1500
    worker = connect(clients, broker, "ingest.w1", clean_start=False, session_expiry=3600)
    assert worker.subscribe("$share/ingest/+/+/+/events/#") == [1]
    worker.client.disconnect()
    worker.client.loop_stop()
    unit = connect(clients, broker, "east.rsu-a")
    mids = [
        unit.client.publish("city/east/rsu-a/events/cam/line_crossing", b"%d" % i, qos=1).mid
        for i in range(sent)
    ]
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        with unit.lock:
            if all(m in unit.pubacks for m in mids):
                break
        time.sleep(0.05)
    with unit.lock:
        assert [unit.pubacks[m].value for m in mids] == [0] * sent
    back = connect(clients, broker, "ingest.w1", clean_start=False, session_expiry=3600)
    assert back.session_present is True
    assert back.wait_received("city/east/rsu-a/events/", sent, timeout=20), len(back.received())
    assert sorted(int(m.payload) for m in back.received("events/")) == list(range(sent))
