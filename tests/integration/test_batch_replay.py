"""Compact batches on real Mosquitto: a backlog leaves in batches, live events alone,
and a batch the broker refuses goes again event by event."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from gateway.app import App
from gateway.events.batch import decode_batch
from gateway.events.envelope import Draft
from gateway.events.topics import Topics
from gateway.localservers import Mosquitto
from gateway.transport.outbox import Outbox
from tests.support import polling
from tests.support.transport import Collector, sensor_draft, settings_for

BATCH = "city/sejong-1/rsu-0001/batch"


def _events(collector: Collector) -> tuple[list[dict[str, Any]], int]:
    """Every event the collector received (batches opened) and the number of batches."""
    with collector.lock:
        messages = list(collector.messages)
    events: list[dict[str, Any]] = []
    batches = 0
    for msg in messages:
        if msg.topic.endswith("/batch"):
            batches += 1
            events.extend(decode_batch(bytes(msg.payload), 1 << 24, 100_000))
        elif not msg.topic.endswith("/status"):
            events.append(json.loads(msg.payload))
    return events, batches


def _store_backlog(data_dir: Path, count: int) -> None:
    box = Outbox(data_dir / "outbox.sqlite3", Topics("city", "sejong-1", "rsu-0001"))
    try:
        for start in range(0, count, 1000):
            box.add([sensor_draft(n) for n in range(start, min(start + 1000, count))])
    finally:
        box.close()


def test_a_backlog_leaves_in_batches_and_live_events_alone(
    tmp_path: Path, mosquitto: Mosquitto
) -> None:
    settings = settings_for(
        tmp_path, mosquitto.port, outbox={"batch": "backlog", "batch_max_events": 200}
    )
    _store_backlog(settings.gateway.data_dir, 3000)
    collector = Collector(mosquitto.port, ["city/#"])
    app = App(settings)
    try:
        app.start()
        assert polling.wait_for(lambda: app.outbox.depth == 0, 20)
        _backlog, batches = _events(collector)
        assert batches >= 3000 // 200 and app.forwarder.batches == batches
        alert = Draft(
            "alert", "cam-1", 0.0, {"camera": "cam-1", "kind": "wrong_way", "details": {}}
        )
        for n in range(5):  # live: one at a time, each alone on its own topic
            app.emit([alert if n == 2 else sensor_draft(n)])
            assert polling.wait_for(lambda: app.outbox.depth == 0, 10)
        assert polling.wait_for(lambda: len(_events(collector)[0]) >= 3006, 10)
        events, batches_after = _events(collector)
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
    _store_backlog(settings.gateway.data_dir, 500)
    collector = Collector(mosquitto.port, ["city/+/+/sensors/#", "city/+/+/health"])  # no batch
    app = App(settings)
    try:
        app.start()
        assert polling.wait_for(lambda: app.outbox.depth == 0, 20)
        events, batches = _events(collector)
    finally:
        app.stop()
        collector.close()
    assert batches == 0 and app.forwarder.batches >= 1
    assert {e["seq"] for e in events if e["type"] == "sensor_reading"} == set(range(1, 501))
