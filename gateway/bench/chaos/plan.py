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
    ``torn_write``: a unit kill that lands inside a write to its outbox's files
    (:class:`~gateway.bench.chaos.parts.TornWrite`: the writes ``torn_skip`` pass, the
    next is torn), every other unit kill of a run starting with the first.
    """

    at_s: float
    kind: Kind
    target: str
    hold_s: float = 0.0
    persistence: bool | None = None
    offset_s: float = 0.0
    restart_after_s: float = 0.0
    count: int = 0  # messages of a poison or rogue burst
    torn_write: bool = False
    torn_skip: int = 0

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
    # Play both ends of ``hold`` (one fault of about the shortest length, one of about
    # the longest) whenever the run has room for them; random draws alone never give
    # the longest (a fair share of the span caps each length).
    extremes: bool = False
    # The kinds the two extremes are played as (an outage, not a pause).
    extreme_kinds: tuple[Kind, ...] = ()


# Broker outages 2-120 s, as field outages go; the rest from what a campaign must cover.
TIMELINES: dict[str, Timeline] = {
    "broker": Timeline(
        ("broker_kill", "broker_stop", "broker_pause"),
        0.5,
        (2.0, 120.0),
        extremes=True,
        extreme_kinds=("broker_kill", "broker_stop"),
    ),
    "db": Timeline(("db_kill", "db_stop", "db_pause"), 0.3, (2.0, 60.0)),
    "gateway": Timeline(("gateway_kill",), 0.6, (0.0, 10.0)),
    "ingest": Timeline(("ingest_kill",), 0.6, (0.0, 10.0)),
    "disk": Timeline(("disk_full",), 0.2, (10.0, 90.0)),
    "clock": Timeline(("clock_step",), 0.5, (10.0, 60.0)),
    "poison": Timeline(("poison",), 1.0, (0.0, 0.0)),
    "rogue": Timeline(("rogue",), 0.5, (0.0, 0.0)),
}


# Both ends of a timeline's lengths are played when the span is at least this many
# times its longest length (a 5-minute run has room for a 2-minute broker outage).
EXTREMES_SPAN = 2.0


def timeline_of(kind: Kind) -> str:
    """The name of the timeline ``kind`` is played on (its faults never overlap)."""
    return next(name for name, line in TIMELINES.items() if kind in line.kinds)


def _intervals(
    rng: random.Random,
    start: float,
    end: float,
    count: int,
    hold: tuple[float, float],
    *,
    extremes: bool = False,
) -> list[tuple[float, float]]:
    """``count`` non-overlapping ``(at, length)`` in ``[start, end]``, in time order.

    Lengths are drawn from ``hold`` (log-uniform: short and long faults alike) but
    never more than a fair share of the span, so that every fault fits. With
    ``extremes`` (and room for it: see :data:`EXTREMES_SPAN`), one fault lasts the
    shortest length and one nearly the longest (90-100 %), in random places.
    """
    span = max(0.0, end - start)
    if count <= 0 or span <= 0:
        return []
    low, high = hold
    fixed: list[float] = []
    if extremes and count >= 2 and span >= EXTREMES_SPAN * high:
        fixed = [low, round(high * rng.uniform(0.9, 1.0), 1)]
    drawn = count - len(fixed)
    share = (span - sum(fixed)) / max(drawn, 1) * 0.6
    lengths = []
    for _ in range(drawn):
        top = max(min(high, share), min(low, share))
        bottom = min(low, top)
        if bottom > 0 and top > bottom:
            length = bottom * (top / bottom) ** rng.random()
        else:
            length = rng.uniform(bottom, top)
        lengths.append(length)
    if fixed:
        lengths += fixed
        rng.shuffle(lengths)
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
        spans = _intervals(rng, start, end, count, line.hold, extremes=line.extremes)
        _extremes_as(kinds, spans, line)
        for i, (at, length) in enumerate(spans):
            faults.append(
                _fault(rng, kinds[i], at, length, persist=persistence[i], targets=targets, index=i)
            )
    return sorted(faults, key=lambda f: (f.at_s, f.kind))


def _extremes_as(kinds: list[Kind], spans: list[tuple[float, float]], line: Timeline) -> None:
    """Give the longest and the shortest fault one of ``line.extreme_kinds`` (swapping kinds)."""
    if not line.extremes or not line.extreme_kinds or len(spans) < 2:
        return
    if max(length for _, length in spans) < 0.9 * line.hold[1]:
        return  # no room for the extremes in this run
    order = sorted(range(len(spans)), key=lambda i: spans[i][1])
    ends = [order[-1], order[0]]
    for i in ends:
        if kinds[i] in line.extreme_kinds:
            continue
        for j in order[1:-1]:
            if kinds[j] in line.extreme_kinds:
                kinds[i], kinds[j] = kinds[j], kinds[i]
                break


def _fault(
    rng: random.Random,
    kind: Kind,
    at: float,
    length: float,
    *,
    persist: bool,
    targets: Targets,
    index: int = 0,
) -> Fault:
    at = round(at, 1)
    length = round(length, 1)
    if kind.startswith("broker_"):
        return Fault(at, kind, "broker", hold_s=length, persistence=persist)
    if kind.startswith("db_"):
        return Fault(at, kind, "database", hold_s=length)
    if kind == "gateway_kill":
        # no draw from rng for the torn write: the plans of seeds already run stay as they were
        torn = index % 2 == 0
        return Fault(
            at,
            kind,
            rng.choice(targets.gateways),
            restart_after_s=length,
            torn_write=torn,
            torn_skip=int(at * 10) % 8 if torn else 0,
        )
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
