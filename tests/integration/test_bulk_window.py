"""What is in flight on the bulk lane stays within its window, batches included (real Mosquitto).

An alert overtakes every event still in the outbox, never one already sent: the bulk
window bounds that queue. A compact batch takes one unit of the window per
``BATCH_WEIGHT_BYTES`` of its payload, and a batch heavier than the free room would put
a queue of its own ahead of the next alert (seconds on a slow uplink).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from gateway.app import App
from gateway.localservers import Mosquitto
from gateway.transport.forwarder import BATCH_WEIGHT_BYTES
from tests.support import polling
from tests.support.batches import received_events, store_backlog
from tests.support.transport import Collector, settings_for


def test_no_publish_takes_more_than_the_free_room_of_the_bulk_window(
    tmp_path: Path, mosquitto: Mosquitto
) -> None:
    settings = settings_for(tmp_path, mosquitto.port, outbox={"batch": "backlog"})
    store_backlog(settings.gateway.data_dir, 6000)
    collector = Collector(mosquitto.port, ["city/#"])
    app = App(settings)
    forwarder, link = app.forwarder, app.link
    sends: list[tuple[int, int, int]] = []  # (in flight before, its weight, window limit)
    publish = link.publish

    def recording(topic: str, payload: bytes, *args: Any, **kwargs: Any) -> Any:
        weight = 1 if "/sensors/" in topic else 0
        if topic.endswith("/batch"):
            weight = max(1, len(payload) // BATCH_WEIGHT_BYTES)
        if weight:  # read on the forwarder's thread, which alone changes them
            sends.append((forwarder._bulk_inflight, weight, forwarder.bulk_window.limit))
        return publish(topic, payload, *args, **kwargs)

    link.publish = recording  # type: ignore[method-assign]
    try:
        app.start()
        assert polling.wait_for(lambda: app.outbox.depth == 0, 30)
        assert polling.wait_for(lambda: len(received_events(collector)[0]) >= 6000, 10)
        events, batches = received_events(collector)
    finally:
        app.stop()
        collector.close()
    assert batches > 1
    assert {e["seq"] for e in events if e["type"] == "sensor_reading"} == set(range(1, 6001))
    over = [(i, s) for i, s in enumerate(sends) if s[0] + s[1] > s[2]]
    assert not over, f"sent beyond the window (in flight, weight, limit): {over[:5]}"
