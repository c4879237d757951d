"""Compact batches on real Mosquitto: a backlog leaves in batches, live events alone,
and a unit killed with ``kill -9`` mid-replay loses nothing and duplicates only by id.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import sqlite3
import subprocess
import threading
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest

from gateway.app import App
from gateway.events.batch import decode_batch
from gateway.events.envelope import Draft
from gateway.events.topics import Topics
from gateway.localservers import Mosquitto, VictoriaMetrics
from gateway.transport.outbox import Outbox
from tests import polling
from tests.cli_support import start_gateway
from tests.test_ingest_helpers import assert_exactly_once, seq_samples, start_worker
from tests.test_ingest_helpers import settings_for as ingest_settings
from tests.transport_support import Collector, sensor_draft, settings_for, write_config

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


@pytest.mark.slow
def test_a_batch_replay_survives_kill_9(
    tmp_path: Path, mosquitto: Mosquitto, victoria: VictoriaMetrics
) -> None:
    """kill -9 of ``gateway run`` while it replays batches: every seq stored, one id each."""
    count = 20_000
    config = write_config(
        tmp_path, mosquitto.port, outbox={"batch": "backlog", "batch_max_events": 50}
    )
    data_dir = tmp_path / "data"
    _store_backlog(data_dir, count)
    worker = start_worker(ingest_settings(mosquitto, victoria, tmp_path))
    collector = Collector(
        mosquitto.port, ["city/+/+/batch", "city/+/+/sensors/#"], client_id="audit"
    )
    some_batches = threading.Event()
    collector.client.on_message = _watch(collector, some_batches, 20)
    unit = start_gateway(config, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        assert some_batches.wait(30), "no batches published"
        # Kill once the unit has deleted acknowledged batches (read-only look at its file).
        assert polling.wait_for(lambda: _stored(data_dir) < count - 2000, 30)
        os.kill(unit.pid, signal.SIGKILL)
        unit.wait(10)
        box = Outbox(data_dir / "outbox.sqlite3", Topics("city", "sejong-1", "rsu-0001"))
        left = box.depth
        box.close()
        assert 0 < left < count - 1000, f"not mid-replay: {left} left"
        unit = start_gateway(config, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        samples = seq_samples(victoria, "sensor_seq", expected=count, timeout=60)
    finally:
        unit.send_signal(signal.SIGTERM)
        unit.wait(20)
        worker.stop()
        collector.close()
    assert_exactly_once(samples, range(1, count + 1))
    ids: dict[int, set[str]] = {}
    events, batches = _events(collector)
    for event in events:
        ids.setdefault(event["seq"], set()).add(event["id"])
    assert batches > 0
    assert set(ids) == set(range(1, count + 1))
    assert all(len(v) == 1 for v in ids.values())  # a duplicate is the same event again


def _stored(data_dir: Path) -> int:
    """Rows in the unit's outbox now, read-only (the unit keeps writing)."""
    uri = f"file:{data_dir / 'outbox.sqlite3'}?mode=ro"
    with contextlib.closing(sqlite3.connect(uri, uri=True, timeout=5)) as db:
        return int(db.execute("SELECT count(*) FROM events").fetchone()[0])


def _watch(collector: Collector, seen: threading.Event, batches: int) -> Any:
    """An on_message keeping every message that sets ``seen`` at the n-th batch."""
    got = [0]

    def on_message(client: mqtt.Client, userdata: object, msg: mqtt.MQTTMessage) -> None:
        with collector.lock:
            collector.messages.append(msg)
        if msg.topic.endswith("/batch"):
            got[0] += 1
            if got[0] >= batches:
                seen.set()

    return on_message
