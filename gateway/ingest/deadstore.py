"""The durable dead-letter store: every message the ingest could not write, with its reason.

A dead letter is committed here (SQLite, WAL) before its MQTT message is acknowledged,
so a rejected message is never loss: ``gateway ingest deadletters list`` shows them and
``gateway ingest deadletters replay`` writes them after a fix (a mapping bug, a time
window, a database that refused a line). Two kinds: ``message`` (an MQTT payload, replayed
through the whole decode path) and ``line`` (one line of protocol from the spool that the
database refused, replayed as it is).

The store is bounded by ``max_bytes`` (payload bytes). When it is full :meth:`add`
refuses: the worker then leaves the message unacknowledged (the broker keeps it) and
raises an alarm until an operator replays or purges letters. Payloads larger than
:data:`MAX_STORED_PAYLOAD` are kept truncated (flagged; not replayable).
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Final, Literal

from gateway.config.settings import GatewaySettings
from gateway.errors import IngestError
from gateway.ingest.sqlitestore import open_sqlite

Kind = Literal["message", "line"]
MAX_STORED_PAYLOAD: Final = 1024 * 1024

_SCHEMA: Final = """
CREATE TABLE IF NOT EXISTS letters (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    stored_at REAL NOT NULL,
    worker TEXT NOT NULL,
    kind TEXT NOT NULL,
    reason TEXT NOT NULL,
    detail TEXT NOT NULL,
    topic TEXT NOT NULL,
    size INTEGER NOT NULL,
    truncated INTEGER NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    payload BLOB NOT NULL
);
CREATE TABLE IF NOT EXISTS totals (id INTEGER PRIMARY KEY CHECK (id = 1), bytes INTEGER NOT NULL);
INSERT OR IGNORE INTO totals (id, bytes) SELECT 1, COALESCE(SUM(LENGTH(payload)), 0) FROM letters;
CREATE TRIGGER IF NOT EXISTS letters_added AFTER INSERT ON letters BEGIN
    UPDATE totals SET bytes = bytes + LENGTH(new.payload) WHERE id = 1;
END;
CREATE TRIGGER IF NOT EXISTS letters_removed AFTER DELETE ON letters BEGIN
    UPDATE totals SET bytes = bytes - LENGTH(old.payload) WHERE id = 1;
END;
"""


_INSERT: Final = (
    "INSERT INTO letters (stored_at, worker, kind, reason, detail, topic, size, truncated,"
    " payload) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"
)


@dataclass(frozen=True, slots=True)
class Letter:
    """One stored dead letter."""

    id: int
    stored_at: float
    worker: str
    kind: Kind
    reason: str
    detail: str
    topic: str
    size: int
    truncated: bool
    attempts: int
    payload: bytes


class DeadLetterStore:
    """A bounded SQLite table of dead letters, shared safely by the workers of one host."""

    def __init__(self, path: Path, max_bytes: int) -> None:
        self.path = path
        self.max_bytes = max_bytes
        self._lock = threading.Lock()
        self._db = open_sqlite(
            path, "the dead-letter store", schema=_SCHEMA, synchronous="NORMAL", timeout=10.0
        )

    def _used(self) -> int:
        # Kept by triggers in the same transactions: O(1) and exact across processes.
        return int(self._db.execute("SELECT bytes FROM totals WHERE id = 1").fetchone()[0])

    def bytes_used(self) -> int:
        """Payload bytes stored now (every worker's letters)."""
        with self._lock:
            return self._used()

    def count(self, reason: str | None = None) -> int:
        """How many letters are stored (of ``reason``)."""
        query, args = "SELECT COUNT(*) FROM letters", []
        if reason is not None:
            query, args = query + " WHERE reason = ?", [reason]
        with self._lock:
            return int(self._db.execute(query, args).fetchone()[0])

    def add(
        self, *, worker: str, kind: Kind, reason: str, detail: str, topic: str, payload: bytes
    ) -> int | None:
        """Commit one letter; return its id, or ``None`` when the store is full.

        Raises:
            IngestError: the store cannot be written (disk full, permissions).
        """
        kept = payload[:MAX_STORED_PAYLOAD]
        row = (
            time.time(),
            worker,
            kind,
            reason,
            detail,
            topic,
            len(payload),
            int(len(kept) < len(payload)),
            kept,
        )
        try:
            with self._lock:
                # BEGIN IMMEDIATE: the check and the insert are one step for every
                # worker of this host that shares the file.
                self._db.execute("BEGIN IMMEDIATE")
                try:
                    if self._used() + len(kept) > self.max_bytes:
                        self._db.execute("ROLLBACK")
                        return None
                    cur = self._db.execute(_INSERT, row)
                    self._db.execute("COMMIT")
                except BaseException:
                    self._db.execute("ROLLBACK")
                    raise
                return int(cur.lastrowid or 0)
        except sqlite3.Error as exc:
            raise IngestError(f"cannot write the dead-letter store {self.path}: {exc}") from exc

    def letters(
        self,
        reason: str | None = None,
        ids: Iterable[int] = (),
        limit: int | None = None,
        after_id: int = 0,
    ) -> list[Letter]:
        """Stored letters, oldest first, optionally of one reason or with the given ids.

        ``after_id`` and ``limit`` page through a large store.
        """
        query, args = "SELECT * FROM letters", list[object]()
        where = ["id > ?"]
        args.append(after_id)
        if reason is not None:
            where.append("reason = ?")
            args.append(reason)
        wanted = list(ids)
        if wanted:
            where.append(f"id IN ({','.join('?' * len(wanted))})")
            args.extend(wanted)
        query += " WHERE " + " AND ".join(where)
        query += " ORDER BY id"
        if limit is not None:
            query += f" LIMIT {int(limit)}"
        with self._lock:
            rows = self._db.execute(query, args).fetchall()
        return [
            Letter(
                id=int(r[0]),
                stored_at=float(r[1]),
                worker=str(r[2]),
                kind="line" if r[3] == "line" else "message",
                reason=str(r[4]),
                detail=str(r[5]),
                topic=str(r[6]),
                size=int(r[7]),
                truncated=bool(r[8]),
                attempts=int(r[9]),
                payload=bytes(r[10]),
            )
            for r in rows
        ]

    def remove(self, ids: Iterable[int]) -> int:
        """Delete letters (replayed or purged); return how many went."""
        wanted = list(ids)
        if not wanted:
            return 0
        with self._lock:
            cur = self._db.execute(
                f"DELETE FROM letters WHERE id IN ({','.join('?' * len(wanted))})", wanted
            )
            return int(cur.rowcount)

    def refused_again(self, letter_id: int, reason: str, detail: str) -> None:
        """Record a failed replay: the new reason and detail, one more attempt."""
        with self._lock:
            self._db.execute(
                "UPDATE letters SET reason = ?, detail = ?, attempts = attempts + 1 WHERE id = ?",
                (reason, detail, letter_id),
            )

    def close(self) -> None:
        """Close the database file."""
        with self._lock:
            self._db.close()


def store_path(settings: GatewaySettings) -> Path:
    """Where the dead-letter store of these settings lives."""
    return settings.ingest.dead_letter_path or (
        settings.gateway.data_dir / "ingest-deadletters.sqlite3"
    )


def open_store(settings: GatewaySettings) -> DeadLetterStore | None:
    """The configured dead-letter store, or ``None`` when it is switched off."""
    if not settings.ingest.dead_letter_store:
        return None
    return DeadLetterStore(store_path(settings), settings.ingest.dead_letter_max_bytes)
