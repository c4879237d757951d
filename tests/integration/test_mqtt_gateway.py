"""The gateway over a real Mosquitto: events, availability, health, window, outage."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

from gateway.app import App
from gateway.events import validate_event
from gateway.localservers import Mosquitto
from tests.support.transport import Collector, sensor_draft, settings_for

BASE = "city/sejong-1/rsu-0001"


def test_events_health_and_availability(tmp_path: Path, mosquitto: Mosquitto) -> None:
    collector = Collector(mosquitto.port, [f"{BASE}/#"])
    app = App(settings_for(tmp_path, mosquitto.port))
    try:
        app.start()
        app.link.wait_connected(10)
        stored = app.emit([sensor_draft(i) for i in range(50)])
        assert collector.wait_for(lambda: len(collector.payloads("/sensors/pm-1")) >= 50)
        assert collector.wait_for(lambda: app.outbox.depth == 0)
    finally:
        app.stop()
        collector.close()
    events = collector.payloads("/sensors/pm-1")
    assert [e["seq"] for e in events] == stored.seqs  # in order, once each
    assert [e["id"] for e in events] == stored.ids
    for event in events:
        validate_event(event)
    health = collector.payloads("/health")
    assert health and health[0]["type"] == "health" and health[0]["seq"] == 1
    validate_event(health[0])
    status = collector.payloads("/status")
    assert [s["data"]["state"] for s in status] == ["online", "offline"]
    # A late subscriber still sees the retained "offline".
    late = Collector(mosquitto.port, [f"{BASE}/status"], client_id="late")
    try:
        assert late.wait_for(lambda: len(late.payloads()) == 1, 5)
        assert late.payloads()[0]["data"]["state"] == "offline"
        assert late.messages[0].retain
    finally:
        late.close()


def test_inflight_window_is_bounded(tmp_path: Path, mosquitto: Mosquitto) -> None:
    app = App(settings_for(tmp_path, mosquitto.port, outbox={"max_inflight": 3}))
    collector = Collector(mosquitto.port, [f"{BASE}/#"])  # a PUBACK 16 would keep the rows
    peak = 0
    try:
        app.start()
        app.link.wait_connected(10)
        app.emit([sensor_draft(i) for i in range(300)])
        deadline = time.monotonic() + 20
        while app.outbox.depth and time.monotonic() < deadline:
            peak = max(peak, app.forwarder.inflight)
            time.sleep(0.0005)
        assert app.outbox.depth == 0
    finally:
        app.stop()
        collector.close()
    assert 1 <= peak <= 3


def test_broker_outage_loses_nothing(tmp_path: Path, mosquitto: Mosquitto) -> None:
    # Every topic the unit publishes has a subscriber: a PUBACK 16 would keep the rows.
    collector = Collector(mosquitto.port, [f"{BASE}/sensors/#", f"{BASE}/health"])
    app = App(
        settings_for(
            tmp_path, mosquitto.port, mqtt={"reconnect_min_s": 1.0, "reconnect_max_s": 2.0}
        )
    )
    stop = threading.Event()
    emitted: list[int] = []

    def produce() -> None:
        i = 0
        while not stop.wait(0.05):
            emitted.extend(app.emit([sensor_draft(i), sensor_draft(i + 1)]).seqs)
            i += 2

    producer = threading.Thread(target=produce)
    try:
        app.start()
        app.link.wait_connected(10)
        producer.start()
        time.sleep(2)
        mosquitto.stop()
        time.sleep(15)
        depth_during_outage = app.outbox.depth
        state_during_outage = app.link.health().state
        mosquitto.start()
        assert collector.subscribed.wait(10)
        time.sleep(2)
        stop.set()
        producer.join()
        assert collector.wait_for(lambda: app.outbox.depth == 0, 30)
        want = set(emitted)
        assert collector.wait_for(
            lambda: want <= {e["seq"] for e in collector.payloads("/sensors/pm-1")}, 10
        )
    finally:
        stop.set()
        app.stop()
        collector.close()
    assert depth_during_outage > 200  # kept on disk, not removed without a PUBACK
    assert state_during_outage in ("connecting", "disconnected")
    got: dict[int, set[str]] = {}
    for event in collector.payloads("/sensors/pm-1"):
        got.setdefault(event["seq"], set()).add(event["id"])
    assert set(got) == set(emitted) == set(range(min(emitted), max(emitted) + 1))
    assert all(len(ids) == 1 for ids in got.values())  # a redelivery keeps its id
    assert app.link.connects >= 2


def test_outbox_replays_after_restart_without_broker(tmp_path: Path, mosquitto: Mosquitto) -> None:
    port = mosquitto.port
    mosquitto.stop()
    first = App(settings_for(tmp_path, port))
    first.start()
    seqs = first.emit([sensor_draft(i) for i in range(20)]).seqs
    first.stop()  # nothing was acknowledged: everything stays in the outbox
    mosquitto.start()
    collector = Collector(port, [f"{BASE}/sensors/#"])
    second = App(settings_for(tmp_path, port))
    try:
        second.start()
        assert collector.wait_for(lambda: len(collector.payloads()) >= 20)
        later = second.emit([sensor_draft(99)]).seqs
    finally:
        second.stop()
        collector.close()
    assert [e["seq"] for e in collector.payloads()][:20] == seqs
    # after the first run's closing manifest and the second run's own first health event
    assert later == [seqs[-1] + 3]
    assert json.loads(collector.messages[0].payload)["data"]["values"] == {"n": 0}
