"""Compact batches on real Mosquitto: a backlog leaves in batches, live events alone,
and a batch the broker refuses goes again event by event."""

from __future__ import annotations

from pathlib import Path

from gateway.app import App
from gateway.events.envelope import Draft
from gateway.localservers import Mosquitto
from tests.support import polling
from tests.support.batches import received_events, store_backlog
from tests.support.transport import Collector, sensor_draft, settings_for

BATCH = "city/sejong-1/rsu-0001/batch"


def test_a_backlog_leaves_in_batches_and_live_events_alone(
    tmp_path: Path, mosquitto: Mosquitto
) -> None:
    settings = settings_for(
        tmp_path, mosquitto.port, outbox={"batch": "backlog", "batch_max_events": 200}
    )
    store_backlog(settings.gateway.data_dir, 3000)
    collector = Collector(mosquitto.port, ["city/#"])
    app = App(settings)
    try:
        app.start()
        assert polling.wait_for(lambda: app.outbox.depth == 0, 20)
        # Acknowledged by the broker is not yet delivered to the collector: wait for it.
        assert polling.wait_for(lambda: received_events(collector)[1] == app.forwarder.batches, 10)
        _backlog, batches = received_events(collector)
        assert batches >= 3000 // 200
        alert = Draft(
            "alert", "cam-1", 0.0, {"camera": "cam-1", "kind": "wrong_way", "details": {}}
        )
        for n in range(5):  # live: one at a time, each alone on its own topic
            app.emit([alert if n == 2 else sensor_draft(n)])
            assert polling.wait_for(lambda: app.outbox.depth == 0, 10)
        assert polling.wait_for(lambda: len(received_events(collector)[0]) >= 3006, 10)
        events, batches_after = received_events(collector)
    finally:
        app.stop()
        collector.close()
    assert batches_after == batches
    seqs = sorted(e["seq"] for e in events if e["type"] != "health")
    assert seqs == sorted(set(seqs)) and set(range(1, 3001)) <= set(seqs)
    with collector.lock:
        assert any(m.topic.endswith("/events/cam-1/alert") for m in collector.messages)


def test_a_refused_batch_is_sent_again_event_by_event(tmp_path: Path, mosquitto: Mosquitto) -> None:
    """No subscriber on the batch topic: PUBACK 16; the events go one by one instead."""
    settings = settings_for(tmp_path, mosquitto.port, outbox={"batch": "backlog"})
    store_backlog(settings.gateway.data_dir, 500)
    collector = Collector(mosquitto.port, ["city/+/+/sensors/#", "city/+/+/health"])  # no batch
    app = App(settings)
    try:
        app.start()
        assert polling.wait_for(lambda: app.outbox.depth == 0, 20)
        assert polling.wait_for(lambda: _readings(collector) >= 500, 10)
        events, batches = received_events(collector)
    finally:
        app.stop()
        collector.close()
    assert batches == 0 and app.forwarder.batches >= 1
    assert {e["seq"] for e in events if e["type"] == "sensor_reading"} == set(range(1, 501))


def _readings(collector: Collector) -> int:
    return sum(1 for e in received_events(collector)[0] if e["type"] == "sensor_reading")
