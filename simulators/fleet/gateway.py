"""One virtual gateway: the event stream a roadside unit would publish, and its outages.

Events are built with the project's own builders (:mod:`gateway.events.builder`) and
envelope, so they are exactly what a real gateway sends: line crossings at a given
rate, an aggregate per camera each interval, sensor readings, health. During an
outage events go to a bounded backlog (oldest dropped first, counted) and are sent,
in order, when the link comes back.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from gateway.events import Topics, envelope, new_id
from gateway.events.builder import aggregate, line_crossing, sensor_reading
from gateway.events.envelope import Draft
from gateway.events.health import health
from gateway.health import CameraHealth, PartFailure, SensorHealth
from gateway.sensors.types import Reading
from gateway.vision.analytics.types import Aggregate, LineCrossing
from simulators.fleet import health as sim_health

LABELS = ("car", "car", "car", "car", "truck", "bus", "motorcycle", "bicycle", "person", "person")
DIRECTIONS = ("left_to_right", "right_to_left")


@dataclass(frozen=True, slots=True)
class Message:
    """A message ready to publish."""

    topic: str
    event: dict[str, Any]


@dataclass(frozen=True, slots=True)
class Profile:
    """What every virtual gateway publishes, and how often."""

    rate: float = 1.0  # line crossings per second per gateway
    cameras: int = 2
    aggregate_s: float = 10.0
    sensor_s: float = 5.0
    health_s: float = 15.0
    outage_rate: float = 0.0  # outages started per second per gateway
    outage_s: float = 5.0
    backlog_max: int = 10_000
    prefix: str = "city"


@dataclass
class VirtualGateway:
    """Generates one gateway's events in simulated time ``now`` (seconds since the epoch)."""

    gateway_id: str
    site: str
    profile: Profile
    rng: np.random.Generator
    start: float
    seq: int = 0
    offline_until: float = 0.0
    outages: int = 0
    dropped: int = 0
    backlog: deque[Message] = field(default_factory=deque)
    counts: dict[str, int] = field(default_factory=dict)  # generated, by event type
    _track: int = 0
    _window: dict[str, dict[str, dict[str, dict[str, int]]]] = field(default_factory=dict)
    _next: dict[str, float] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.topics = Topics(self.profile.prefix, self.site, self.gateway_id)
        self.cameras = [f"cam-{i + 1}" for i in range(self.profile.cameras)]
        jitter = float(self.rng.uniform(0, 1))
        for kind in ("aggregate", "sensor", "health"):
            self._next[kind] = self.start + jitter * getattr(self.profile, f"{kind}_s")
        self._agg_start = self.start

    def online(self, now: float) -> bool:
        """Whether the gateway's link is up at ``now``."""
        return now >= self.offline_until

    def tick(self, now: float, dt: float) -> list[Message]:
        """Advance ``dt`` seconds to ``now``; return what to publish now (backlog first)."""
        p = self.profile
        if self.online(now) and p.outage_rate > 0 and self.rng.random() < p.outage_rate * dt:
            self.offline_until = now + p.outage_s
            self.outages += 1
        fresh: list[Draft] = []
        for _ in range(int(self.rng.poisson(p.rate * dt))):
            fresh.append(self._crossing(now - float(self.rng.uniform(0, dt))))
        fresh.sort(key=lambda d: d.timestamp)
        if now >= self._next["aggregate"]:
            fresh.extend(self._aggregates(now))
            self._next["aggregate"] += p.aggregate_s
        if now >= self._next["sensor"]:
            fresh.extend(self._readings(now))
            self._next["sensor"] += p.sensor_s
        if now >= self._next["health"]:
            fresh.append(self._health(now))
            self._next["health"] += p.health_s
        for draft in fresh:
            self.backlog.append(self._envelope(draft))
            if len(self.backlog) > p.backlog_max:
                self.backlog.popleft()
                self.dropped += 1
        if not self.online(now):
            return []
        out = list(self.backlog)
        self.backlog.clear()
        return out

    def flush(self) -> list[Message]:
        """End any outage and return the backlog."""
        self.offline_until = 0.0
        out = list(self.backlog)
        self.backlog.clear()
        return out

    def _envelope(self, draft: Draft) -> Message:
        self.seq += 1
        self.counts[draft.type] = self.counts.get(draft.type, 0) + 1
        event = envelope(
            draft, seq=self.seq, event_id=new_id(), gateway=self.gateway_id, site=self.site
        )
        return Message(self.topics.for_draft(draft), event)

    def _crossing(self, ts: float) -> Draft:
        self._track += 1
        camera = self.cameras[int(self.rng.integers(len(self.cameras)))]
        label = LABELS[int(self.rng.integers(len(LABELS)))]
        direction = DIRECTIONS[int(self.rng.integers(2))]
        line = "l1" if self.rng.random() < 0.7 else "l2"
        speed = None if label == "person" else float(self.rng.normal(38, 9))
        by_dir = self._window.setdefault(camera, {}).setdefault(line, {}).setdefault(direction, {})
        by_dir[label] = by_dir.get(label, 0) + 1
        return line_crossing(LineCrossing(camera, line, self._track, label, direction, ts, speed))

    def _aggregates(self, now: float) -> list[Draft]:
        drafts = [
            aggregate(Aggregate(camera, self._agg_start, now, self._window.get(camera, {})))
            for camera in self.cameras
        ]
        self._window = {}
        self._agg_start = now
        return drafts

    def _readings(self, now: float) -> list[Draft]:
        hour = (now / 3600.0) % 24
        pm25 = max(0.0, 12 + 8 * math.sin(hour / 24 * 2 * math.pi) + float(self.rng.normal(0, 2)))
        pm = Reading(
            "pms5003",
            {"pm1_0": round(pm25 * 0.7, 1), "pm2_5": round(pm25, 1), "pm10": round(pm25 * 1.4, 1)},
            now,
            "pm-1",
        )
        temp = Reading(
            "sht31",
            {
                "temperature_c": round(float(self.rng.normal(14, 1.5)), 2),
                "humidity_pct": round(float(self.rng.uniform(40, 80)), 1),
            },
            now,
            "env-1",
        )
        return [sensor_reading(pm), sensor_reading(temp)]

    def _health(self, now: float) -> Draft:
        cameras: dict[str, CameraHealth | PartFailure] = {
            c: sim_health.camera(
                c,
                processed_fps=round(float(self.rng.normal(10, 0.2)), 2),
                pipeline=sim_health.pipeline(
                    inference_ms_avg=round(float(self.rng.uniform(12, 20)), 2)
                ),
            )
            for c in self.cameras
        }
        sensors: dict[str, SensorHealth | PartFailure] = {
            "pm-1": SensorHealth(
                state="open",
                last_error="",
                readings=self.counts.get("sensor_reading", 0) // 2,
            )
        }
        report = sim_health.gateway(
            uptime_s=now - self.start,
            system=sim_health.system(
                cpu_percent=round(float(self.rng.uniform(20, 60)), 1),
                load_1m=0.9,
                cpu_temp_c=round(float(self.rng.normal(52, 3)), 1),
                mem_used_bytes=812_000_000,
                mem_total_bytes=4_000_000_000,
                mem_percent=20.3,
                disk_free_bytes=12_000_000_000,
            ),
            cameras=cameras,
            sensors=sensors,
            outbox=sim_health.outbox(depth=len(self.backlog), losses={"dropped": self.dropped}),
            mqtt=sim_health.link(
                state="connected" if self.online(now) else "disconnected",
                connects=self.outages + 1,
            ),
            dropped_events=self.dropped,
        )
        return health(now, report)
