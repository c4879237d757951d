"""The real gateway (App -> outbox -> MQTT) feeding a real ingest worker and database."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from gateway.app import App
from gateway.localservers import Mosquitto, VictoriaMetrics
from gateway.sensors.types import Reading
from gateway.vision.analytics.types import Aggregate, Alert, LineCrossing, ZoneTransition
from tests.support.ingest import settings_for, start_worker
from tests.support.transport import settings_for as gateway_settings

LABELS = {"gateway": "rsu-0001", "site": "sejong-1"}


def labels_of(db: VictoriaMetrics, series: str) -> list[dict[str, Any]]:
    rows = db.export_until(f'{{__name__="{series}"}}', bool, timeout=20)
    return [dict(row["metric"]) for row in rows]  # type: ignore[call-overload]


def test_gateway_events_of_every_type_reach_the_database(
    mosquitto: Mosquitto, victoria: VictoriaMetrics, tmp_path: Path
) -> None:
    worker = start_worker(settings_for(mosquitto, victoria, tmp_path))
    app = App(gateway_settings(tmp_path, mosquitto.port))
    now = time.time()
    try:
        app.start()
        app.on_analytics(
            [
                LineCrossing("cam-north", "l1", 7, "car", "left_to_right", now, speed_kmh=42.0),
                ZoneTransition("cam-north", "z1", 8, "person", "exit", now, dwell_s=4.5),
                Alert(
                    "cam-north",
                    "wrong_way",
                    now,
                    line_id="l1",
                    track_id=9,
                    label="car",
                    details={"heading_deg": 180.0},
                ),
                Aggregate(
                    "cam-north",
                    now - 60,
                    now,
                    {"l1": {"left_to_right": {"car": 3}}},
                    {"z1": {"person": 0.25}},
                    {"car": 38.0},
                ),
            ]
        )
        app.on_reading(Reading("pms5003", {"pm2_5": 12, "pm10": 20}, now, "pm-1"))
        app.publish_health()
        crossing = labels_of(victoria, "line_crossing_speed_kmh")
        zone = labels_of(victoria, "zone_dwell_s")
        alert = labels_of(victoria, "alert_heading_deg")
        aggregate = labels_of(victoria, "aggregate_count_count")
        sensor = labels_of(victoria, "sensor_pm2_5")
        health = labels_of(victoria, "gateway_health_uptime_s")
        online = victoria.export_until('{__name__="availability_online"}', bool)
    finally:
        app.stop()
        worker.stop()
    base = {**LABELS, "source": "cam-north"}
    assert crossing == [
        {
            "__name__": "line_crossing_speed_kmh",
            **base,
            "line": "l1",
            "direction": "left_to_right",
            "class": "car",
        }
    ]
    assert zone == [
        {"__name__": "zone_dwell_s", **base, "zone": "z1", "class": "person", "kind": "exit"}
    ]
    assert alert == [
        {"__name__": "alert_heading_deg", **base, "kind": "wrong_way", "line": "l1", "class": "car"}
    ]
    assert aggregate == [
        {
            "__name__": "aggregate_count_count",
            **base,
            "line": "l1",
            "direction": "left_to_right",
            "class": "car",
        }
    ]
    assert sensor == [
        {
            "__name__": "sensor_pm2_5",
            **LABELS,
            "source": "pm-1",
            "sensor": "pm-1",
            "protocol": "pms5003",
        }
    ]
    assert health == [{"__name__": "gateway_health_uptime_s", **LABELS, "source": "gateway"}]
    assert online[0]["values"][0] == 1  # the retained birth message, seq 0
    stats = worker.stats.snapshot()
    assert sum(stats["dead_letter"].values()) == 0
