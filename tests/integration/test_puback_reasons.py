"""PUBACK and SUBACK reason codes: what the broker refused is kept, retried or counted.

Through a real Mosquitto 2.x: "no matching subscribers" (16) while the central
subscriber is away, "not authorized" (135) while an ACL denies the unit's topics, an
event larger than the broker's Maximum Packet Size, and the ``accept`` policy for 16.
"""

from __future__ import annotations

import logging
import signal
import time
from pathlib import Path
from typing import Any

import pytest
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.reasoncodes import ReasonCode

from gateway.app import App
from gateway.events import Draft
from gateway.localservers import Mosquitto
from gateway.transport.forwarder import publish_size
from gateway.transport.lanes import BULK
from gateway.transport.outbox import Outbox
from gateway.transport.reasons import PUBACK, classify
from tests.support.transport import Collector, sensor_draft, settings_for

BASE = "city/sejong-1/rsu-0001"
FAST_RETRY = {"retry_min_s": 0.2, "retry_max_s": 0.5}


@pytest.mark.parametrize(
    ("code", "policy", "verdict", "counter"),
    [
        (0, "retry", "delivered", None),
        (16, "retry", "retry", None),
        (16, "accept", "discard", "accepted_unsubscribed"),
        (128, "retry", "retry", None),
        (131, "retry", "retry", None),
        (135, "retry", "retry", None),
        (135, "accept", "retry", None),  # the policy concerns 16 only
        (144, "retry", "retry", None),
        (145, "retry", "retry", None),
        (149, "retry", "discard", "lost_refused"),
        (151, "retry", "retry", None),
        (153, "retry", "discard", "lost_refused"),
        (250, "retry", "retry", None),  # an unknown failure code is kept, not dropped
        (5, "retry", "delivered", None),  # an unknown success code
    ],
)
def test_reason_table(code: int, policy: Any, verdict: str, counter: str | None) -> None:
    reason = classify(code, policy)
    assert (reason.verdict, reason.counter) == (verdict, counter)


def test_every_puback_code_of_the_spec_has_an_entry() -> None:
    for code, names in ReasonCode(PacketTypes.PUBACK).names.items():  # type: ignore[no-untyped-call]
        if PacketTypes.PUBACK in next(iter(names.values())):
            assert code in PUBACK, f"PUBACK reason {code} ({names}) has no entry"


def test_publish_size_counts_header_and_length_bytes() -> None:
    for size in (0, 100, 126, 127, 16_380, 20_000):
        topic = "city/a/b/sensors/x"
        remaining = 2 + len(topic) + 2 + 1 + size
        header = 1 + len(_varint(remaining))
        assert publish_size(topic, b"x" * size) == header + remaining


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        byte, n = n % 128, n // 128
        out.append(byte | (128 if n else 0))
        if not n:
            return bytes(out)


def _wait(cond: Any, timeout: float = 20.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return True
        time.sleep(0.05)
    return bool(cond())


def test_no_subscriber_keeps_events_until_one_subscribes(
    tmp_path: Path, mosquitto: Mosquitto, caplog: pytest.LogCaptureFixture
) -> None:
    app = App(settings_for(tmp_path, mosquitto.port, outbox=FAST_RETRY))
    collector: Collector | None = None
    try:
        app.start()
        app.link.wait_connected(10)
        stored = app.emit([sensor_draft(i) for i in range(200)])
        assert _wait(lambda: app.forwarder.refusals.by_reason["no_matching_subscribers"] > 0)
        assert app.outbox.depth >= 200  # nobody got them: nothing deleted
        assert app.forwarder.held_topics
        health = app.health_draft().data["outbox"]
        assert health["refused"] > 0 and health["held_topics"] >= 1
        collector = Collector(mosquitto.port, [f"{BASE}/#"])
        assert collector.wait_for(
            lambda: {e["seq"] for e in collector.payloads("/sensors/pm-1")} >= set(stored.seqs)
        ), f"depth {app.outbox.depth}, held {app.forwarder.held_topics}"
        assert _wait(lambda: app.outbox.depth == 0)
        assert not app.forwarder.held_topics
        assert app.outbox.losses() == dict.fromkeys(app.outbox.losses(), 0)
    finally:
        app.stop()
        if collector is not None:
            collector.close()
    assert any("no_matching_subscribers" in r.getMessage() for r in caplog.records)


def test_acl_denial_keeps_events_until_the_acl_is_fixed(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    acl = tmp_path / "acl"
    acl.write_text("topic read city/#\n")  # the unit may not publish
    broker = Mosquitto(tmp_path / "mosquitto", extra_config=f"acl_file {acl}")
    broker.start()
    app = App(settings_for(tmp_path, broker.port, outbox=FAST_RETRY))
    collector = Collector(broker.port, [f"{BASE}/#"])
    try:
        app.start()
        app.link.wait_connected(10)
        stored = app.emit([sensor_draft(i) for i in range(100)])
        assert _wait(lambda: app.forwarder.refusals.by_reason["not_authorized"] > 0)
        time.sleep(1.0)  # several probes are refused meanwhile
        assert app.outbox.depth >= 100
        assert not collector.payloads("/sensors/pm-1")
        acl.write_text("topic readwrite city/#\n")
        assert broker.proc is not None
        broker.proc.send_signal(signal.SIGHUP)  # Mosquitto reloads its ACL file
        assert collector.wait_for(
            lambda: {e["seq"] for e in collector.payloads("/sensors/pm-1")} >= set(stored.seqs)
        ), f"depth {app.outbox.depth}"
        assert _wait(lambda: app.outbox.depth == 0)
    finally:
        app.stop()
        collector.close()
        broker.stop()
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert any("not_authorized" in r.getMessage() for r in errors)


def big_draft(n: int, size: int) -> Draft:
    return Draft(
        "sensor_reading",
        "pm-1",
        time.time(),
        {"sensor": "pm-1", "protocol": "t", "values": {"n": n}, "extra": {"pad": "x" * size}},
    )


def test_event_larger_than_the_broker_takes_is_counted_not_looped(tmp_path: Path) -> None:
    broker = Mosquitto(tmp_path / "mosquitto", extra_config="max_packet_size 2000")
    broker.start()
    app = App(settings_for(tmp_path, broker.port, outbox=FAST_RETRY))
    collector = Collector(broker.port, [f"{BASE}/#"])
    try:
        app.start()
        app.link.wait_connected(10)
        big = app.emit([big_draft(0, 5000)])
        small = app.emit([sensor_draft(i) for i in range(1, 50)])
        assert collector.wait_for(
            lambda: {e["seq"] for e in collector.payloads("/sensors/pm-1")} >= set(small.seqs)
        ), f"depth {app.outbox.depth}, connects {app.link.connects}"
        assert _wait(lambda: app.outbox.depth == 0)
        assert big.seqs[0] not in {e["seq"] for e in collector.payloads()}
        assert app.outbox.losses()["lost_refused"] == 1
        assert app.link.connects == 1  # the broker never had to close the connection
    finally:
        app.stop()
        collector.close()
        broker.stop()
    # The count survives a restart and is in the next health event.
    with Outbox(tmp_path / "data" / "outbox.sqlite3", app.topics) as box:
        assert box.losses()["lost_refused"] == 1


def test_accept_policy_counts_unsubscribed_events_persistently(
    tmp_path: Path, mosquitto: Mosquitto
) -> None:
    settings = settings_for(tmp_path, mosquitto.port, outbox={"no_subscribers": "accept"})
    app = App(settings)
    try:
        app.start()
        app.link.wait_connected(10)
        app.emit([sensor_draft(i) for i in range(30)])
        assert _wait(lambda: app.outbox.depth == 0)
        assert _wait(lambda: app.outbox.losses()["accepted_unsubscribed"] >= 30)
        assert app.health_draft().data["dropped_events"] >= 30
    finally:
        app.stop()
    second = App(settings)
    try:
        assert second.outbox.losses()["accepted_unsubscribed"] >= 30
    finally:
        second.stop()


def test_refused_subscription_is_reported_and_retried(tmp_path: Path) -> None:
    # Mosquitto 2.0's ACL file never refuses a SUBSCRIBE (it filters at delivery), so
    # the SUBACK a broker such as EMQX or HiveMQ sends is handed to the callback.
    from gateway.transport.mqtt import MqttLink

    settings = settings_for(tmp_path, 1, mqtt={"reconnect_min_s": 0.05})
    link = MqttLink(settings.mqtt, "t", subscriptions=("city/a/b/cmd/#",))
    link._sub_mids[7] = link.subscriptions
    refused = ReasonCode(PacketTypes.SUBACK, identifier=135)  # type: ignore[no-untyped-call]
    link._on_subscribe(None, None, 7, [refused], None)  # type: ignore[arg-type]
    assert not link.subscribed
    assert "135" in str(link.subscription_error)
    assert link.health().subscribed is False
    assert link._resubscribe_at is not None
    assert _wait(link._resubscribe_due, 2.0)
    link._sub_mids[8] = link.subscriptions
    granted = ReasonCode(PacketTypes.SUBACK, identifier=1)  # type: ignore[no-untyped-call]
    link._on_subscribe(None, None, 8, [granted], None)  # type: ignore[arg-type]
    assert link.subscribed and link.subscription_error is None


def test_held_topics_are_bounded_and_the_evicted_one_is_swept(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from gateway.transport import forwarder as forwarder_module
    from gateway.transport.forwarder import Forwarder
    from gateway.transport.mqtt import MqttLink

    monkeypatch.setattr(forwarder_module, "MAX_HELD_TOPICS", 2)
    settings = settings_for(tmp_path, 1)
    with Outbox(tmp_path / "o.db", app_topics()) as box:
        stored = box.add([big_draft(i, 10) for i in range(3)])
        fwd = Forwarder(box, MqttLink(settings.mqtt, "t"))
        for queue in fwd._scheduler.queues:
            queue.advance(stored.seqs[-1])  # every lane's cursor went past them
        for n, seq in enumerate(stored.seqs):
            fwd._outcome(seq, f"city/a/b/sensors/s{n}", 16, BULK)
        assert fwd.held_topics == ["city/a/b/sensors/s1", "city/a/b/sensors/s2"]
        assert fwd.refusals.held_topics == 2
        # The evicted topic's kept row is sent again, not forgotten: its lane went back.
        bulk = [q for q in fwd._scheduler.queues if q.lane == BULK]
        assert all(q.cursor < stored.seqs[0] and q.revisits(stored.seqs[0]) for q in bulk)


def app_topics() -> Any:
    from gateway.events import Topics

    return Topics("city", "sejong-1", "rsu-0001")
