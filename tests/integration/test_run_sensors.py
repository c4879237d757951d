"""A configured serial sensor on a real pseudo-terminal reaches MQTT as sensor_reading events."""

from __future__ import annotations

import os
import threading
from pathlib import Path

from gateway.app import App
from gateway.events import validate_event
from gateway.localservers import Mosquitto
from tests.support.transport import Collector, settings_for

GGA = b"$GPGGA,123519,4807.038,N,01131.000,E,1,08,0.9,545.4,M,46.9,M,,*47\r\n"


def test_sensor_readings_are_published(tmp_path: Path, mosquitto: Mosquitto) -> None:
    master, slave = os.openpty()
    port = os.ttyname(slave)
    sensor = {"id": "gps", "protocol": "nmea", "port": port, "publish_interval_s": 0}
    collector = Collector(mosquitto.port, ["city/+/+/sensors/#", "city/+/+/health"])
    app = App(settings_for(tmp_path, mosquitto.port, sensors=[sensor]))
    stop = threading.Event()

    def feed() -> None:
        while not stop.wait(0.1):
            os.write(master, GGA)

    writer = threading.Thread(target=feed)
    try:
        app.start()
        writer.start()
        assert collector.wait_for(lambda: len(collector.payloads("/sensors/gps")) >= 3)
        app.publish_health()
        assert collector.wait_for(
            lambda: any("gps" in h["data"]["sensors"] for h in collector.payloads("/health"))
        )
    finally:
        stop.set()
        if writer.is_alive():
            writer.join()
        app.stop()
        collector.close()
        os.close(master)
        os.close(slave)
    reading = collector.payloads("/sensors/gps")[0]
    validate_event(reading)
    assert reading["source"] == "gps" and reading["data"]["protocol"] == "nmea"
    assert "lat" in reading["data"]["values"]
    health = next(h for h in collector.payloads("/health") if "gps" in h["data"]["sensors"])
    validate_event(health)
