"""A simulated roadside scene in compressed time: a busy two-line camera, two sensors.

What the benchmark and the tests feed a unit to measure bytes and to reconcile totals.
The camera's events are built the way its pipeline builds them: each crossing through
:func:`gateway.events.builder.line_crossing` and counted by the camera's
:class:`~gateway.vision.analytics.interval.IntervalStats`, whose aggregate (every
``aggregate_s``, one closing aggregate at the end) therefore counts exactly the
crossings before it. The sensors are a PMS5003-like particle sensor and an NMEA-like
weather station, each reading every ``sensor_period_s``. :class:`Truth` keeps what was
produced.
"""

from __future__ import annotations

import collections
import math
import random
from collections.abc import Iterator
from dataclasses import dataclass, field

from gateway.events import builder
from gateway.events.envelope import Draft
from gateway.sensors.types import Reading
from gateway.vision.analytics.interval import IntervalStats
from gateway.vision.analytics.types import LineCrossing

CAMERA = "cam-north"
LINES = ("l1", "l2")
SENSORS = ("pm-1", "wx-1")
_LABELS = ("car", "car", "car", "car", "truck", "bus", "motorcycle", "bicycle")


@dataclass(slots=True)
class Truth:
    """What the scene produced: crossings per line, readings and value sums per sensor."""

    crossings: collections.Counter[str] = field(default_factory=collections.Counter)
    readings: collections.Counter[str] = field(default_factory=collections.Counter)
    sums: dict[str, dict[str, float]] = field(default_factory=dict)
    aggregates: int = 0

    @property
    def total_crossings(self) -> int:
        """Crossings of every line."""
        return sum(self.crossings.values())


@dataclass(frozen=True, slots=True)
class Scene:
    """Rates of the scene (defaults: a busy arterial road, readings every 10 s)."""

    crossings_per_hour: float = 2400.0  # both lines together
    aggregate_s: float = 60.0
    sensor_period_s: float = 10.0
    seed: int = 7


def _reading(sensor: str, rng: random.Random, t: float) -> Reading:
    if sensor == "pm-1":
        pm25 = round(rng.uniform(5, 60), 1)
        values: dict[str, float | int | str] = {
            "pm1_0": round(pm25 * 0.7, 1),
            "pm2_5": pm25,
            "pm10": round(pm25 * 1.4, 1),
        }
        extra: dict[str, float | int | str] = {
            "pm2_5_cf1": pm25,
            "particles_0_3um": rng.randrange(900, 9000),
        }
        return Reading("pms5003", values, t, sensor, extra)
    values = {
        "temperature_c": round(rng.uniform(-5, 35), 2),
        "humidity_percent": round(rng.uniform(20, 95), 1),
        "pressure_hpa": round(rng.uniform(990, 1030), 1),
        "wind_speed_ms": round(rng.uniform(0, 12), 1),
    }
    return Reading("nmea", values, t, sensor, {})


def _poisson(rng: random.Random, mean: float) -> int:
    """Arrivals in one step (Knuth's method; small means)."""
    limit, n, product = math.exp(-mean), 0, rng.random()
    while product > limit:
        n += 1
        product *= rng.random()
    return n


def scene_drafts(
    scene: Scene, start_s: float, duration_s: float, truth: Truth
) -> Iterator[list[Draft]]:
    """The scene's events, one list per simulated second, from ``start_s`` (epoch s)."""
    rng = random.Random(scene.seed)
    stats = IntervalStats(list(LINES))
    stats.start_at(start_s)
    per_second = scene.crossings_per_hour / 3600.0
    next_reading = {
        sensor: start_s + i * scene.sensor_period_s / 2 for i, sensor in enumerate(SENSORS)
    }
    track = 0
    for step in range(int(duration_s)):
        t = start_s + step + 1
        drafts: list[Draft] = []
        for _ in range(_poisson(rng, per_second)):
            track += 1
            line = rng.choice(LINES)
            crossing = LineCrossing(
                CAMERA,
                line,
                track,
                rng.choice(_LABELS),
                rng.choice(("left_to_right", "right_to_left")),
                t - rng.random() * 0.9,
                round(rng.uniform(20, 70), 1),
            )
            stats.crossing(crossing)
            truth.crossings[line] += 1
            drafts.append(builder.line_crossing(crossing))
        for sensor in SENSORS:
            if t >= next_reading[sensor]:
                next_reading[sensor] += scene.sensor_period_s
                reading = _reading(sensor, rng, t)
                truth.readings[sensor] += 1
                sums = truth.sums.setdefault(sensor, {})
                for key, value in reading.values.items():
                    sums[key] = sums.get(key, 0.0) + float(value)
                drafts.append(builder.sensor_reading(reading))
        last = step == int(duration_s) - 1
        aggregate = stats.close(CAMERA, t, 0.0 if last else scene.aggregate_s)
        if aggregate is not None:
            truth.aggregates += 1
            drafts.append(builder.aggregate(aggregate))
        yield drafts
