"""Flow events from the real pipeline reach a real VictoriaMetrics through `gateway ingest`."""

from __future__ import annotations

import dataclasses
import json
import time
from pathlib import Path
from typing import Any

import pytest

from gateway.events import envelope
from gateway.events.builder import from_analytics
from gateway.localservers import Mosquitto, VictoriaMetrics
from simulators.camera.flow_scenarios import intersection, run
from tests.support.ingest import Publisher, settings_for, start_worker, topic_of


@pytest.mark.slow
def test_flow_events_land_as_lane_volume_and_movement_series(
    mosquitto: Mosquitto, victoria: VictoriaMetrics, tmp_path: Path
) -> None:
    result = run(dataclasses.replace(intersection(), interval_s=10.0), 21.0)
    now = time.time()
    events = []
    for k, report in enumerate(result.reports):  # re-stamped to now: the database's window
        moved = dataclasses.replace(report, start=now - 20 + 10 * k, end=now - 10 + 10 * k)
        draft = from_analytics(moved)
        events.append(
            envelope(
                draft, seq=k + 1, event_id=f"{k + 1:032x}", gateway="rsu-0001", site="sejong-1"
            )
        )
    worker = start_worker(settings_for(mosquitto, victoria, tmp_path))
    publisher = Publisher(mosquitto.port)
    try:
        for event in events:
            publisher.publish(topic_of(event), json.dumps(event))
        publisher.wait_all()
        lanes = victoria.export_until(
            '{__name__="flow_lane_volume"}', lambda series: samples(series) == 2 * 12
        )
        volume = victoria.export('{__name__="flow_volume_count"}')
        moves = victoria.export('{__name__="flow_movement_count"}')
        occupancy: list[Any] = victoria.export('{__name__="flow_lane_occupancy"}')
    finally:
        publisher.close()
        worker.stop()
    assert worker.stats.snapshot()["events_written"] == 2
    assert samples(lanes) == 24  # 12 lanes x 2 intervals
    reports = result.reports
    want_volume = sum(sum(lane.volume.values()) for r in reports for lane in r.lanes.values())
    assert total(volume) == total(lanes) == want_volume > 0
    want_trips = sum(
        n
        for r in reports
        for dests in r.movements.values()
        for c in dests.values()
        for n in c.values()
    )
    assert total(moves) == want_trips > 0
    assert {r["metric"]["lane"] for r in occupancy} == {"in-N", "in-E", "in-S", "in-W"}
    assert all(0 <= v <= 1 for r in occupancy for v in r["values"])


def samples(series: list[Any]) -> int:
    return sum(len(r["values"]) for r in series)


def total(series: list[Any]) -> float:
    return float(sum(sum(r["values"]) for r in series))
