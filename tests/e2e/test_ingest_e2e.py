"""Events published to a real Mosquitto reach a real VictoriaMetrics through `gateway ingest`."""

from __future__ import annotations

from pathlib import Path

from gateway.localservers import Mosquitto, VictoriaMetrics
from tests.support.ingest import (
    Publisher,
    assert_exactly_once,
    line_event,
    seq_samples,
    settings_for,
    start_worker,
)


def test_line_crossings_reach_the_database(
    mosquitto: Mosquitto, victoria: VictoriaMetrics, tmp_path: Path
) -> None:
    worker = start_worker(settings_for(mosquitto, victoria, tmp_path))
    publisher = Publisher(mosquitto.port)
    try:
        for seq in range(1, 501):
            publisher.event(line_event(seq))
        publisher.wait_all()
        samples = seq_samples(victoria, expected=500)
    finally:
        publisher.close()
        worker.stop()
    assert_exactly_once(samples, range(1, 501))
    rows = victoria.export('{__name__="line_crossing_speed_kmh"}')
    assert len(rows) == 1
    labels = rows[0]["metric"]
    assert labels == {
        "__name__": "line_crossing_speed_kmh",
        "gateway": "rsu-0001",
        "site": "sejong-1",
        "source": "cam-north",
        "line": "l1",
        "direction": "left_to_right",
        "class": "car",
    }
    assert worker.stats.snapshot()["events_written"] == 500
    assert len(worker.acks or []) == 0
