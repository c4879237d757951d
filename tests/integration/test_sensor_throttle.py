"""sensors[].publish_interval_s: one reading per sensor per interval reaches the outbox."""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway.app import App
from gateway.localservers import free_port
from gateway.sensors.throttle import ReadingThrottle
from gateway.sensors.types import Reading
from tests.support.transport import settings_for


class _Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


@pytest.mark.parametrize(
    ("interval", "arrivals", "expected"),
    [
        (0.0, [0.0, 0.1, 0.2], [True, True, True]),
        (10.0, [0.0, 1.0, 9.9, 10.0, 10.5, 25.0], [True, False, False, True, False, True]),
        (2.0, [5.0, 5.0, 7.0], [True, False, True]),
    ],
)
def test_throttle_admits_one_per_interval(
    interval: float, arrivals: list[float], expected: list[bool]
) -> None:
    clock = _Clock()
    throttle = ReadingThrottle(interval, clock)
    got = []
    for t in arrivals:
        clock.now = 100.0 + t
        got.append(throttle.admit())
    assert got == expected
    assert throttle.admitted == expected.count(True)
    assert throttle.suppressed == expected.count(False)


def test_app_publishes_one_reading_per_interval_per_sensor(tmp_path: Path) -> None:
    sensors = [
        {"id": "pm-1", "protocol": "pms5003", "port": "/dev/null", "publish_interval_s": 3600},
        {"id": "gps", "protocol": "nmea", "port": "/dev/null", "publish_interval_s": 0},
    ]
    app = App(settings_for(tmp_path, free_port(), sensors=sensors))
    try:
        before = app.outbox.depth
        for i in range(5):
            app.on_reading(Reading("pms5003", {"pm2_5": i}, 1.0 + i, sensor_id="pm-1"))
            app.on_reading(Reading("nmea", {"lat": 36.5, "lon": 127.0}, 1.0 + i, sensor_id="gps"))
        assert app.outbox.depth - before == 1 + 5
    finally:
        app.outbox.close()
