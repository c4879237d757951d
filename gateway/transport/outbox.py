"""The on-disk store-and-forward outbox (SQLite in WAL mode).

Every event is written here, with its sequence number and id, before it is published;
a row is deleted only when the broker has accepted it. The sequence counter lives in
the same database and is advanced in the same transaction that stores the events, so
it survives restarts and ``kill -9``.

Loss is never silent. Every event that leaves the outbox without being delivered
advances a persistent counter (``meta`` table, same transaction) and a bounded
``losses`` table records the seq range and the cause:

* bounds: ``max_bytes`` (what the database and its WAL take ON DISK, not just the
  payloads) and ``max_age_s``; beyond either the OLDEST rows are dropped (``dropped``).
  When the volume holds less than ``max_bytes``, the bound shrinks to what fits, so
  the outbox drops its oldest events (counted) instead of failing to store new ones.
* a full disk anyway (another writer filled the volume): a small reserve file is
  released to make room, the oldest events are dropped, and events that still cannot
  be stored consume their seqs and advance ``lost_store`` (kept in memory and written
  with the next successful transaction when even that write fails).
* damage (a 0-byte, truncated or corrupt file): the file is quarantined under a
  timestamped name, readable rows are salvaged, and a fresh outbox continues after the
  seq high-water mark of the side record (:mod:`gateway.transport.outbox_files`), so
  no seq is ever reused; the range that may be lost advances ``lost_damaged``. A
  database that lost its last transactions (power loss with ``synchronous=normal``, a
  truncated WAL) is detected the same way and also continues after the mark.

Ages are measured on a run clock, not the wall clock: it starts from the wall time
when the outbox is created and then advances with ``time.monotonic()``, persisted
across restarts, so an NTP step (forward or backward) never drops or keeps the
backlog by mistake. ``max_age_s`` therefore counts time the gateway ran.

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
import json
import logging
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final, Literal, TypeVar

from gateway.errors import TransportError
from gateway.events.envelope import Draft, encode, envelope, new_ids
from gateway.events.topics import Topics
from gateway.ratelog import RateLimitedLog
from gateway.transport import ledger
from gateway.transport import outbox_files as files
from gateway.transport.lanes import BULK, LANE_NAMES, LANE_SQL, lane_of

log = logging.getLogger(__name__)

Synchronous = Literal["normal", "full"]
T = TypeVar("T")
SideWrite = Callable[[sqlite3.Connection], None]
"""A caller's own writes, run inside the transaction that stores its events."""

_SCHEMA = """
CREATE TABLE IF NOT EXISTS events (
    seq INTEGER PRIMARY KEY,
    id TEXT NOT NULL,
    topic TEXT NOT NULL,
    payload BLOB NOT NULL,
    created REAL NOT NULL,
    lane INTEGER NOT NULL DEFAULT 2
);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS losses (
    id INTEGER PRIMARY KEY,
    cause TEXT NOT NULL,
    first_seq INTEGER NOT NULL,
    last_seq INTEGER NOT NULL,
    count INTEGER NOT NULL,
    at REAL NOT NULL
);
INSERT OR IGNORE INTO meta (key, value) VALUES ('last_seq', 0), ('dropped', 0),
    ('lost_refused', 0), ('accepted_unsubscribed', 0), ('lost_store', 0),
    ('lost_damaged', 0), ('damaged', 0), ('clock_ms', 0);
"""
# Persistent counters of events that left the outbox (or never got in) undelivered.
LOSS_COUNTERS = ("dropped", "lost_refused", "accepted_unsubscribed", "lost_store", "lost_damaged")
MAX_LOSS_RECORDS = 1000
SEQ_RESERVE = 10_000  # how far ahead of the last seq the side record's mark runs
_AGE_CHECK_EVERY_S = 1.0
_LOG_EVERY_S = 60.0
_SHM_BYTES = 32 * 1024
# The newest stored rows are also kept in memory (bounded) so the forwarder does not
# read back what was just written; replays after a reconnect or restart read SQLite.
RECENT_MAX_BYTES = 8 * 1024 * 1024
_DAMAGE = ("SQLITE_CORRUPT", "SQLITE_NOTADB")
_FULL = ("SQLITE_FULL",)
_NOT_DAMAGE = (
    "SQLITE_READONLY",
    "SQLITE_CANTOPEN",
    "SQLITE_PERM",
    "SQLITE_BUSY",
    "SQLITE_LOCKED",
    "SQLITE_IOERR",
    "SQLITE_AUTH",
    "SQLITE_NOMEM",
)


@dataclass(slots=True)
class _Removed:
    """Rows deleted in one transaction: how many, their bytes, how many per lane."""

    rows: int = 0
    bytes: int = 0
    lanes: list[int] = field(default_factory=lambda: [0] * len(LANE_NAMES))

    def add(self, size: int, lane: int) -> None:
        self.rows += 1
        self.bytes += size
        self.lanes[lane] += 1


class OutboxWriteError(TransportError):
    """Events could not be stored (full disk, I/O error); they are counted as lost."""


@dataclass(frozen=True, slots=True)
class Row:
    """One stored event as it is published."""

    seq: int
    event_id: str
    topic: str
    payload: bytes
    lane: int = BULK


@dataclass(frozen=True, slots=True)
class Stored:
    """What :meth:`Outbox.add` stored: the sequence numbers and ids, in order."""

    seqs: list[int]
    ids: list[str]


@dataclass(frozen=True, slots=True)
class Recovery:
    """A damaged or rolled-back outbox found at open, and what was done about it."""

    cause: Literal["damaged", "rolled_back"]
    reason: str
    quarantined: Path | None
    first_seq: int  # seqs first_seq..last_seq may be lost
    last_seq: int
    salvaged: int  # rows read back from the damaged file

    def describe(self) -> str:
        """One log line."""
        where = f"; moved to {self.quarantined}" if self.quarantined else ""
        return (
            f"outbox {self.cause.replace('_', ' ')} ({self.reason}){where}; {self.salvaged} "
            f"event(s) salvaged; seqs {self.first_seq}..{self.last_seq} may be lost; "
            f"new events continue at seq {self.last_seq + 1}"
        )


@dataclass(frozen=True, slots=True)
class LossRecord:
    """One entry of the ``losses`` table."""

    cause: str
    first_seq: int
    last_seq: int
    count: int
    at: float


class RunClock:
    """Seconds that advance with ``monotonic`` from ``start`` (never stepped by NTP)."""

    def __init__(self, start: float, monotonic: Callable[[], float]) -> None:
        self._start = start
        self._monotonic = monotonic
        self._mono0 = monotonic()

    def __call__(self) -> float:
        """Now on this clock."""
        return self._start + (self._monotonic() - self._mono0)


def _errname(exc: sqlite3.Error) -> str:
    return str(getattr(exc, "sqlite_errorname", "") or "")


def _is_full(exc: sqlite3.Error) -> bool:
    return _errname(exc) in _FULL or "database or disk is full" in str(exc)


class _DamagedError(Exception):
    """The database file cannot be used as it is."""


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
        monotonic: Callable[[], float] = time.monotonic,
        wall: Callable[[], float] = time.time,
        account: bool = True,
    ) -> None:
        self.path = path
        # The delivery-ledger account (gateway.transport.ledger); off only to measure its
        # cost (`gateway bench ledger`): manifests cut then are empty.
        self.account = account
        self.topics = topics
        self.max_bytes = max_bytes
        self.max_age_s = max_age_s
        self.on_drop = on_drop
        self.synchronous = synchronous
        self._monotonic = monotonic
        self._wall = wall
        self._lock = threading.Lock()
        self._recent: collections.deque[Row] = collections.deque()
        self._recent_bytes = 0
        self._last_age_check = -_AGE_CHECK_EVERY_S
        self._unrecorded = 0  # events lost while even recording the loss failed
        self._ratelog = RateLimitedLog(log, interval_s=_LOG_EVERY_S, clock=monotonic)
        self.recovery: Recovery | None = None
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise TransportError(f"cannot open outbox {path}: {exc}") from exc
        volume = files.disk_bytes(path) + files.free_bytes(path.parent)
        self.reserve = files.Reserve(
            path.with_name(path.name + ".reserve"),
            min(1 << 20, max(64 << 10, min(max_bytes, volume) // 32)),
        )
        record, why = files.read_record(path)
        if why:
            log.error("%s: seqs continue from the database alone", why)
        try:
            self._open()
        except _DamagedError as exc:
            self._recover(str(exc), record)
        else:
            self._check_rollback(record)
        self._limit = max_bytes
        self._set_limit(self._available(), at_open=True)
        self.reserve.ensure()
        self._mark = 0
        self._write_record(self._last_seq_locked() + SEQ_RESERVE)
        if self.recovered is not None:
            log.error("%s", self.recovered.describe())

    @property
    def recovered(self) -> Recovery | None:
        """The damage or roll-back found at open (announce it), or None."""
        return self.recovery

    # -- opening and recovery --------------------------------------------------------

    def _open(self) -> None:
        """Open and check the database; raise :class:`_DamagedError` when it is unusable."""
        path = self.path
        if path.exists() and path.stat().st_size == 0 and files.disk_bytes(path) == 0:
            raise _DamagedError("empty file (0 bytes)")
        try:
            self._db = sqlite3.connect(
                str(path), isolation_level=None, check_same_thread=False, timeout=10.0
            )
        except sqlite3.Error as exc:
            raise TransportError(f"cannot open outbox {path}: {exc}") from exc
        try:
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute(f"PRAGMA synchronous={self.synchronous.upper()}")
            (check,) = self._db.execute("PRAGMA quick_check(1)").fetchone()
            if check != "ok":
                raise _DamagedError(f"integrity check: {check}")
            self._db.executescript(_SCHEMA + ledger.SCHEMA)
            self._migrate()
            self._load()
        except sqlite3.DatabaseError as exc:
            self._db.close()
            name = _errname(exc)
            if name in _DAMAGE or not (_is_full(exc) or name.startswith(_NOT_DAMAGE)):
                raise _DamagedError(f"not a usable SQLite database: {exc}") from exc
            raise TransportError(f"cannot open outbox {path}: {exc}") from exc
        except _DamagedError:
            self._db.close()
            raise

    def _migrate(self) -> None:
        """Give a database of a version without lanes its ``lane`` column and index."""
        columns = {str(row[1]) for row in self._db.execute("PRAGMA table_info(events)")}
        if "lane" not in columns:
            self._db.execute("BEGIN IMMEDIATE")
            self._db.execute(f"ALTER TABLE events ADD COLUMN lane INTEGER NOT NULL DEFAULT {BULK}")
            self._db.execute(
                f"UPDATE events SET lane = {LANE_SQL} WHERE json_valid(CAST(payload AS TEXT))"
            )
            self._db.execute("COMMIT")
        # Only the small lanes are indexed (one partial index each, which a query on
        # ``lane = <n>`` uses): the bulk lane is read along the primary key.
        for lane in range(BULK):
            self._db.execute(
                f"CREATE INDEX IF NOT EXISTS events_lane{lane} ON events (seq) WHERE lane = {lane}"
            )

    def _load(self) -> None:
        """Read depth, bytes and the run clock; size the WAL for the bound."""
        self._lane_depth = [0] * len(LANE_NAMES)
        self._lane_last = [0] * len(LANE_NAMES)
        depth = size = 0
        newest = 0.0
        for lane, count, lane_bytes, created, last in self._db.execute(
            "SELECT lane, COUNT(*), COALESCE(SUM(length(payload) + length(topic)), 0), "
            "MAX(created), MAX(seq) FROM events GROUP BY lane"
        ):
            index = int(lane) if 0 <= int(lane) < len(LANE_NAMES) else BULK
            self._lane_depth[index] += int(count)
            self._lane_last[index] = max(self._lane_last[index], int(last))
            depth += int(count)
            size += int(lane_bytes)
            newest = max(newest, float(created or 0.0))
        self._depth = depth
        self._bytes = size
        (clock_ms,) = self._db.execute("SELECT value FROM meta WHERE key = 'clock_ms'").fetchone()
        start = max(float(clock_ms) / 1000.0, float(newest or 0.0))
        self._clock = RunClock(start if start > 0 else self._wall(), self._monotonic)
        (self._page_size,) = self._db.execute("PRAGMA page_size").fetchone()
        self._size_wal(getattr(self, "_limit", self.max_bytes))

    def _size_wal(self, limit: int) -> None:
        """Checkpoint the WAL at 1/16 of the bound (at most 1000 pages, SQLite's default)."""
        wal_pages = max(8, min(1000, limit // 16 // int(self._page_size)))
        self._wal_bytes = wal_pages * int(self._page_size)
        self._db.execute(f"PRAGMA wal_autocheckpoint={wal_pages}")
        self._db.execute(f"PRAGMA journal_size_limit={self._wal_bytes}")

    def _recover(self, reason: str, record: files.SeqRecord | None) -> None:
        """Quarantine the damaged file, salvage what reads, start afresh after the mark."""
        quarantined = files.quarantine(self.path, self._wall())
        salvaged = _salvage(quarantined, self.max_bytes)
        # The loss counters must outlive the file that held them: the damaged file's
        # where they still read, else the side record's (at most 30 s old).
        carried = dict(record.counters) if record else {}
        for key, value in _salvage_counters(quarantined).items():
            carried[key] = max(carried.get(key, 0), value)
        try:
            self._open()
        except _DamagedError as exc:
            raise TransportError(f"cannot create a fresh outbox {self.path}: {exc}") from exc
        floor = max([record.mark if record else 0, *(row[0] for row in salvaged)])
        first = record.oldest_seq if record else 1
        if record is None:
            log.error("outbox %s: no seq record beside it; seqs may repeat", self.path)
        # The range first..floor is written off; the count is what waited at the last
        # record and could not be read back (the centre knows exactly what arrived).
        waiting = (min(floor, record.last_seq) - first + 1) if record else 0
        lost = max(waiting - len(salvaged), 0)
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            self._db.executemany(
                "INSERT OR IGNORE INTO events (seq, id, topic, payload, created, lane) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                salvaged,
            )
            self._db.execute("UPDATE meta SET value = ? WHERE key = 'last_seq'", (floor,))
            for key, value in carried.items():
                if key in (*LOSS_COUNTERS, "damaged"):
                    self._db.execute("UPDATE meta SET value = ? WHERE key = ?", (value, key))
            self._db.execute("UPDATE meta SET value = value + 1 WHERE key = 'damaged'")
            self._count_locked("lost_damaged", lost, first, floor, "damaged", force=True)
            self._db.execute("COMMIT")
            self._load()
        self.recovery = Recovery("damaged", reason, quarantined, first, floor, len(salvaged))

    def _counters_locked(self) -> dict[str, int]:
        keys = (*LOSS_COUNTERS, "damaged")
        query = f"SELECT key, value FROM meta WHERE key IN ({','.join('?' * len(keys))})"
        return {str(k): int(v) for k, v in self._db.execute(query, keys).fetchall()}

    def _check_rollback(self, record: files.SeqRecord | None) -> None:
        """Continue after the mark when the database lost seqs it had allocated."""
        last = self._last_seq_locked()
        if record is None or last >= record.last_seq:
            return
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            self._db.execute("UPDATE meta SET value = ? WHERE key = 'last_seq'", (record.mark,))
            known = record.last_seq - last
            self._count_locked("lost_damaged", known, last + 1, record.mark, "rolled_back")
            self._db.execute("COMMIT")
        reason = f"the database ends at seq {last}, its record at {record.last_seq}"
        self.recovery = Recovery("rolled_back", reason, None, last + 1, record.mark, 0)

    def _write_record(self, mark: int, clean: bool = False) -> None:
        """Write the side record; a failure (full disk) is logged, not raised."""
        with self._lock:
            last = self._last_seq_locked()
            oldest = self._db.execute("SELECT MIN(seq) FROM events").fetchone()[0]
            counters = self._counters_locked()
        record = files.SeqRecord(last, max(mark, last), int(oldest or last + 1), clean, counters)
        try:
            files.write_record(self.path, record)
        except OSError as exc:
            self._log_once("record", logging.ERROR, "cannot write the seq record: %s", exc)
            return
        self._mark = record.mark

    # -- writing ---------------------------------------------------------------------

    def add(
        self,
        drafts: Sequence[Draft],
        *,
        also: SideWrite | None = None,
        unstored: int | None = None,
    ) -> Stored:
        """Store ``drafts`` in one transaction, allocating consecutive sequence numbers.

        ``also`` writes the caller's own rows in the same transaction (the byte budget's
        held crossings, :mod:`gateway.budget.held`): both are stored, or neither.

        Raises :class:`OutboxWriteError` when they cannot be stored: ``unstored`` events
        (default: the drafts) are then counted in ``lost_store`` and their seqs are
        consumed (a visible gap); a caller that keeps what it could not store passes 0.
        """
        if not drafts and also is None:
            return Stored([], [])
        lost = len(drafts) if unstored is None else unstored
        try:
            stored, dropped = self._add(drafts, also=also)
        except sqlite3.Error as exc:
            if not _is_full(exc):
                self._lost(lost)
                raise OutboxWriteError(f"outbox write failed: {exc}") from exc
            self._make_room()
            try:
                stored, dropped = self._add(drafts, also=also)
            except sqlite3.Error as again:
                self._lost(lost)
                raise OutboxWriteError(
                    f"outbox full: {len(drafts)} event(s) not stored ({again}); "
                    f"{files.free_bytes(self.path.parent)} bytes free on its volume"
                ) from again
        if dropped and self.on_drop is not None:
            self.on_drop(dropped)
        if stored.seqs and stored.seqs[-1] >= self._mark:
            self._write_record(stored.seqs[-1] + SEQ_RESERVE)
        return stored

    def transact(self, work: Callable[[sqlite3.Connection], T]) -> T:
        """Run ``work`` on the database in a transaction of its own (a caller's own tables).

        For setting up and reading what :meth:`add` writes with ``also``; raises
        :class:`~gateway.errors.TransportError` when the database fails.
        """
        with self._lock:
            try:
                self._db.execute("BEGIN IMMEDIATE")
                result = work(self._db)
                self._db.execute("COMMIT")
            except sqlite3.Error as exc:
                self._rollback()
                raise TransportError(f"outbox {self.path}: {exc}") from exc
            except BaseException:
                self._rollback()
                raise
        return result

    def add_manifest(self, timestamp: float, interval_s: float) -> Stored:
        """Store a ``manifest`` of everything stored since the previous one (one transaction).

        The account is cut in the transaction that stores the manifest, so no event falls
        between two manifests (:mod:`gateway.transport.ledger`). Raises like :meth:`add`.
        """

        def make() -> Draft:
            return ledger.cut_locked(self._db, self._counters_locked).draft(timestamp, interval_s)

        try:
            stored, dropped = self._add([], make)
        except sqlite3.Error as exc:
            self._lost(1)
            raise OutboxWriteError(f"outbox write failed: {exc}") from exc
        if dropped and self.on_drop is not None:
            self.on_drop(dropped)
        if stored.seqs[-1] >= self._mark:
            self._write_record(stored.seqs[-1] + SEQ_RESERVE)
        return stored

    def _add(
        self,
        drafts: Sequence[Draft],
        make: Callable[[], Draft] | None = None,
        *,
        also: SideWrite | None = None,
    ) -> tuple[Stored, int]:
        now = self._clock()
        with self._lock:
            counts = self._counts()
            try:
                self._db.execute("BEGIN IMMEDIATE")
                recorded = self._record_unrecorded_locked() if self._unrecorded else 0
                if make is not None:
                    drafts = [*drafts, make()]
                (last,) = self._db.execute(
                    "SELECT value FROM meta WHERE key = 'last_seq'"
                ).fetchone()
                rows = []
                seqs: list[int] = []
                ids: list[str] = []
                added = 0
                fresh_ids = new_ids(len(drafts))
                for offset, draft in enumerate(drafts, start=1):
                    seq = int(last) + offset
                    event_id = fresh_ids[offset - 1]
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
                    rows.append((seq, event_id, topic, payload, now, lane_of(draft.type)))
                    seqs.append(seq)
                    ids.append(event_id)
                    added += len(payload) + len(topic.encode())
                self._db.executemany(
                    "INSERT INTO events (seq, id, topic, payload, created, lane) "
                    "VALUES (?, ?, ?, ?, ?, ?)",
                    rows,
                )
                if self.account and rows:
                    ledger.record_locked(
                        self._db, zip(seqs, ids, (draft.type for draft in drafts), strict=True)
                    )
                if seqs:
                    self._db.execute(
                        "UPDATE meta SET value = ? WHERE key = 'last_seq'", (seqs[-1],)
                    )
                if also is not None:
                    also(self._db)
                dropped = self._enforce_locked(now, self._depth + len(rows), self._bytes + added)
                self._db.execute("COMMIT")
            except BaseException:
                self._rollback()
                self._counts_back(counts)
                raise
            self._unrecorded -= recorded
            self._depth += len(rows)
            self._bytes += added
            for row in rows:
                self._lane_depth[row[5]] += 1
                self._lane_last[row[5]] = row[0]
            if not dropped:
                self._remember(rows)
            else:
                self._recent.clear()  # never publish from memory what a bound dropped
                self._recent_bytes = 0
        return Stored(seqs, ids), dropped

    def count_lost(self, count: int) -> None:
        """Count ``count`` events that never made it into the outbox (``lost_store``)."""
        self._lost(count)

    def _lost(self, count: int) -> None:
        """Count events that could not be stored; consume their seqs when possible."""
        if count <= 0:
            return
        with self._lock:
            self._unrecorded += count
            try:
                self._db.execute("BEGIN IMMEDIATE")
                recorded = self._record_unrecorded_locked()
                self._db.execute("COMMIT")
                self._unrecorded -= recorded
            except sqlite3.Error as exc:
                self._rollback()
                self._log_once("lost", logging.ERROR, "cannot even record lost events: %s", exc)

    def _record_unrecorded_locked(self) -> int:
        """Consume seqs for the events not stored and count them (in a transaction)."""
        (last,) = self._db.execute("SELECT value FROM meta WHERE key = 'last_seq'").fetchone()
        count = self._unrecorded
        first, end = int(last) + 1, int(last) + count
        self._db.execute("UPDATE meta SET value = ? WHERE key = 'last_seq'", (end,))
        self._count_locked("lost_store", count, first, end, "store_failed")
        return count

    def _count_locked(
        self, counter: str, count: int, first: int, last: int, cause: str, *, force: bool = False
    ) -> None:
        """Advance ``counter`` and record the range (inside an open transaction)."""
        if count <= 0 and not force:
            return
        self._db.execute("UPDATE meta SET value = value + ? WHERE key = ?", (count, counter))
        previous = self._db.execute(
            "SELECT id, cause, last_seq FROM losses ORDER BY id DESC LIMIT 1"
        ).fetchone()
        if previous is not None and previous[1] == cause and int(previous[2]) + 1 == first:
            self._db.execute(  # the same cause going on: extend its range
                "UPDATE losses SET last_seq = ?, count = count + ?, at = ? WHERE id = ?",
                (last, count, self._wall(), previous[0]),
            )
            return
        cur = self._db.execute(
            "INSERT INTO losses (cause, first_seq, last_seq, count, at) VALUES (?, ?, ?, ?, ?)",
            (cause, first, last, count, self._wall()),
        )
        if cur.lastrowid is not None and cur.lastrowid > MAX_LOSS_RECORDS:
            self._db.execute(
                "DELETE FROM losses WHERE id <= ?", (cur.lastrowid - MAX_LOSS_RECORDS,)
            )

    def _make_room(self) -> None:
        """The volume is full: release the reserve, shrink the bound, drop the oldest."""
        released = self.reserve.release()
        with self._lock, contextlib.suppress(sqlite3.Error):
            # Restart, not truncate: the WAL file keeps its blocks, so deletes (acks) and
            # inserts into freed pages can go on writing it on a full volume.
            self._db.execute("PRAGMA wal_checkpoint(RESTART)")
        self._set_limit(self._available())
        self._log_once(
            "full",
            logging.ERROR,
            "outbox volume full (%d bytes free%s): bound now %d bytes; the oldest events "
            "are dropped and counted",
            files.free_bytes(self.path.parent),
            ", reserve released" if released else "",
            self._limit,
        )
        with contextlib.suppress(sqlite3.Error, TransportError):
            self._enforce_now()  # the reserve comes back on a later tick, once there is room

    def _remember(self, rows: list[tuple[int, str, str, bytes, float, int]]) -> None:
        """Keep the newest rows in memory (contiguous seqs), within RECENT_MAX_BYTES."""
        for seq, event_id, topic, payload, _created, lane in rows:
            self._recent.append(Row(seq, event_id, topic, payload, lane))
            self._recent_bytes += len(payload)
        while self._recent_bytes > RECENT_MAX_BYTES and self._recent:
            self._recent_bytes -= len(self._recent.popleft().payload)

    def ack(self, seqs: Iterable[int]) -> int:
        """Delete acknowledged events; return how many rows were deleted.

        On a full disk the reserve is released and the delete tried once more (a
        delivered row that cannot be deleted would be sent again after a reconnect).
        """
        todo = list(seqs)
        for attempt in range(2):
            with self._lock:
                try:
                    self._db.execute("BEGIN IMMEDIATE")
                    removed = self._delete_locked(todo)
                    self._db.execute("COMMIT")
                except sqlite3.Error as exc:
                    self._rollback()
                    if attempt or not _is_full(exc):
                        raise TransportError(f"outbox delete failed: {exc}") from exc
                else:
                    self._forget_locked(todo, removed)
                    return removed.rows
            self._make_room()
        return 0

    def discard(self, seqs: Iterable[int], counter: str) -> int:
        """Delete undeliverable events and advance the persistent ``counter`` (one transaction).

        Returns how many rows were deleted.
        """
        if counter not in LOSS_COUNTERS:
            raise ValueError(f"unknown loss counter {counter!r}")
        todo = sorted(seqs)
        if not todo:
            return 0
        with self._lock:
            try:
                self._db.execute("BEGIN IMMEDIATE")
                removed = self._delete_locked(todo)
                self._count_locked(counter, removed.rows, todo[0], todo[-1], counter)
                self._db.execute("COMMIT")
            except sqlite3.Error as exc:
                self._rollback()
                raise TransportError(f"outbox delete failed: {exc}") from exc
            self._forget_locked(todo, removed)
        return removed.rows

    def _delete_locked(self, todo: list[int]) -> _Removed:
        """Delete rows ``todo`` (inside an open transaction).

        PUBACKs come mostly in order, so the seqs are deleted as contiguous ranges
        (one range scan each) rather than as long ``IN`` lists.
        """
        removed = _Removed()
        for low, high in _runs(todo):
            for size, lane in self._db.execute(
                "DELETE FROM events WHERE seq >= ? AND seq <= ? "
                "RETURNING length(payload) + length(topic), lane",
                (low, high),
            ).fetchall():
                removed.add(int(size), int(lane))
        return removed

    def _forget_locked(self, todo: list[int], removed: _Removed) -> None:
        self._depth -= removed.rows
        self._bytes -= removed.bytes
        for lane, count in enumerate(removed.lanes):
            self._lane_depth[lane] -= count
        done = set(todo)
        while self._recent and self._recent[0].seq in done:
            self._recent_bytes -= len(self._recent.popleft().payload)

    def enforce(self) -> int:
        """Apply the age and size bounds now; return how many events were dropped.

        Also re-reads the free space of the volume (the bound shrinks to what fits),
        puts the reserve back when there is room, and persists the run clock.
        """
        self._set_limit(self._available())
        self.reserve.ensure()
        return self._enforce_now(log_full=True)

    def _enforce_now(self, *, log_full: bool = False) -> int:
        """Apply the bounds in one transaction; a full volume drops nothing and returns 0."""
        with self._lock:
            counts = self._counts()
            try:
                self._db.execute("BEGIN IMMEDIATE")
                self._last_age_check = -_AGE_CHECK_EVERY_S
                now = self._clock()
                dropped = self._enforce_locked(now, self._depth, self._bytes)
                self._db.execute(
                    "UPDATE meta SET value = ? WHERE key = 'clock_ms'", (int(now * 1000),)
                )
                self._db.execute("COMMIT")
            except sqlite3.Error as exc:
                self._rollback()
                self._counts_back(counts)
                if not _is_full(exc):
                    raise TransportError(f"outbox write failed: {exc}") from exc
                # Another writer keeps the volume full: nothing was dropped (rolled back),
                # adds make their own room (and log what they lose); the next tick tries
                # again. Nothing is lost here, hence a warning.
                if log_full:
                    self._log_once(
                        "enforce", logging.WARNING, "outbox bounds not applied this time: %s", exc
                    )
                return 0
            if dropped:
                self._recent.clear()
                self._recent_bytes = 0
        self._write_record(max(self._mark, self._last_seq_locked_safe() + 1))
        if dropped and self.on_drop is not None:
            self.on_drop(dropped)
        return dropped

    def _last_seq_locked_safe(self) -> int:
        with self._lock:
            return self._last_seq_locked()

    def _enforce_locked(self, now: float, depth: int, logical: int) -> int:
        """Drop the oldest rows beyond the bounds (inside an open transaction).

        ``depth`` and ``logical`` are the row count and payload bytes including rows
        of the open transaction; the counters are adjusted for what is dropped here.
        """
        dropped = 0
        if now - self._last_age_check >= _AGE_CHECK_EVERY_S:
            self._last_age_check = now
            oldest = self._db.execute("SELECT created FROM events ORDER BY seq LIMIT 1").fetchone()
            if oldest is not None and float(oldest[0]) < now - self.max_age_s:  # else no scan
                count, freed = self._drop_where("created < ?", (now - self.max_age_s,), "age")
                dropped += count
                logical -= freed
        for _ in range(4):  # free pages are counted once whole: measure again
            used = self._used_bytes()
            budget = self._budget()
            if used <= budget:
                break
            # Drop down to 95 % of the budget so a full outbox does not drop on every add.
            ratio = used / max(logical, 1)
            excess = (used - int(budget * 0.95)) / max(ratio, 1.0)
            cutoff = None
            total = 0
            for seq, size in self._db.execute(
                "SELECT seq, length(payload) + length(topic) FROM events ORDER BY seq"
            ):
                total += int(size)
                cutoff = int(seq)
                if total >= excess:
                    break
            if cutoff is None:
                break
            count, freed = self._drop_where("seq <= ?", (cutoff,), "size")
            dropped += count
            logical -= freed
        return dropped

    def _used_bytes(self) -> int:
        """Bytes of database pages in use now (inside the transaction) plus the WAL budget."""
        (pages,) = self._db.execute("PRAGMA page_count").fetchone()
        (free,) = self._db.execute("PRAGMA freelist_count").fetchone()
        return int(pages - free) * int(self._page_size)

    def _budget(self) -> int:
        """Page bytes the bound leaves once the WAL, the SHM and the reserve are set aside."""
        overhead = 2 * self._wal_bytes + _SHM_BYTES + 4 * int(self._page_size)
        return int(max(self._limit - overhead, 8 * int(self._page_size)))

    def _available(self) -> int:
        """What the outbox may take on its volume: what it takes now plus what is free."""
        free = files.free_bytes(self.path.parent)
        keep = 0 if self.reserve.present else self.reserve.size
        return files.disk_bytes(self.path) + free - keep

    def _set_limit(self, available: int, at_open: bool = False) -> None:
        limit = min(self.max_bytes, max(available, 0))
        if limit < self.max_bytes and (at_open or limit < self._limit * 0.9):
            self._log_once(
                "limit",
                logging.WARNING,
                "the outbox volume holds only %d bytes: the bound is %d bytes, not max_bytes %d",
                available,
                limit,
                self.max_bytes,
            )
        if limit != getattr(self, "_limit", None) and hasattr(self, "_db"):
            with self._lock, contextlib.suppress(sqlite3.Error):
                self._size_wal(limit)
        self._limit = limit

    def _drop_where(self, where: str, params: tuple[float | int, ...], why: str) -> tuple[int, int]:
        count = 0
        freed = 0
        low: int | None = None
        high = 0
        for seq, size, lane in self._db.execute(
            f"DELETE FROM events WHERE {where} "
            "RETURNING seq, length(payload) + length(topic), lane",
            params,
        ).fetchall():
            count += 1
            freed += int(size)
            self._lane_depth[int(lane)] -= 1
            low = int(seq) if low is None else min(low, int(seq))
            high = max(high, int(seq))
        if count and low is not None:
            self._count_locked("dropped", count, low, high, f"bound_{why}")
            self._depth -= count
            self._bytes -= freed
        return count, freed

    def _counts(self) -> tuple[int, int, list[int]]:
        """Depth, bytes and lane depths, to put back when a transaction fails."""
        return self._depth, self._bytes, list(self._lane_depth)

    def _counts_back(self, counts: tuple[int, int, list[int]]) -> None:
        """Undo what a rolled-back transaction's drops did to the counts.

        A COMMIT that fails (a full disk) leaves every row it would have dropped in place.
        """
        self._depth, self._bytes, self._lane_depth = counts

    def _rollback(self) -> None:
        with contextlib.suppress(sqlite3.Error):
            if self._db.in_transaction:
                self._db.execute("ROLLBACK")

    def _log_once(self, key: str, level: int, msg: str, *args: object) -> None:
        """Log ``msg`` at most once a minute per ``key`` (a full disk must not flood)."""
        self._ratelog.log(key, level, msg, *args)

    # -- reading ---------------------------------------------------------------------

    def fetch(self, after_seq: int, limit: int, lane: int | None = None) -> list[Row]:
        """Return up to ``limit`` stored events with ``seq > after_seq``, oldest first.

        With ``lane``, only that lane's events.
        """
        if lane is not None:
            return self._fetch_lane(after_seq, limit, lane)
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
            return _rows(
                self._db.execute(
                    f"SELECT {_ROW} FROM events WHERE seq > ? ORDER BY seq LIMIT ?",
                    (after_seq, limit),
                )
            )

    def _fetch_lane(self, after_seq: int, limit: int, lane: int) -> list[Row]:
        with self._lock:
            if self._lane_last[lane] <= after_seq:
                return []  # nothing newer was stored in this lane
            recent = self._recent
            if lane == BULK and recent and after_seq > 0 and after_seq + 1 >= recent[0].seq:
                # As in fetch(): rows up to after_seq were taken, let their copies go.
                while recent and recent[0].seq <= after_seq:
                    self._recent_bytes -= len(recent.popleft().payload)
                out: list[Row] = []
                for row in recent:  # contiguous seqs of every lane, oldest first
                    if row.lane == lane:
                        out.append(row)
                        if len(out) >= limit:
                            break
                return out
            # The lane is a literal so that the partial index of the small lanes applies.
            return _rows(
                self._db.execute(
                    f"SELECT {_ROW} FROM events WHERE lane = {int(lane)} AND seq > ? "
                    "ORDER BY seq LIMIT ?",
                    (after_seq, limit),
                )
            )

    def fetch_newest(self, before_seq: int, limit: int, lane: int) -> list[Row]:
        """Up to ``limit`` events of ``lane`` with ``seq < before_seq``, newest first."""
        with self._lock:
            return _rows(
                self._db.execute(
                    f"SELECT {_ROW} FROM events WHERE lane = {int(lane)} AND seq < ? "
                    "ORDER BY seq DESC LIMIT ?",
                    (before_seq, limit),
                )
            )

    def lane_last(self, lane: int) -> int:
        """The newest seq stored in ``lane`` (it may have been delivered since)."""
        return self._lane_last[lane]

    def lane_depths(self) -> dict[str, int]:
        """Events waiting per lane, by lane name."""
        return {name: max(self._lane_depth[i], 0) for i, name in enumerate(LANE_NAMES)}

    def stored(self, after_seq: int, upto_seq: int, limit: int) -> list[Row]:
        """Stored events with ``after_seq < seq <= upto_seq``, oldest first (from SQLite)."""
        with self._lock:
            return _rows(
                self._db.execute(
                    f"SELECT {_ROW} FROM events WHERE seq > ? AND seq <= ? ORDER BY seq LIMIT ?",
                    (after_seq, upto_seq, limit),
                )
            )

    def first_on_topic(self, topic: str, after_seq: int, upto_seq: int) -> Row | None:
        """The oldest stored event of ``topic`` with ``after_seq < seq <= upto_seq``."""
        with self._lock:
            found = _rows(
                self._db.execute(
                    f"SELECT {_ROW} FROM events WHERE seq > ? AND seq <= ? "
                    "AND topic = ? ORDER BY seq LIMIT 1",
                    (after_seq, upto_seq, topic),
                )
            )
        return found[0] if found else None

    @property
    def depth(self) -> int:
        """How many events wait for an acknowledgement."""
        return self._depth

    @property
    def size_bytes(self) -> int:
        """Payload and topic bytes stored."""
        return self._bytes

    @property
    def disk_bytes(self) -> int:
        """Bytes the database, its WAL and its SHM file take on disk now."""
        return files.disk_bytes(self.path)

    @property
    def limit_bytes(self) -> int:
        """The bound in force: ``max_bytes``, or less when the volume holds less."""
        return self._limit

    def _meta(self, key: str) -> int:
        with self._lock:
            (value,) = self._db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return int(value)

    def _last_seq_locked(self) -> int:
        (value,) = self._db.execute("SELECT value FROM meta WHERE key = 'last_seq'").fetchone()
        return int(value)

    @property
    def last_seq(self) -> int:
        """The last sequence number allocated (0 before the first event)."""
        return self._meta("last_seq")

    @property
    def dropped(self) -> int:
        """Events dropped by the bounds since the database was created."""
        return self._meta("dropped")

    @property
    def damaged(self) -> int:
        """How many times a damaged or rolled-back database was recovered."""
        return self._meta("damaged")

    def losses(self) -> dict[str, int]:
        """Every persistent loss counter, with losses not yet written counted in."""
        with self._lock:
            marks = ",".join("?" * len(LOSS_COUNTERS))
            query = f"SELECT key, value FROM meta WHERE key IN ({marks})"
            found = dict(self._db.execute(query, LOSS_COUNTERS).fetchall())
            unrecorded = self._unrecorded
        out = {key: int(found.get(key, 0)) for key in LOSS_COUNTERS}
        out["lost_store"] += unrecorded
        return out

    def loss_records(self) -> list[LossRecord]:
        """The recorded loss ranges, oldest first (the newest MAX_LOSS_RECORDS)."""
        with self._lock:
            rows = self._db.execute(
                "SELECT cause, first_seq, last_seq, count, at FROM losses ORDER BY id"
            ).fetchall()
        return [LossRecord(str(c), int(f), int(la), int(n), float(a)) for c, f, la, n, a in rows]

    def oldest_age_s(self) -> float:
        """Age of the oldest stored event in seconds on the run clock (0 when empty)."""
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
        """Persist the run clock and the seq record, checkpoint and close the database."""
        with contextlib.suppress(sqlite3.Error, TransportError):
            self.enforce()
        self._write_record(self._mark, clean=True)
        with self._lock:
            with contextlib.suppress(sqlite3.Error):
                self._db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            self._db.close()

    def __enter__(self) -> Outbox:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


_ROW: Final = "seq, id, topic, payload, lane"


def _rows(cursor: Iterable[tuple[object, ...]]) -> list[Row]:
    """Rows of a ``SELECT {_ROW}``."""
    return [
        Row(int(seq), str(eid), str(topic), bytes(payload), int(lane))  # type: ignore[call-overload]
        for seq, eid, topic, payload, lane in cursor
    ]


def _runs(seqs: Iterable[int]) -> list[tuple[int, int]]:
    """Sorted, de-duplicated ``seqs`` as inclusive ``(low, high)`` runs."""
    runs: list[tuple[int, int]] = []
    for seq in sorted(set(seqs)):
        if runs and runs[-1][1] + 1 == seq:
            runs[-1] = (runs[-1][0], seq)
        else:
            runs.append((seq, seq))
    return runs


def _salvage_counters(path: Path) -> dict[str, int]:
    """The ``meta`` counters of a damaged database, where they still read."""
    if not path.exists() or path.stat().st_size == 0:
        return {}
    try:
        db = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=1.0)
    except sqlite3.Error:
        return {}
    try:
        return {
            str(k): int(v)
            for k, v in db.execute("SELECT key, value FROM meta").fetchall()
            if isinstance(v, int)
        }
    except sqlite3.Error:
        return {}
    finally:
        db.close()


_SalvagedRow = tuple[int, str, str, bytes, float, int]


def _payload_lane(payload: bytes) -> int:
    """The lane of a stored payload, from its ``type`` (bulk when unreadable)."""
    try:
        event = json.loads(payload)
    except (ValueError, RecursionError):
        return BULK
    return lane_of(str(event.get("type", ""))) if isinstance(event, dict) else BULK


def _salvage(path: Path, max_bytes: int) -> list[_SalvagedRow]:
    """Rows that still read from a damaged database, oldest first (best effort)."""
    rows: list[_SalvagedRow] = []
    if not path.exists() or path.stat().st_size == 0:
        return rows
    total = 0
    try:
        db = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=1.0)
    except sqlite3.Error:
        return rows
    try:
        cursor = db.execute("SELECT seq, id, topic, payload, created FROM events ORDER BY seq")
        while total < max_bytes:
            try:
                found = cursor.fetchone()
            except sqlite3.Error:
                break
            if found is None:
                break
            seq, eid, topic, payload, created = found
            ok = isinstance(seq, int) and isinstance(eid, str) and isinstance(topic, str)
            if not ok or not isinstance(payload, bytes) or not isinstance(created, float | int):
                continue
            rows.append((seq, eid, topic, payload, float(created), _payload_lane(payload)))
            total += len(payload) + len(topic)
    except sqlite3.Error:
        pass
    finally:
        db.close()
    return rows
