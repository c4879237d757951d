"""Per-interval statistics behind :class:`~gateway.vision.analytics.types.Aggregate`.

Counts crossings per line, direction and label; integrates zone occupancy over time
(each reading holds until the next, so irregular frame rates weigh correctly); and
averages the speeds of the crossings that had one.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from gateway.vision.analytics.types import Aggregate, LineCrossing


@dataclass(slots=True)
class _Speeds:
    total: float = 0.0
    n: int = 0


@dataclass(slots=True)
class IntervalStats:
    """Accumulators for the current interval; :meth:`close` emits and restarts them."""

    line_ids: list[str]
    start: float | None = None
    lines: dict[str, dict[str, dict[str, int]]] = field(default_factory=dict)
    speeds: dict[str, _Speeds] = field(default_factory=dict)
    # zone id -> label -> occupancy x seconds
    occupancy_s: dict[str, dict[str, float]] = field(default_factory=dict)
    _last: dict[str, dict[str, int]] = field(default_factory=dict)
    _last_ts: float | None = None

    def __post_init__(self) -> None:
        self.lines = {line: {} for line in self.line_ids}

    def start_at(self, timestamp: float) -> None:
        """Start the first interval at the first timestamp seen (or anew if the clock went back)."""
        if self.start is None or timestamp < self.start:
            self.start = timestamp
            self._last_ts = None

    def crossing(self, crossing: LineCrossing) -> None:
        """Count one crossing (and its speed when known)."""
        per_label = self.lines.setdefault(crossing.line_id, {}).setdefault(crossing.direction, {})
        per_label[crossing.label] = per_label.get(crossing.label, 0) + 1
        if crossing.speed_kmh is not None:
            acc = self.speeds.setdefault(crossing.label, _Speeds())
            acc.total += crossing.speed_kmh
            acc.n += 1

    def occupancy(self, occupancy: dict[str, dict[str, int]], timestamp: float) -> None:
        """Record the zones' occupancy now; it holds until the next reading."""
        self._integrate(timestamp)
        self._last = {z: dict(labels) for z, labels in occupancy.items()}
        for zone in occupancy:
            self.occupancy_s.setdefault(zone, {})

    def _integrate(self, timestamp: float) -> None:
        if self._last_ts is not None and timestamp > self._last_ts:
            dt = timestamp - self._last_ts
            for zone, labels in self._last.items():
                acc = self.occupancy_s.setdefault(zone, {})
                for label, n in labels.items():
                    acc[label] = acc.get(label, 0.0) + n * dt
        if self._last_ts is None or timestamp > self._last_ts:
            self._last_ts = timestamp

    def close(self, camera_id: str, now: float, interval_s: float) -> Aggregate | None:
        """Emit and restart when ``interval_s`` has passed since the interval began."""
        self.start_at(now)
        start = self.start if self.start is not None else now
        if now - start < interval_s:
            return None
        self._integrate(now)
        span = now - start
        zones = {
            zone: {label: round(v / span, 3) for label, v in labels.items()}
            for zone, labels in self.occupancy_s.items()
        }
        agg = Aggregate(
            camera_id=camera_id,
            start=start,
            end=now,
            lines=self.lines,
            zones=zones,
            mean_speed_kmh={k: round(v.total / v.n, 1) for k, v in self.speeds.items() if v.n},
        )
        self.start = now
        self.lines = {line: {} for line in self.line_ids}
        self.speeds = {}
        self.occupancy_s = {zone: {} for zone in self._last}
        return agg
