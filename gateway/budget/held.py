"""What the byte budget's gate holds, kept as rows of the unit's outbox database.

Under a byte budget the gate (:mod:`gateway.budget.gate`) holds each ``line_crossing``
until the camera's next ``aggregate`` counts it, and at ``coarse_sensors`` folds sensor
readings into open summaries. Both are kept here too, so that a ``kill -9`` or a crash
loses neither:

* ``budget_held``: one row per held event (``id`` in holding order, ``source``: the
  camera, the draft as JSON), inserted when it is held;
* ``budget_summaries``: one row per open summary (``sensor``, its state as JSON),
  replaced at each reading it takes.

A step's :class:`Changes` are written by :meth:`Changes.apply` inside the transaction
that stores the step's events (``Outbox.add(..., also=changes.apply)``): the aggregate
that counts held crossings is stored in the transaction that deletes their rows, a
closed summary in the one that deletes its row. A crash finds both done or neither:
never a crossing counted twice, never one counted nowhere.

At the next start :func:`load` reads what the run that ended left: what no aggregate of
that run will count (its intervals were in memory) and summaries no reading will close.
It turns each open summary into its closed ``sensor_reading`` (its true count) held in
``budget_held``, in the same transaction, so that everything left is one list of
events to store as they are, each in the transaction that deletes its row.

At most one small row written per held crossing or summarized reading (plus one
delete per aggregate or summary); nothing at level ``full``. How long a committed row
lasts is the outbox's ``synchronous``: every transaction survives ``kill -9``; a power
loss can take the last ones with ``normal``, none with ``full``.
"""

from __future__ import annotations

import json
import logging
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final, cast, get_args

from gateway.budget.coarse import closed
from gateway.events.envelope import Draft, EventType
from gateway.jsontypes import JsonObject

log = logging.getLogger(__name__)

Write = Callable[[sqlite3.Connection], None]
"""Writes run inside the transaction that stores a step's events."""

SCHEMA: Final = (
    "CREATE TABLE IF NOT EXISTS budget_held "
    "(id INTEGER PRIMARY KEY, source TEXT NOT NULL, draft TEXT NOT NULL)",
    "CREATE TABLE IF NOT EXISTS budget_summaries (sensor TEXT PRIMARY KEY, state TEXT NOT NULL)",
    # marks: the last row id ever held ('held_last'), readings ever summarized ('readings')
    "CREATE TABLE IF NOT EXISTS budget_marks (key TEXT PRIMARY KEY, value INTEGER NOT NULL)",
)
_TYPES: Final = frozenset(get_args(EventType))


@dataclass(frozen=True, slots=True)
class HeldEvent:
    """One held event: its row id, its source (the camera), its draft as JSON."""

    id: int
    source: str
    text: str

    @property
    def draft(self) -> Draft:
        """The draft (read back from its JSON)."""
        return decode_draft(self.text)


@dataclass(frozen=True, slots=True)
class Loaded:
    """What the run that ended left in the tables (read at start)."""

    events: list[HeldEvent]  # held crossings, then the summaries it left open, closed
    crossings: int
    summaries: int
    unreadable: int  # rows that are not what this module writes (removed, logged)
    last_id: int = 0  # the last row id ever held (its mark): ids are never used twice
    mark: int = 0  # the last row id the run before held (before its summaries were closed)
    readings: int = 0  # readings ever summarized (its mark)
    salvaged: bool = False  # taken over from a damaged file: the marks say nothing


@dataclass(slots=True)
class Changes:
    """What one step of the gate changes in the tables, written with its events."""

    held: list[HeldEvent] = field(default_factory=list)
    let_go: list[tuple[str, int, int]] = field(default_factory=list)  # source, first, last id
    summaries: dict[str, JsonObject | None] = field(default_factory=dict)  # None: closed
    readings: int = 0  # readings the step summarized (they advance the mark)

    def __bool__(self) -> bool:
        return bool(self.held or self.let_go or self.summaries)

    def apply(self, db: sqlite3.Connection) -> None:
        """Write the changes (inside the caller's open transaction).

        Rows held and let go in the same step are inserted, then deleted.
        """
        if self.held:
            db.executemany(
                "INSERT INTO budget_held (id, source, draft) VALUES (?, ?, ?)",
                [(h.id, h.source, h.text) for h in self.held],
            )
        if self.let_go:
            db.executemany(
                "DELETE FROM budget_held WHERE source = ? AND id BETWEEN ? AND ?", self.let_go
            )
        marks = []
        if self.held:
            marks.append(("held_last", self.held[-1].id))
        if self.readings:
            marks.append(("readings", self.readings))
        db.executemany(  # held_last: the highest; readings: a running count
            "INSERT INTO budget_marks (key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE "
            "SET value = CASE key WHEN 'held_last' THEN MAX(value, excluded.value) "
            "ELSE value + excluded.value END",
            marks,
        )
        for sensor, state in self.summaries.items():
            if state is None:
                db.execute("DELETE FROM budget_summaries WHERE sensor = ?", (sensor,))
            else:
                db.execute(
                    "INSERT OR REPLACE INTO budget_summaries (sensor, state) VALUES (?, ?)",
                    (sensor, json.dumps(state, separators=(",", ":"))),
                )


def let_go(events: list[HeldEvent]) -> tuple[list[Draft], Changes]:
    """The drafts of ``events`` to store as they are, and the changes deleting their rows."""
    return [e.draft for e in events], Changes(let_go=[(e.source, e.id, e.id) for e in events])


def encode_draft(draft: Draft) -> str:
    """A draft as compact JSON (:func:`decode_draft` reads it back)."""
    return json.dumps(
        {"type": draft.type, "source": draft.source, "ts": draft.timestamp, "data": draft.data},
        separators=(",", ":"),
        ensure_ascii=False,
    )


def decode_draft(text: str) -> Draft:
    """The draft :func:`encode_draft` wrote; ``ValueError`` when it is not one."""
    obj = json.loads(text)
    if not isinstance(obj, dict):
        raise ValueError("not a draft: not an object")
    kind, source, ts, data = obj.get("type"), obj.get("source"), obj.get("ts"), obj.get("data")
    if kind not in _TYPES or not isinstance(source, str) or not isinstance(data, dict):
        raise ValueError("not a draft: type, source or data")
    if isinstance(ts, bool) or not isinstance(ts, int | float):
        raise ValueError("not a draft: ts")
    return Draft(cast(EventType, kind), source, float(ts), data)


def load(
    db: sqlite3.Connection, salvage_from: Path | None = None, max_bytes: int = 16 << 20
) -> Loaded:
    """Create the tables when missing; read and close what they hold (inside a transaction).

    Each open summary becomes its closed ``sensor_reading`` in ``budget_held`` (its row
    deleted). Rows that do not read as what :class:`Changes` writes are deleted, counted
    and logged (a damaged row must neither stop the unit nor be stored as an event).
    ``salvage_from``: a damaged outbox file the outbox quarantined; the rows of it that
    still read (up to ``max_bytes``) are taken over first.
    """
    for statement in SCHEMA:
        db.execute(statement)
    if salvage_from is not None:
        _take_over(db, salvage_from, max_bytes)
    marks = dict(db.execute("SELECT key, value FROM budget_marks").fetchall())
    events: list[HeldEvent] = []
    bad: list[int] = []
    crossings = 0
    for row_id, source, text in db.execute("SELECT id, source, draft FROM budget_held ORDER BY id"):
        try:
            kind = decode_draft(str(text)).type
        except ValueError:
            bad.append(int(row_id))
            continue
        events.append(HeldEvent(int(row_id), str(source), str(text)))
        crossings += kind == "line_crossing"
    db.executemany("DELETE FROM budget_held WHERE id = ?", [(i,) for i in bad])
    mark = max([e.id for e in events] + [int(marks.get("held_last", 0))])
    next_id = mark + 1
    opened = db.execute("SELECT sensor, state FROM budget_summaries ORDER BY sensor").fetchall()
    db.execute("DELETE FROM budget_summaries")
    for sensor, text in opened:
        try:
            state = json.loads(str(text))
            draft = closed(state if isinstance(state, dict) else {})
        except ValueError:
            bad.append(0)
            continue
        held = HeldEvent(next_id, str(sensor), encode_draft(draft))
        db.execute(
            "INSERT INTO budget_held (id, source, draft) VALUES (?, ?, ?)",
            (held.id, held.source, held.text),
        )
        events.append(held)
        next_id += 1
    if bad:
        log.error("byte budget: %d unreadable held row(s) removed", len(bad))
    last_id = next_id - 1
    db.execute(
        "INSERT INTO budget_marks (key, value) VALUES ('held_last', ?) "
        "ON CONFLICT(key) DO UPDATE SET value = MAX(value, excluded.value)",
        (last_id,),
    )
    readings = int(marks.get("readings", 0))
    summaries = len(events) - crossings
    salvaged = salvage_from is not None
    return Loaded(events, crossings, summaries, len(bad), last_id, mark, readings, salvaged)


def _take_over(db: sqlite3.Connection, damaged: Path, max_bytes: int) -> None:
    """Copy the held rows that still read from a quarantined file (best effort, logged)."""
    held: list[tuple[str, str]] = []
    summaries: list[tuple[str, str]] = []
    try:
        old = sqlite3.connect(f"file:{damaged}?mode=ro", uri=True, timeout=1.0)
    except sqlite3.Error:
        return
    total = 0
    try:
        for query, out in (
            ("SELECT source, draft FROM budget_held ORDER BY id", held),
            ("SELECT sensor, state FROM budget_summaries", summaries),
        ):
            try:
                cursor = old.execute(query)
                while total < max_bytes and (row := cursor.fetchone()) is not None:
                    if isinstance(row[0], str) and isinstance(row[1], str):
                        out.append((row[0], row[1]))
                        total += len(row[1])
            except sqlite3.Error:
                continue  # a table that does not read (or a file from before the tables)
    finally:
        old.close()
    (last,) = db.execute("SELECT COALESCE(MAX(id), 0) FROM budget_held").fetchone()
    db.executemany(
        "INSERT INTO budget_held (id, source, draft) VALUES (?, ?, ?)",
        [(int(last) + n, source, text) for n, (source, text) in enumerate(held, start=1)],
    )
    db.executemany(
        "INSERT OR IGNORE INTO budget_summaries (sensor, state) VALUES (?, ?)", summaries
    )
    if held or summaries:
        log.warning(
            "byte budget: %d held crossing(s) and %d open summary(ies) read back from the "
            "damaged outbox %s",
            len(held),
            len(summaries),
            damaged,
        )
