"""What the campaign reads back: the units' own outbox records, the database, the dead letters.

What a unit produced comes from its outbox (the seq high-water mark, the durable
loss ranges and counters, the rows still waiting), never from the database. All
readers open SQLite read-only, so they can run while the unit or worker writes.
"""

from __future__ import annotations

import json
import sqlite3
from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gateway.localservers import VictoriaMetrics
from gateway.transport.outbox import LOSS_COUNTERS


@dataclass(frozen=True)
class LossRange:
    """A range of seqs a unit recorded as lost, with its cause and how many."""

    cause: str
    first: int
    last: int
    count: int


@dataclass(frozen=True)
class UnitRecord:
    """One unit's outbox as it stands: the last seq, loss counters and ranges, waiting rows."""

    gateway: str
    last_seq: int
    counters: dict[str, int]
    losses: tuple[LossRange, ...]
    waiting: frozenset[int]
    disk_bytes: int = 0


def _connect(path: Path) -> sqlite3.Connection:
    con = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=10)
    con.execute("PRAGMA query_only = 1")
    return con


def read_unit(gateway: str, outbox: Path) -> UnitRecord:
    """Read ``outbox`` (the unit may be running)."""
    if not outbox.exists():
        return UnitRecord(gateway, 0, dict.fromkeys(LOSS_COUNTERS, 0), (), frozenset())
    con = _connect(outbox)
    try:
        try:
            meta = {str(k): int(v) for k, v in con.execute("SELECT key, value FROM meta")}
        except sqlite3.OperationalError as exc:
            if "no such table" not in str(exc):
                raise
            # The unit has created the file and not yet its tables (a slow start).
            return UnitRecord(gateway, 0, dict.fromkeys(LOSS_COUNTERS, 0), (), frozenset())
        losses = tuple(
            LossRange(str(c), int(f), int(la), int(n))
            for c, f, la, n in con.execute(
                "SELECT cause, first_seq, last_seq, count FROM losses ORDER BY id"
            )
        )
        waiting = frozenset(int(s) for (s,) in con.execute("SELECT seq FROM events"))
    finally:
        con.close()
    size = sum(
        p.stat().st_size
        for p in outbox.parent.glob(outbox.name + "*")
        if p.is_file() and not p.name.endswith((".state", ".reserve"))
    )
    return UnitRecord(
        gateway,
        meta.get("last_seq", 0),
        {k: meta.get(k, 0) for k in LOSS_COUNTERS},
        losses,
        waiting,
        size,
    )


@dataclass
class Stored:
    """One unit's points in the database: per seq, its copies per (series, event time).

    A series is the point's whole identity (name and every tag): one event can be
    several points of the same name (an aggregate: one per class and direction), and
    only the same point written twice is a duplicate.
    """

    copies: dict[int, Counter[tuple[str, int]]] = field(default_factory=dict)

    def seqs(self) -> set[int]:
        """The seqs with at least one point."""
        return set(self.copies)

    def times(self, seq: int) -> set[int]:
        """The distinct event times (ms) of ``seq``'s points (one, unless a seq was reused)."""
        return {ts for _series, ts in self.copies.get(seq, Counter())}

    def duplicates(self, seq: int) -> int:
        """Extra copies of the event ``seq`` (redeliveries that were written again)."""
        found = self.copies.get(seq)
        return max(found.values()) - 1 if found else 0


def stored_from_export(rows: Iterable[dict[str, Any]]) -> dict[str, Stored]:
    """Group exported ``*_seq`` series per gateway (seq 0, outside the sequence, left out)."""
    out: dict[str, Stored] = defaultdict(Stored)
    for row in rows:
        labels = row["metric"]
        stored = out[str(labels.get("gateway", ""))]
        series = ",".join(f"{k}={v}" for k, v in sorted(labels.items()))
        for value, ts in zip(row["values"], row["timestamps"], strict=True):
            seq = int(value)
            if seq > 0:
                stored.copies.setdefault(seq, Counter())[(series, int(ts))] += 1
    return dict(out)


def read_database(db: VictoriaMetrics, site: str, timeout: float = 120.0) -> dict[str, Stored]:
    """Every ``*_seq`` point of ``site``, per gateway (:func:`stored_from_export`)."""
    return stored_from_export(
        db.export(f'{{__name__=~".+_seq",site="{site}"}}', timeout, all_time=True)
    )


@dataclass(frozen=True)
class Letter:
    """A dead letter: its reason and topic, and the event it holds when it parses."""

    reason: str
    topic: str
    gateway: str | None
    seq: int | None
    event_id: str | None
    payload: bytes


def read_letters(path: Path) -> list[Letter]:
    """Every letter of the ingest's dead-letter store (none if it does not exist)."""
    if not path.exists():
        return []
    con = _connect(path)
    try:
        rows = con.execute("SELECT reason, topic, payload FROM letters ORDER BY id").fetchall()
    finally:
        con.close()
    letters = []
    for reason, topic, payload in rows:
        gateway, seq, event_id = _identity(bytes(payload))
        letters.append(Letter(str(reason), str(topic), gateway, seq, event_id, bytes(payload)))
    return letters


def _identity(payload: bytes) -> tuple[str | None, int | None, str | None]:
    """``(gateway, seq, id)`` of an event payload, or Nones when it is not one."""
    try:
        event = json.loads(payload)
    except (ValueError, RecursionError):
        return None, None, None
    if not isinstance(event, dict):
        return None, None, None
    gateway, seq, event_id = event.get("gateway"), event.get("seq"), event.get("id")
    return (
        gateway if isinstance(gateway, str) else None,
        seq if isinstance(seq, int) and not isinstance(seq, bool) else None,
        event_id if isinstance(event_id, str) else None,
    )
