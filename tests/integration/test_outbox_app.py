"""The App's outbox bounds: drops are counted and reported by an immediate health event."""

from __future__ import annotations

import json
import time
from pathlib import Path

from gateway.app import App
from gateway.events import Draft, validate_event
from gateway.localservers import free_port
from gateway.runtime.commands import QUEUE_SIZE
from gateway.transport.mqtt import Incoming
from tests.support.polling import wait_for
from tests.support.transport import settings_for


def big(i: int) -> Draft:
    return Draft(
        "sensor_reading",
        "pm-1",
        time.time(),
        {"sensor": "pm-1", "protocol": "t", "values": {"n": i, "pad": "x" * 1000}, "extra": {}},
    )


def test_full_outbox_drops_oldest_and_reports_at_once(tmp_path: Path) -> None:
    port = free_port()  # no broker: nothing leaves the outbox
    app = App(settings_for(tmp_path, port, outbox={"max_bytes": 256 * 1024}))
    try:
        app.start()
        for i in range(600):
            app.emit([big(i)])
            if app.outbox.dropped:
                break  # more drops would drop the report too (it is the newest, then)
        assert app.outbox.dropped > 0
        assert app.outbox.disk_bytes <= 256 * 1024

        def drop_reports() -> list[dict[str, object]]:
            events = [json.loads(r.payload) for r in app.outbox.fetch(0, 10_000)]
            return [e for e in events if e["type"] == "health" and e["data"]["dropped_events"]]

        wait_for(drop_reports, 5)
        reports = drop_reports()
        assert reports, "no health event after the outbox dropped events"
        validate_event(reports[0])
        assert reports[0]["data"]["outbox"]["dropped"] > 0
    finally:
        app.stop()


def test_command_queue_is_bounded(tmp_path: Path) -> None:
    app = App(settings_for(tmp_path, free_port()))
    try:  # not started: nothing consumes the queue
        for _ in range(QUEUE_SIZE + 5):
            app.commands.submit(Incoming("city/s/g/cmd/get_config", b"{}", None, None))
        assert app.commands.rejected == 5
    finally:
        app.stop()
