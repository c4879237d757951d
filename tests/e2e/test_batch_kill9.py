"""A unit killed with ``kill -9`` while it replays compact batches loses nothing.

``gateway run`` (a child process) replays a 20,000-event backlog in batches to real
Mosquitto; the real ingest writes them to real VictoriaMetrics. The unit is killed once
it has deleted acknowledged batches (batches are in flight at that moment), started
again, and every seq must be in the database exactly once after de-duplication, each
with one id (a duplicate is the same event sent again, never another event).
"""

from __future__ import annotations

import contextlib
import os
import signal
import sqlite3
import subprocess
import threading
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest

from gateway.events.topics import Topics
from gateway.localservers import Mosquitto, VictoriaMetrics
from gateway.transport.outbox import Outbox
from tests.support import polling
from tests.support.batches import received_events, store_backlog
from tests.support.cli import start_gateway
from tests.support.ingest import assert_exactly_once, seq_samples, start_worker
from tests.support.ingest import settings_for as ingest_settings
from tests.support.transport import Collector, write_config


@pytest.mark.slow
def test_a_batch_replay_survives_kill_9(
    tmp_path: Path, mosquitto: Mosquitto, victoria: VictoriaMetrics
) -> None:
    """kill -9 of ``gateway run`` while it replays batches: every seq stored, one id each."""
    count = 60_000  # long enough a replay that the kill lands in it on a quiet box too
    config = write_config(
        tmp_path, mosquitto.port, outbox={"batch": "backlog", "batch_max_events": 50}
    )
    data_dir = tmp_path / "data"
    store_backlog(data_dir, count)
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
        # The audit subscriber has its own queue: it may lag the ingest a little.
        polling.wait_for(lambda: _seqs(collector) >= count, 20)
    finally:
        unit.send_signal(signal.SIGTERM)
        unit.wait(20)
        worker.stop()
        collector.close()
    assert_exactly_once(samples, range(1, count + 1))
    ids: dict[int, set[str]] = {}
    events, batches = received_events(collector)
    for event in events:
        ids.setdefault(event["seq"], set()).add(event["id"])
    assert batches > 0
    assert set(ids) == set(range(1, count + 1))
    assert all(len(v) == 1 for v in ids.values())  # a duplicate is the same event again


def _seqs(collector: Collector) -> int:
    return len({e["seq"] for e in received_events(collector)[0]})


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
