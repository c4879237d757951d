"""Reconcile every event a unit produced against the database and the dead-letter store.

A unit produced seqs ``1 .. last_seq`` (its outbox's high-water mark). Each of them is
**stored** (a point in the database), **dead-lettered** (a letter of the ingest's
durable store holds it), **waiting** (still in the outbox, not lost) or **missing**.
A missing seq is attributed, in this order, to:

1. a loss the unit recorded itself: a range of its outbox's ``losses`` table
   (``bound_size``, ``store_failed``, ...); a range explains at most as many seqs as
   it counts;
2. a lossy fault window the campaign recorded: a broker killed (or stopped without
   persistence) or a database killed loses what had left the units' outboxes shortly
   before the fault (or since the path to the database was impaired) and was not in
   the database yet (see :class:`LossWindow`);

and otherwise it is **UNEXPLAINED**. Stored seqs beyond ``last_seq``, or one seq with
two event times (a reused or forged seq), are flagged too.
"""

from __future__ import annotations

import bisect
from array import array
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field

from gateway.bench.chaos.records import Letter, Stored, UnitRecord

UNEXPLAINED = "UNEXPLAINED"


class SeqRanges:
    """A set of seqs kept as sorted ranges (a database's seqs are mostly contiguous)."""

    def __init__(self, seqs: Iterable[int] = ()) -> None:
        self.firsts: list[int] = []
        self.lasts: list[int] = []
        for seq in sorted(set(seqs)):
            if self.lasts and self.lasts[-1] + 1 == seq:
                self.lasts[-1] = seq
            else:
                self.firsts.append(seq)
                self.lasts.append(seq)

    def __contains__(self, seq: object) -> bool:
        if not isinstance(seq, int):
            return False
        i = bisect.bisect_right(self.firsts, seq) - 1
        return i >= 0 and seq <= self.lasts[i]

    def __len__(self) -> int:
        return sum(b - a + 1 for a, b in zip(self.firsts, self.lasts, strict=True))


@dataclass(frozen=True)
class UnitSnapshot:
    """One unit at a moment: its last seq and the seqs its outbox still held."""

    last_seq: int
    waiting: frozenset[int]

    def left(self, seq: int) -> bool:
        """Whether ``seq`` had left the outbox (acknowledged by the broker, or dropped)."""
        return seq <= self.last_seq and seq not in self.waiting


class Departures:
    """When each event left its unit's outbox, from snapshots taken every second or so.

    The time kept is the *earliest* it can have left: the snapshot before the one
    that first saw it gone.
    """

    def __init__(self) -> None:
        self.left_s: dict[str, array[float]] = {}
        self._seen: dict[str, int] = {}
        self._waiting: dict[str, set[int]] = {}
        self._previous_s: float | None = None

    def update(self, now_s: float, units: dict[str, UnitSnapshot]) -> None:
        """Record the seqs that left since the last update."""
        since = self._previous_s if self._previous_s is not None else now_s
        for name, unit in units.items():
            left = self.left_s.setdefault(name, array("d"))
            seen = self._seen.get(name, 0)
            candidates = self._waiting.get(name, set()) | set(range(seen + 1, unit.last_seq + 1))
            if len(left) <= unit.last_seq:
                left.extend([0.0] * (unit.last_seq + 1 - len(left)))
            still = set()
            for seq in candidates:
                if seq in unit.waiting:
                    still.add(seq)
                else:
                    left[seq] = since
            self._waiting[name] = still
            self._seen[name] = max(seen, unit.last_seq)
        self._previous_s = now_s

    def left(self, gateway: str, seq: int) -> float | None:
        """The earliest time ``seq`` can have left (``None``: not seen leaving)."""
        left = self.left_s.get(gateway)
        if left is None or seq >= len(left) or left[seq] == 0.0:
            return None
        return left[seq]


@dataclass(frozen=True)
class LossWindow:
    """A fault that can lose what the broker or the database had acknowledged.

    It explains a missing event that had left its outbox (the broker acknowledged it)
    by ``at_s``, had not reached the database by the snapshot ``stored_before``, and
    left no earlier than ``earliest_s``: the start of the stretch in which the path
    from the broker to the database was impaired, so that the broker (or the
    database's unflushed buffer) could still hold it.
    """

    label: str
    at_s: float
    earliest_s: float
    stored_before: dict[str, SeqRanges]
    units: dict[str, UnitSnapshot]

    def explains(self, gateway: str, seq: int, left_s: float | None) -> bool:
        """Whether this fault can have lost ``gateway``'s event ``seq``."""
        unit = self.units.get(gateway)
        if unit is None or left_s is None or not unit.left(seq):
            return False
        if not self.earliest_s <= left_s <= self.at_s:
            return False
        return seq not in self.stored_before.get(gateway, SeqRanges())


@dataclass(frozen=True)
class MissingRange:
    """Consecutive missing seqs of one cause."""

    first: int
    last: int
    cause: str

    @property
    def count(self) -> int:
        """How many seqs."""
        return self.last - self.first + 1


@dataclass
class UnitResult:
    """The reconciliation of one unit."""

    gateway: str
    produced: int
    stored: int
    dead_lettered: int
    waiting: int
    duplicates: int
    missing: int
    causes: Counter[str] = field(default_factory=Counter)
    ranges: list[MissingRange] = field(default_factory=list)
    letter_reasons: Counter[str] = field(default_factory=Counter)
    counters: dict[str, int] = field(default_factory=dict)
    beyond_last_seq: list[int] = field(default_factory=list)
    reused: list[int] = field(default_factory=list)

    @property
    def unexplained(self) -> int:
        """Missing seqs with no recorded cause."""
        return self.causes[UNEXPLAINED]

    @property
    def ok(self) -> bool:
        """Nothing unexplained, no seq reused, nothing stored the unit did not produce."""
        return not self.unexplained and not self.reused and not self.beyond_last_seq

    def as_dict(self) -> dict[str, object]:
        """The figures as JSON-ready values."""
        return {
            "gateway": self.gateway,
            "produced": self.produced,
            "stored": self.stored,
            "dead_lettered": self.dead_lettered,
            "waiting_in_outbox": self.waiting,
            "duplicates": self.duplicates,
            "missing": self.missing,
            "missing_by_cause": dict(self.causes),
            "unexplained": self.unexplained,
            "missing_ranges": [
                {"first": r.first, "last": r.last, "count": r.count, "cause": r.cause}
                for r in self.ranges
            ],
            "dead_letter_reasons": dict(self.letter_reasons),
            "unit_loss_counters": self.counters,
            "stored_beyond_last_seq": self.beyond_last_seq[:20],
            "reused_seqs": self.reused[:20],
            "ok": self.ok,
        }


def _ranges(causes: dict[int, str]) -> list[MissingRange]:
    out: list[MissingRange] = []
    for seq in sorted(causes):
        cause = causes[seq]
        if out and out[-1].cause == cause and out[-1].last + 1 == seq:
            out[-1] = MissingRange(out[-1].first, seq, cause)
        else:
            out.append(MissingRange(seq, seq, cause))
    return out


def reconcile_unit(
    unit: UnitRecord,
    stored: Stored,
    *,
    letters: list[Letter],
    windows: list[LossWindow],
    departures: Departures,
    unit_topic: str,
) -> UnitResult:
    """Account for every seq ``unit`` produced (``unit_topic``: its own topics' prefix)."""
    produced = set(range(1, unit.last_seq + 1))
    in_db = stored.seqs()
    own_letters = [
        x for x in letters if x.seq is not None and x.gateway == unit.gateway
        and x.topic.startswith(unit_topic)
    ]  # fmt: skip
    lettered = {x.seq for x in own_letters if x.seq is not None} - in_db
    reasons = Counter(x.reason for x in own_letters if x.seq in lettered)
    waiting = set(unit.waiting) - in_db - lettered
    missing = sorted(produced - in_db - lettered - waiting)
    budget = [r.count for r in unit.losses]
    causes: dict[int, str] = {}
    for seq in missing:
        cause = UNEXPLAINED
        for i, loss in enumerate(unit.losses):
            if loss.first <= seq <= loss.last and budget[i] > 0:
                budget[i] -= 1
                cause = f"unit:{loss.cause}"
                break
        else:
            left_s = departures.left(unit.gateway, seq)
            for window in windows:
                if window.explains(unit.gateway, seq, left_s):
                    cause = f"fault:{window.label}"
                    break
        causes[seq] = cause
    return UnitResult(
        gateway=unit.gateway,
        produced=len(produced),
        stored=len(in_db & produced),
        dead_lettered=len(lettered & produced),
        waiting=len(waiting & produced),
        duplicates=sum(stored.duplicates(seq) for seq in in_db),
        missing=len(missing),
        causes=Counter(causes.values()),
        ranges=_ranges(causes),
        letter_reasons=reasons,
        counters=dict(unit.counters),
        beyond_last_seq=sorted(in_db - produced),
        reused=sorted(seq for seq in in_db if len(stored.times(seq)) > 1),
    )
