"""A byte budget forces the fallback; the database's totals still equal the scene's.

Real Mosquitto, real VictoriaMetrics, the real ingest worker and an :class:`App` with a
``[budget]``: the unit starts with most of its day's budget used (the usage file says
so), sends the scene in full until its measured bytes reach the limit, falls back to
``coarse_sensors`` (crossings held for their aggregates, readings summarized) and
sends the rest. In the database: the aggregates count every simulated crossing, the
raw crossings plus ``crossings_withheld`` are every crossing, and the sensor points
(summaries weighted by their count) hold every reading and its sum.
"""

from __future__ import annotations

import json
import time
from collections import defaultdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from gateway.app import App
from gateway.budget.traffic import SENSORS, Scene, Truth, scene_drafts
from gateway.events.envelope import Draft
from gateway.localservers import Mosquitto, VictoriaMetrics
from tests.support import polling
from tests.support.ingest import settings_for as ingest_settings
from tests.support.ingest import start_worker
from tests.support.transport import settings_for

LIMIT = 400_000
LEFT = 40_000


def _samples(db: VictoriaMetrics, name: str) -> dict[tuple[tuple[str, str], ...], dict[int, float]]:
    """series labels (without the name) -> timestamp -> value (a redelivered copy is one)."""
    out: dict[tuple[tuple[str, str], ...], dict[int, float]] = defaultdict(dict)
    for row in db.export(f'{{__name__="{name}"}}', all_time=True):
        labels = tuple(sorted((k, v) for k, v in row["metric"].items() if k != "__name__"))
        for ts, value in zip(row["timestamps"], row["values"], strict=True):
            out[labels][ts] = float(value)
    return out


def _total(db: VictoriaMetrics, name: str) -> float:
    return sum(sum(series.values()) for series in _samples(db, name).values())


@pytest.mark.slow
def test_a_budget_forces_the_fallback_and_totals_still_match(
    tmp_path: Path, mosquitto: Mosquitto, victoria: VictoriaMetrics
) -> None:
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    now = datetime.now(UTC)
    (data_dir / "budget.json").write_text(
        json.dumps(
            {
                "day": now.strftime("%Y-%m-%d"),
                "day_bytes": LIMIT - LEFT,
                "month": now.strftime("%Y-%m"),
                "month_bytes": LIMIT - LEFT,
            }
        )
    )
    settings = settings_for(
        tmp_path,
        mosquitto.port,
        budget={"bytes_per_day": LIMIT, "sensor_interval_s": 60, "window_s": 5},
    )
    worker = start_worker(ingest_settings(mosquitto, victoria, tmp_path))
    truth = Truth()
    # An hour of scene stamped over the last hour (inside the ingest's time window).
    scene = scene_drafts(Scene(sensor_period_s=5), time.time() - 3700, 3600, truth)
    app = App(settings)
    try:
        app.start()
        assert app.budget is not None
        for _ in range(600):  # 10 minutes in full: about 400 crossings, 240 readings
            app.emit(next(scene))
        assert polling.wait_for(
            lambda: app.budget is not None and app.budget.level == "coarse_sensors", 30
        ), app.budget.health()
        alert = Draft(
            "alert",
            "cam-north",
            time.time() - 60,
            {"camera": "cam-north", "kind": "pedestrian_in_roadway", "details": {}},
        )
        assert app.emit([alert]).seqs  # never degraded: stored at once
        for drafts in scene:
            app.emit(drafts)
        app.publish_health()
        assert polling.wait_for(lambda: app.outbox.depth == 0, 30)
        health = app.health().budget
        assert health is not None and health.crossings_withheld > 0 and health.summaries > 0
        assert health.bytes_today >= LIMIT  # measured on the wire, usage file included
    finally:
        app.stop()  # held crossings of no aggregate and open summaries are stored and sent
    try:
        assert polling.wait_for(lambda: app_depth_zero(settings), 5)
        # The summaries flushed at stop are the unit's last events: wait until they are in.
        polling.wait_for(
            lambda: (
                _total(victoria, "aggregate_total") >= truth.total_crossings
                and all(_weight(victoria, s) >= truth.readings[s] for s in SENSORS)
            ),
            30,
        )
        counted = _total(victoria, "aggregate_count_count")
        assert counted == truth.total_crossings
        assert _total(victoria, "aggregate_total") == truth.total_crossings
        raw = sum(len(s) for s in _samples(victoria, "line_crossing_seq").values())
        withheld = _total(victoria, "aggregate_crossings_withheld")
        assert withheld > 0
        assert raw + withheld == truth.total_crossings
        for sensor in SENSORS:
            _check_sensor(victoria, sensor, truth)
        assert _total(victoria, "alert_count") == 1
        level = _samples(victoria, "gateway_health_budget_level_index")
        assert 2.0 in {v for series in level.values() for v in series.values()}
    finally:
        worker.stop()


def app_depth_zero(settings: Any) -> bool:
    """The outbox file the stopped unit left behind is empty."""
    from gateway.events.topics import Topics
    from gateway.transport.outbox import Outbox

    gw = settings.gateway
    box = Outbox(gw.data_dir / "outbox.sqlite3", Topics("city", gw.site, gw.id))
    try:
        return box.depth == 0
    finally:
        box.close()


def _of(db: VictoriaMetrics, name: str, sensor: str) -> dict[int, float]:
    """timestamp -> value of ``name`` for one sensor (its series merged)."""
    merged: dict[int, float] = {}
    for labels, series in _samples(db, name).items():
        if ("sensor", sensor) in labels:
            merged.update(series)
    return merged


def _weight(db: VictoriaMetrics, sensor: str) -> float:
    """Readings the stored points stand for (a summary counts its readings)."""
    counts = _of(db, "sensor_summary_count", sensor)
    return sum(counts.get(ts, 1.0) for ts in _of(db, "sensor_seq", sensor))


def _check_sensor(db: VictoriaMetrics, sensor: str, truth: Truth) -> None:
    def of(name: str) -> dict[int, float]:
        return _of(db, name, sensor)

    seqs = of("sensor_seq")
    counts = of("sensor_summary_count")
    weight = {ts: counts.get(ts, 1.0) for ts in seqs}
    assert sum(weight.values()) == truth.readings[sensor]
    assert counts, "no summaries stored"
    for key, expected in truth.sums[sensor].items():
        values = of(f"sensor_{key}")
        assert values.keys() == seqs.keys()
        got = sum(values[ts] * weight[ts] for ts in seqs)
        assert got == pytest.approx(expected, rel=1e-6), key
