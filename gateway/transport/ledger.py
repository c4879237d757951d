"""The unit's side of the delivery ledger: what each manifest says the unit stored.

Every event the outbox stores is also written into one running account, in the same
SQLite transaction (so a ``kill -9`` or a power loss rolls both back together): the
seq range it covers, a count per event type and a hash chain over the events' ids in
seq order. A manifest cuts the account: it states the range ``first_seq..last_seq``
(every seq allocated since the previous manifest, up to the one before its own), the
counts, the chain, the loss ranges the outbox recorded since the previous manifest
(whatever seqs they concern: a bound may drop old events long after they were
manifested), the loss counters and what still waits in the outbox. The manifest itself
is the first event of the next range, so manifests account for each other too.

The chain: ``h = sha256(h || bytes.fromhex(id))`` for each stored event in seq order,
starting from ``chain_from`` (the previous manifest's ``chain``; 64 zeros at first).
Seqs consumed without an event (``lost_store``) are not in it; events stored and later
dropped by a bound are.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Final

from gateway.events.envelope import GATEWAY_SOURCE, Draft
from gateway.jsontypes import JsonValue

ZERO_CHAIN: Final = "0" * 64
# At most this many loss ranges go into one manifest (the newest); the counters are
# totals, so nothing of the count is lost when more were recorded.
MAX_MANIFEST_LOSSES: Final = 200

SCHEMA: Final = """
CREATE TABLE IF NOT EXISTS ledger (
    key INTEGER PRIMARY KEY CHECK (key = 1),
    first_seq INTEGER NOT NULL,
    chain_from TEXT NOT NULL,
    chain TEXT NOT NULL,
    types TEXT NOT NULL,
    events INTEGER NOT NULL,
    loss_id INTEGER NOT NULL,
    loss_last INTEGER NOT NULL,
    manifests INTEGER NOT NULL DEFAULT 0
);
"""


def chain_step(chain: str, event_id: str) -> str:
    """The chain after one more event id (64 hex digits)."""
    return hashlib.sha256(bytes.fromhex(chain) + bytes.fromhex(event_id)).hexdigest()


def chain_over(chain_from: str, event_ids: Iterable[str]) -> str:
    """The chain from ``chain_from`` over ``event_ids`` (in seq order)."""
    chain = chain_from
    for event_id in event_ids:
        chain = chain_step(chain, event_id)
    return chain


@dataclass(frozen=True, slots=True)
class LossRange:
    """A range of seqs the outbox recorded as lost, with its cause (``losses`` table)."""

    cause: str
    first_seq: int
    last_seq: int
    count: int


@dataclass(frozen=True, slots=True)
class Cut:
    """The account of one manifest, read and reset in the transaction that stores it."""

    first_seq: int
    last_seq: int
    chain_from: str
    chain: str
    types: dict[str, int]
    events: int
    losses: list[LossRange]
    counters: dict[str, int]
    waiting_from: int | None  # the oldest seq still in the outbox
    waiting: int  # events still in the outbox
    number: int  # manifests cut by this outbox database, this one included

    def data(self, interval_s: float) -> dict[str, JsonValue]:
        """The manifest's ``data`` (``schema/v1.json``, ``manifest``)."""
        out: dict[str, JsonValue] = {
            "first_seq": self.first_seq,
            "last_seq": self.last_seq,
            "events": self.events,
            "types": dict(sorted(self.types.items())),
            "chain_from": self.chain_from,
            "chain": self.chain,
            "losses": [
                {
                    "cause": r.cause,
                    "first_seq": r.first_seq,
                    "last_seq": r.last_seq,
                    "count": r.count,
                }
                for r in self.losses
            ],
            "lost": dict(sorted(self.counters.items())),
            "waiting": self.waiting,
            "interval_s": interval_s,
            "number": self.number,
        }
        if self.waiting_from is not None:
            out["waiting_from"] = self.waiting_from
        return out

    def draft(self, timestamp: float, interval_s: float) -> Draft:
        """The manifest event."""
        return Draft("manifest", GATEWAY_SOURCE, timestamp, self.data(interval_s))


def _state(db: sqlite3.Connection) -> tuple[int, str, str, dict[str, int], int, int, int, int]:
    row = db.execute(
        "SELECT first_seq, chain_from, chain, types, events, loss_id, loss_last, manifests "
        "FROM ledger WHERE key = 1"
    ).fetchone()
    if row is None:
        # A new account (a new outbox, one recovered from damage, or one of a version
        # without the ledger) reports every loss range already recorded: the first
        # manifest tells the centre the causes of earlier gaps too.
        (last,) = db.execute("SELECT value FROM meta WHERE key = 'last_seq'").fetchone()
        loss_id, loss_last = 0, 0
        db.execute(
            "INSERT INTO ledger (key, first_seq, chain_from, chain, types, events, loss_id, "
            "loss_last) VALUES (1, ?, ?, ?, '{}', 0, ?, ?)",
            (int(last) + 1, ZERO_CHAIN, ZERO_CHAIN, loss_id, loss_last),
        )
        return int(last) + 1, ZERO_CHAIN, ZERO_CHAIN, {}, 0, loss_id, loss_last, 0
    first, chain_from, chain, types, events, loss_id, loss_last, manifests = row
    counts = {str(k): int(v) for k, v in json.loads(types).items()}
    return (
        int(first),
        str(chain_from),
        str(chain),
        counts,
        int(events),
        int(loss_id),
        int(loss_last),
        int(manifests),
    )


def record_locked(db: sqlite3.Connection, rows: Iterable[tuple[int, str, str]]) -> None:
    """Account for stored events ``(seq, id, type)`` in seq order (inside a transaction)."""
    _first, _from, chain, types, events, *_ = _state(db)
    digest = bytes.fromhex(chain)  # kept binary along the batch (chain_step, unrolled)
    sha256, fromhex = hashlib.sha256, bytes.fromhex
    for _seq, event_id, event_type in rows:
        digest = sha256(digest + fromhex(event_id)).digest()
        types[event_type] = types.get(event_type, 0) + 1
        events += 1
    db.execute(
        "UPDATE ledger SET chain = ?, types = ?, events = ? WHERE key = 1",
        (digest.hex(), json.dumps(types, separators=(",", ":")), events),
    )


def cut_locked(db: sqlite3.Connection, counters: Callable[[], dict[str, int]]) -> Cut:
    """Close the account up to the last allocated seq and start the next one after it.

    Inside the transaction that stores the manifest (whose seq is ``last_seq + 1``, the
    first of the next account). ``counters`` reads the outbox's loss counters.
    """
    first, chain_from, chain, types, events, loss_id, loss_last, manifests = _state(db)
    (last,) = db.execute("SELECT value FROM meta WHERE key = 'last_seq'").fetchone()
    losses: list[LossRange] = []
    newest_id, newest_last = loss_id, loss_last
    for row in db.execute(
        "SELECT id, cause, first_seq, last_seq, count FROM losses WHERE id >= ? ORDER BY id",
        (loss_id,),
    ).fetchall():
        rid, low, high, count = int(row[0]), int(row[2]), int(row[3]), int(row[4])
        if rid == loss_id:  # the range reported last time may have grown since
            if high <= loss_last:
                continue
            low, count = loss_last + 1, min(count, high - loss_last)
        losses.append(LossRange(str(row[1]), low, high, count))
        newest_id, newest_last = rid, high
    waiting_row = db.execute("SELECT MIN(seq), COUNT(*) FROM events").fetchone()
    waiting_from = int(waiting_row[0]) if waiting_row[0] is not None else None
    db.execute(
        "UPDATE ledger SET first_seq = ?, chain_from = ?, chain = ?, types = '{}', "
        "events = 0, loss_id = ?, loss_last = ?, manifests = manifests + 1 WHERE key = 1",
        (int(last) + 1, chain, chain, newest_id, newest_last),
    )
    return Cut(
        first_seq=first,
        last_seq=int(last),
        chain_from=chain_from,
        chain=chain,
        types=types,
        events=events,
        losses=losses[-MAX_MANIFEST_LOSSES:],
        counters=counters(),
        waiting_from=waiting_from,
        waiting=int(waiting_row[1]),
        number=manifests + 1,
    )
