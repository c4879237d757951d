"""The on-disk store-and-forward outbox (SQLite in WAL mode).

Every event is written here, with its sequence number and id, before it is published;
a row is deleted only when the broker has acknowledged it (PUBACK). The sequence
counter lives in the same database and is advanced in the same transaction that stores
the events, so it survives restarts and ``kill -9``.

The outbox is bounded by ``max_bytes`` (payload and topic bytes) and ``max_age_s``;
when a bound is exceeded the OLDEST rows are dropped and a persistent counter of
dropped events is advanced.

Durability (``synchronous``): in WAL mode ``normal`` survives a crash or ``kill -9``
of the process (a committed transaction is in the WAL file, in the OS page cache), but
a power loss can roll back the last transactions before the next checkpoint; ``full``
flushes the WAL on every commit and survives power loss too, at the price of one fsync
per batch (slower, and flash wear on SD cards).
"""

from __future__ import annotations

import collections
import contextlib
import itertools
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from gateway.errors import TransportError
from gateway.events.envelope import Draft, encode, envelope, new_id
from gateway.events.topics import Topics

Synchronous = Literal["normal", "full"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS events (
    seq INTEGER PRIMARY KEY,
    id TEXT NOT NULL,
    topic TEXT NOT NULL,
    payload BLOB NOT NULL,
    created REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL);
INSERT OR IGNORE INTO meta (key, value) VALUES ('last_seq', 0), ('dropped', 0);
INSERT OR IGNORE INTO meta (key, value) VALUES ('lost_refused', 0), ('accepted_unsubscribed', 0);
"""
# Persistent counters of events that left the outbox without being delivered.
LOSS_COUNTERS = ("dropped", "lost_refused", "accepted_unsubscribed")
_AGE_CHECK_EVERY_S = 1.0
# The newest stored rows are also kept in memory (bounded) so the forwarder does not
# read back what was just written; replays after a reconnect or restart read SQLite.
RECENT_MAX_BYTES = 8 * 1024 * 1024
_CHUNK = 500


@dataclass(frozen=True, slots=True)
class Row:
    """One stored event as it is published."""

    seq: int
    event_id: str
    topic: str
    payload: bytes


@dataclass(frozen=True, slots=True)
class Stored:
    """What :meth:`Outbox.add` stored: the sequence numbers and ids, in order."""

    seqs: list[int]
    ids: list[str]


class Outbox:
    """A bounded, durable FIFO of encoded events keyed by sequence number.

    Thread-safe: one connection guarded by a lock (writers are serialised by SQLite anyway).
    ``on_drop(n)`` is called (outside the lock) after ``n`` events were dropped by a bound.
    """

    def __init__(
        self,
        path: Path,
        topics: Topics,
        *,
        max_bytes: int = 256 * 1024 * 1024,
        max_age_s: float = 7 * 24 * 3600.0,
        synchronous: Synchronous = "normal",
        on_drop: Callable[[int], None] | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.path = path
        self.topics = topics
        self.max_bytes = max_bytes
        self.max_age_s = max_age_s
        self.on_drop = on_drop
        self._clock = clock
        self._lock = threading.Lock()
        self._recent: collections.deque[Row] = collections.deque()
        self._recent_bytes = 0
        self._last_age_check = 0.0
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(
                str(path), isolation_level=None, check_same_thread=False, timeout=10.0
            )
        except (OSError, sqlite3.Error) as exc:
            raise TransportError(f"cannot open outbox {path}: {exc}") from exc
        try:
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute(f"PRAGMA synchronous={synchronous.upper()}")
            self._db.executescript(_SCHEMA)
            depth, size = self._db.execute(
                "SELECT COUNT(*), COALESCE(SUM(length(payload) + length(topic)), 0) FROM events"
            ).fetchone()
        except sqlite3.DatabaseError as exc:
            self._db.close()
            raise TransportError(f"outbox {path} is not a usable SQLite database: {exc}") from exc
        self._depth = int(depth)
        self._bytes = int(size)

    # -- writing ---------------------------------------------------------------------

    def add(self, drafts: Sequence[Draft]) -> Stored:
        """Store ``drafts`` in one transaction, allocating consecutive sequence numbers."""
        if not drafts:
            return Stored([], [])
        now = self._clock()
        dropped = 0
        with self._lock:
            try:
                self._db.execute("BEGIN IMMEDIATE")
                (last,) = self._db.execute(
                    "SELECT value FROM meta WHERE key = 'last_seq'"
                ).fetchone()
                rows = []
                seqs: list[int] = []
                ids: list[str] = []
                added = 0
                for offset, draft in enumerate(drafts, start=1):
                    seq = int(last) + offset
                    event_id = new_id()
                    topic = self.topics.for_draft(draft)
                    payload = encode(
                        envelope(
                            draft,
                            seq=seq,
                            event_id=event_id,
                            gateway=self.topics.gateway,
                            site=self.topics.site,
                        )
                    )
                    rows.append((seq, event_id, topic, payload, now))
                    seqs.append(seq)
                    ids.append(event_id)
                    added += len(payload) + len(topic.encode())
                self._db.executemany(
                    "INSERT INTO events (seq, id, topic, payload, created) VALUES (?, ?, ?, ?, ?)",
                    rows,
                )
                self._db.execute("UPDATE meta SET value = ? WHERE key = 'last_seq'", (seqs[-1],))
                self._depth += len(rows)
                self._bytes += added
                dropped = self._enforce_locked(now)
                self._db.execute("COMMIT")
            except sqlite3.Error as exc:
                self._rollback()
                raise TransportError(f"outbox write failed: {exc}") from exc
            if not dropped:
                self._remember(rows)
        if dropped and self.on_drop is not None:
            self.on_drop(dropped)
        return Stored(seqs, ids)

    def _remember(self, rows: list[tuple[int, str, str, bytes, float]]) -> None:
        """Keep the newest rows in memory (contiguous seqs), within RECENT_MAX_BYTES."""
        for seq, event_id, topic, payload, _created in rows:
            self._recent.append(Row(seq, event_id, topic, payload))
            self._recent_bytes += len(payload)
        while self._recent_bytes > RECENT_MAX_BYTES and self._recent:
            self._recent_bytes -= len(self._recent.popleft().payload)

    def ack(self, seqs: Iterable[int]) -> int:
        """Delete acknowledged events; return how many rows were deleted."""
        todo = list(seqs)
        with self._lock:
            try:
                self._db.execute("BEGIN IMMEDIATE")
                deleted, freed = self._delete_locked(todo)
                self._db.execute("COMMIT")
            except sqlite3.Error as exc:
                self._rollback()
                raise TransportError(f"outbox delete failed: {exc}") from exc
            self._forget_locked(todo, deleted, freed)
        return deleted

    def _delete_locked(self, todo: list[int]) -> tuple[int, int]:
        """Delete rows ``todo`` (inside an open transaction); (rows deleted, bytes freed)."""
        deleted = 0
        freed = 0
        for start in range(0, len(todo), _CHUNK):
            chunk = todo[start : start + _CHUNK]
            marks = ",".join("?" * len(chunk))
            for (size,) in self._db.execute(
                f"DELETE FROM events WHERE seq IN ({marks}) "
                "RETURNING length(payload) + length(topic)",
                chunk,
            ).fetchall():
                deleted += 1
                freed += int(size)
        return deleted, freed

    def _forget_locked(self, todo: list[int], deleted: int, freed: int) -> None:
        self._depth -= deleted
        self._bytes -= freed
        done = set(todo)
        while self._recent and self._recent[0].seq in done:
            self._recent_bytes -= len(self._recent.popleft().payload)

    def discard(self, seqs: Iterable[int], counter: str) -> int:
        """Delete undeliverable events and advance the persistent ``counter`` (one transaction).

        Returns how many rows were deleted.
        """
        if counter not in LOSS_COUNTERS:
            raise ValueError(f"unknown loss counter {counter!r}")
        todo = list(seqs)
        with self._lock:
            try:
                self._db.execute("BEGIN IMMEDIATE")
                deleted, freed = self._delete_locked(todo)
                self._db.execute(
                    "UPDATE meta SET value = value + ? WHERE key = ?", (deleted, counter)
                )
                self._db.execute("COMMIT")
            except sqlite3.Error as exc:
                self._rollback()
                raise TransportError(f"outbox delete failed: {exc}") from exc
            self._forget_locked(todo, deleted, freed)
        return deleted

    def enforce(self) -> int:
        """Apply the age and size bounds now; return how many events were dropped."""
        with self._lock:
            try:
                self._db.execute("BEGIN IMMEDIATE")
                self._last_age_check = 0.0
                dropped = self._enforce_locked(self._clock())
                self._db.execute("COMMIT")
            except sqlite3.Error as exc:
                self._rollback()
                raise TransportError(f"outbox write failed: {exc}") from exc
        if dropped and self.on_drop is not None:
            self.on_drop(dropped)
        return dropped

    def _enforce_locked(self, now: float) -> int:
        """Drop the oldest rows beyond the bounds (inside an open transaction)."""
        dropped = 0
        if now - self._last_age_check >= _AGE_CHECK_EVERY_S:
            self._last_age_check = now
            dropped += self._drop_where("created < ?", (now - self.max_age_s,))
        if self._bytes > self.max_bytes:
            # Drop down to 95 % of the bound so a full outbox does not drop on every add.
            excess = self._bytes - int(self.max_bytes * 0.95)
            cutoff = None
            total = 0
            for seq, size in self._db.execute(
                "SELECT seq, length(payload) + length(topic) FROM events ORDER BY seq"
            ):
                total += int(size)
                cutoff = int(seq)
                if total >= excess:
                    break
            if cutoff is not None:
                dropped += self._drop_where("seq <= ?", (cutoff,))
        if dropped:
            self._db.execute("UPDATE meta SET value = value + ? WHERE key = 'dropped'", (dropped,))
            self._recent.clear()  # never publish from memory what a bound dropped
            self._recent_bytes = 0
        return dropped

    def _drop_where(self, where: str, params: tuple[float | int, ...]) -> int:
        count = 0
        freed = 0
        for (size,) in self._db.execute(
            f"DELETE FROM events WHERE {where} RETURNING length(payload) + length(topic)",
            params,
        ).fetchall():
            count += 1
            freed += int(size)
        self._depth -= count
        self._bytes -= freed
        return count

    def _rollback(self) -> None:
        if self._db.in_transaction:
            self._db.execute("ROLLBACK")

    # -- reading ---------------------------------------------------------------------

    def fetch(self, after_seq: int, limit: int) -> list[Row]:
        """Return up to ``limit`` stored events with ``seq > after_seq``, oldest first."""
        with self._lock:
            # From memory only when continuing past a row already taken (after_seq > 0);
            # a replay from the start reads SQLite, which no longer has acknowledged rows.
            # Rows up to ``after_seq`` were taken by the forwarder, whose cursor only moves
            # forward (a replay starts again from SQLite), so their copies are let go here:
            # waiting for the acks instead would pin the buffer at its limit as soon as one
            # ack arrived out of order.
            if self._recent and after_seq > 0 and after_seq + 1 >= self._recent[0].seq:
                while self._recent and self._recent[0].seq <= after_seq:
                    self._recent_bytes -= len(self._recent.popleft().payload)
                return list(itertools.islice(self._recent, 0, limit))
            return [
                Row(int(seq), str(eid), str(topic), bytes(payload))
                for seq, eid, topic, payload in self._db.execute(
                    "SELECT seq, id, topic, payload FROM events WHERE seq > ? ORDER BY seq LIMIT ?",
                    (after_seq, limit),
                )
            ]

    def stored(self, after_seq: int, upto_seq: int, limit: int) -> list[Row]:
        """Stored events with ``after_seq < seq <= upto_seq``, oldest first (from SQLite)."""
        with self._lock:
            return [
                Row(int(seq), str(eid), str(topic), bytes(payload))
                for seq, eid, topic, payload in self._db.execute(
                    "SELECT seq, id, topic, payload FROM events WHERE seq > ? AND seq <= ? "
                    "ORDER BY seq LIMIT ?",
                    (after_seq, upto_seq, limit),
                )
            ]

    def first_on_topic(self, topic: str, after_seq: int, upto_seq: int) -> Row | None:
        """The oldest stored event of ``topic`` with ``after_seq < seq <= upto_seq``."""
        with self._lock:
            found = self._db.execute(
                "SELECT seq, id, topic, payload FROM events WHERE seq > ? AND seq <= ? "
                "AND topic = ? ORDER BY seq LIMIT 1",
                (after_seq, upto_seq, topic),
            ).fetchone()
        if found is None:
            return None
        seq, eid, row_topic, payload = found
        return Row(int(seq), str(eid), str(row_topic), bytes(payload))

    @property
    def depth(self) -> int:
        """How many events wait for an acknowledgement."""
        return self._depth

    @property
    def size_bytes(self) -> int:
        """Payload and topic bytes stored."""
        return self._bytes

    def _meta(self, key: str) -> int:
        with self._lock:
            (value,) = self._db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return int(value)

    @property
    def last_seq(self) -> int:
        """The last sequence number allocated (0 before the first event)."""
        return self._meta("last_seq")

    @property
    def dropped(self) -> int:
        """Events dropped by the bounds since the database was created."""
        return self._meta("dropped")

    def losses(self) -> dict[str, int]:
        """Every persistent loss counter (events that left without being delivered)."""
        with self._lock:
            marks = ",".join("?" * len(LOSS_COUNTERS))
            query = f"SELECT key, value FROM meta WHERE key IN ({marks})"
            found = dict(self._db.execute(query, LOSS_COUNTERS).fetchall())
        return {key: int(found.get(key, 0)) for key in LOSS_COUNTERS}

    def oldest_age_s(self) -> float:
        """Age of the oldest stored event in seconds (0 when empty)."""
        with self._lock:
            row = self._db.execute("SELECT created FROM events ORDER BY seq LIMIT 1").fetchone()
        return max(self._clock() - float(row[0]), 0.0) if row else 0.0

    def stats(self) -> dict[str, int | float]:
        """Depth, bytes, oldest age, dropped counter and last sequence number."""
        return {
            "depth": self.depth,
            "bytes": self.size_bytes,
            "oldest_age_s": round(self.oldest_age_s(), 3),
            "dropped": self.dropped,
            "last_seq": self.last_seq,
        }

    def close(self) -> None:
        """Checkpoint and close the database."""
        with self._lock:
            with contextlib.suppress(sqlite3.Error):
                self._db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            self._db.close()

    def __enter__(self) -> Outbox:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
