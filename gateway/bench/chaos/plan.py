"""The fault schedule of a campaign: every fault, its time, target and length, from a seed.

Pure: the same ``(seconds, seed, targets)`` always gives the same plan. Each kind of
fault has its own timeline; faults of one target never overlap (a broker is down
once at a time), faults of different targets do (the database can be away while the
broker restarts). Every kind appears at least once, whatever the length of the run.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Literal, get_args

Kind = Literal[
    "broker_kill",
    "broker_stop",
    "broker_pause",
    "db_kill",
    "db_stop",
    "db_pause",
    "gateway_kill",
    "ingest_kill",
    "disk_full",
    "clock_step",
    "poison",
    "rogue",
]
KINDS: tuple[Kind, ...] = get_args(Kind)  # in the order above

# Clock offsets a step may set (seconds from the true time), both directions.
CLOCK_STEPS_S = (-8 * 86400, -86400, -3600, -300, 300, 3600, 86400, 2 * 86400, 8 * 86400)


@dataclass(frozen=True)
class Targets:
    """What the campaign runs: the names faults pick their target from."""

    gateways: tuple[str, ...]
    workers: tuple[str, ...]
    disk_gateway: str | None  # the gateway whose outbox is on a small volume
    clock_gateway: str | None  # the gateway whose wall clock can be stepped


@dataclass(frozen=True)
class Fault:
    """One fault: ``kind`` on ``target`` from ``at_s`` (seconds after the start) for ``hold_s``.

    ``persistence`` is the broker's persistence when it comes back (broker faults);
    ``offset_s`` the clock offset a step sets (the clock goes back to true time after
    ``hold_s``); ``restart_after_s`` how long a killed process stays down.
    """

    at_s: float
    kind: Kind
    target: str
    hold_s: float = 0.0
    persistence: bool | None = None
    offset_s: float = 0.0
    restart_after_s: float = 0.0
    count: int = 0  # messages of a poison or rogue burst

    @property
    def end_s(self) -> float:
        """When the fault is over (the target restored)."""
        return self.at_s + max(self.hold_s, self.restart_after_s)


@dataclass(frozen=True)
class Timeline:
    """One target's faults: how many per minute, how long each (seconds)."""

    kinds: tuple[Kind, ...]
    per_minute: float
    hold: tuple[float, float]


# Broker outages 2-120 s, as field outages go; the rest from what a campaign must cover.
TIMELINES: dict[str, Timeline] = {
    "broker": Timeline(("broker_kill", "broker_stop", "broker_pause"), 0.5, (2.0, 120.0)),
    "db": Timeline(("db_kill", "db_stop", "db_pause"), 0.3, (2.0, 60.0)),
    "gateway": Timeline(("gateway_kill",), 0.6, (0.0, 10.0)),
    "ingest": Timeline(("ingest_kill",), 0.6, (0.0, 10.0)),
    "disk": Timeline(("disk_full",), 0.2, (10.0, 90.0)),
    "clock": Timeline(("clock_step",), 0.5, (10.0, 60.0)),
    "poison": Timeline(("poison",), 1.0, (0.0, 0.0)),
    "rogue": Timeline(("rogue",), 0.5, (0.0, 0.0)),
}


def _intervals(
    rng: random.Random, start: float, end: float, count: int, hold: tuple[float, float]
) -> list[tuple[float, float]]:
    """``count`` non-overlapping ``(at, length)`` in ``[start, end]``, in time order.

    Lengths are drawn from ``hold`` (log-uniform: short and long faults alike) but
    never more than a fair share of the span, so that every fault fits.
    """
    span = max(0.0, end - start)
    if count <= 0 or span <= 0:
        return []
    low, high = hold
    share = span / count * 0.6
    lengths = []
    for _ in range(count):
        top = max(min(high, share), min(low, share))
        bottom = min(low, top)
        if bottom > 0 and top > bottom:
            length = bottom * (top / bottom) ** rng.random()
        else:
            length = rng.uniform(bottom, top)
        lengths.append(length)
    free = max(0.0, span - sum(lengths))
    cuts = sorted(rng.uniform(0, free) for _ in range(count))
    out, busy = [], 0.0
    for cut, length in zip(cuts, lengths, strict=True):
        out.append((start + cut + busy, length))
        busy += length
    return out


def plan(seconds: float, seed: int, targets: Targets, *, warmup_s: float = 15.0) -> list[Fault]:
    """The faults of a ``seconds``-long campaign, in time order.

    Faults start after ``warmup_s`` and end before the last tenth of the run (the
    system is whole again before the drain).
    """
    rng = random.Random(seed)
    start, end = warmup_s, max(warmup_s, seconds * 0.9)
    faults: list[Fault] = []
    for name, line in TIMELINES.items():
        if name == "disk" and targets.disk_gateway is None:
            continue
        if name == "clock" and targets.clock_gateway is None:
            continue
        count = max(len(line.kinds), round(line.per_minute * (end - start) / 60))
        kinds = [line.kinds[i % len(line.kinds)] for i in range(count)]
        rng.shuffle(kinds)
        persistence = [i % 2 == 0 for i in range(count)]
        rng.shuffle(persistence)
        for i, (at, length) in enumerate(_intervals(rng, start, end, count, line.hold)):
            faults.append(
                _fault(rng, kinds[i], at, length, persist=persistence[i], targets=targets)
            )
    return sorted(faults, key=lambda f: (f.at_s, f.kind))


def _fault(
    rng: random.Random, kind: Kind, at: float, length: float, *, persist: bool, targets: Targets
) -> Fault:
    at = round(at, 1)
    length = round(length, 1)
    if kind.startswith("broker_"):
        return Fault(at, kind, "broker", hold_s=length, persistence=persist)
    if kind.startswith("db_"):
        return Fault(at, kind, "database", hold_s=length)
    if kind == "gateway_kill":
        return Fault(at, kind, rng.choice(targets.gateways), restart_after_s=length)
    if kind == "ingest_kill":
        return Fault(at, kind, rng.choice(targets.workers), restart_after_s=length)
    if kind == "disk_full":
        assert targets.disk_gateway is not None
        return Fault(at, kind, targets.disk_gateway, hold_s=length)
    if kind == "clock_step":
        assert targets.clock_gateway is not None
        return Fault(
            at, kind, targets.clock_gateway, hold_s=length, offset_s=rng.choice(CLOCK_STEPS_S)
        )
    return Fault(at, kind, "rogue", count=rng.randint(3, 12))
