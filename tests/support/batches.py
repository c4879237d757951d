"""Helpers of the compact-batch tests: a stored backlog, and what a collector received."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from gateway.events.batch import decode_batch
from gateway.events.topics import Topics
from gateway.transport.outbox import Outbox
from tests.support.transport import Collector, sensor_draft


def received_events(collector: Collector) -> tuple[list[dict[str, Any]], int]:
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


def store_backlog(data_dir: Path, count: int) -> None:
    """``count`` sensor readings stored in the unit's outbox before it runs."""
    box = Outbox(data_dir / "outbox.sqlite3", Topics("city", "sejong-1", "rsu-0001"))
    try:
        for start in range(0, count, 1000):
            box.add([sensor_draft(n) for n in range(start, min(start + 1000, count))])
    finally:
        box.close()
