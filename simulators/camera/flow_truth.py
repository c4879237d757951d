"""The true flow measures of a simulated intersection, per interval, from its own log.

What a perfect observer of :class:`~simulators.camera.intersection.Intersection` reports.

Nothing here looks at pictures or at the gateway's results except for the interval
boundaries, which are taken from the reports being checked so both sides cover exactly
the same time. Definitions follow ``docs/analytics.md`` with the world's exact state:

- volume, headway and spot speed from the instants the vehicles' centres passed the
  stop line (inbound lanes) or the outbound count line;
- occupancy from the footprint over the presence zone, each frame's state holding until
  the next frame;
- queue from the stopped vehicles before the stop line (:class:`ArmSnapshot`);
- movements from the instants the vehicles passed their destination's gate.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from gateway.vision.analytics.stats import percentile
from simulators.camera.intersection import ARMS, Intersection

MS_TO_KMH = 3.6


@dataclass(slots=True)
class LaneTruth:
    """One lane over one interval."""

    volume: dict[str, int] = field(default_factory=dict)
    headways: list[float] = field(default_factory=list)
    speeds_kmh: list[float] = field(default_factory=list)
    occupancy: float | None = None
    queue_max_m: float | None = None
    queue_mean_m: float | None = None
    queue_max_vehicles: int | None = None

    @property
    def speed_mean_kmh(self) -> float | None:
        """Mean spot speed."""
        return float(np.mean(self.speeds_kmh)) if self.speeds_kmh else None

    @property
    def speed_p85_kmh(self) -> float | None:
        """85th percentile spot speed."""
        return percentile(self.speeds_kmh, 85)

    @property
    def headway_mean_s(self) -> float | None:
        """Mean headway."""
        return float(np.mean(self.headways)) if self.headways else None


@dataclass(slots=True)
class IntervalTruth:
    """Every lane and the movement matrix over ``[start, end)`` (simulated seconds)."""

    start: float
    end: float
    lanes: dict[str, LaneTruth] = field(default_factory=dict)
    movements: dict[str, dict[str, dict[str, int]]] = field(default_factory=dict)


def truth(world: Intersection, start: float, end: float) -> IntervalTruth:
    """The world's flow over ``[start, end)`` in simulated seconds."""
    out = IntervalTruth(start, end)
    for arm in ARMS:
        out.lanes[f"in-{arm}"] = _passages(world, "stop", arm, start, end)
        out.lanes[f"out-{arm}"] = _passages(world, "count", arm, start, end)
        _arm_state(world, arm, start, end, out.lanes[f"in-{arm}"])
    for p in world.passages:
        if p.what == "exit" and start <= p.t < end:
            row = out.movements.setdefault(p.origin, {}).setdefault(p.dest, {})
            row[p.cls] = row.get(p.cls, 0) + 1
    return out


def _passages(world: Intersection, what: str, arm: str, start: float, end: float) -> LaneTruth:
    lane = LaneTruth()
    times = sorted((p.t, p) for p in world.passages if p.what == what and p.arm == arm)
    previous: float | None = None
    for t, p in times:
        if start <= t < end:
            lane.volume[p.cls] = lane.volume.get(p.cls, 0) + 1
            lane.speeds_kmh.append(p.speed * MS_TO_KMH)
            if previous is not None:
                lane.headways.append(t - previous)
        previous = t
    return lane


def _arm_state(world: Intersection, arm: str, start: float, end: float, lane: LaneTruth) -> None:
    snaps = [s for s in world.snapshots if s.arm == arm]
    occupied = queue = weight = 0.0
    qmax, nmax = 0.0, 0
    for k, snap in enumerate(snaps):
        t1 = snaps[k + 1].t if k + 1 < len(snaps) else snap.t + 1.0 / world.config.fps
        lo, hi = max(snap.t, start), min(t1, end)
        if hi <= lo:
            continue
        span = hi - lo
        weight += span
        occupied += span * snap.occupied
        queue += span * snap.queue_m
        qmax, nmax = max(qmax, snap.queue_m), max(nmax, snap.queue_n)
    if weight > 0:
        lane.occupancy = occupied / (end - start)
        lane.queue_mean_m = queue / (end - start)
        lane.queue_max_m = qmax
        lane.queue_max_vehicles = nmax
