"""The SQLite spool: batches of line protocol that wait while the database is away.

A batch is committed here (WAL, ``synchronous=FULL``) before its MQTT messages are
acknowledged, then written to the database in order once it is back. The spool is
bounded by ``max_bytes``; when full, :meth:`Spool.append` refuses and the worker
holds its acknowledgements instead (the broker keeps the messages).
"""

from __future__ import annotations

import builtins
import threading
from pathlib import Path
from typing import Final

from gateway.ingest.sqlitestore import open_sqlite, store_errors

_WHAT: Final = "the ingest spool"
# ``lines`` holds the batch body (UTF-8 line protocol; a BLOB since this version, TEXT in
# spools written before).
_SCHEMA: Final = (
    "CREATE TABLE IF NOT EXISTS batches (id INTEGER PRIMARY KEY AUTOINCREMENT,"
    " lines TEXT NOT NULL, points INTEGER NOT NULL, events INTEGER NOT NULL)"
)


class Spool:
    """A FIFO of line-protocol batches on disk."""

    def __init__(self, path: Path, max_bytes: int) -> None:
        self.path = path
        self.max_bytes = max_bytes
        self._lock = threading.Lock()
        self._db = open_sqlite(path, _WHAT, schema=_SCHEMA, synchronous="FULL")
        with store_errors(_WHAT, path):
            row = self._db.execute(
                "SELECT COALESCE(SUM(LENGTH(lines)), 0), COALESCE(SUM(events), 0) FROM batches"
            ).fetchone()
        self._bytes = int(row[0])
        self._events = int(row[1])

    @property
    def events(self) -> int:
        """How many events wait in the spool."""
        return self._events

    @property
    def bytes(self) -> int:
        """How many bytes of line protocol wait in the spool."""
        return self._bytes

    def append(self, bodies: list[builtins.bytes], points: int, events: int) -> bool:
        """Commit one batch of line-protocol bodies (``points`` lines in all).

        Returns ``False`` (nothing stored) when it would exceed ``max_bytes``.
        """
        body = b"\n".join(bodies)
        with self._lock:
            if self._bytes + len(body) > self.max_bytes:
                return False
            self._db.execute(
                "INSERT INTO batches (lines, points, events) VALUES (?, ?, ?)",
                (body, points, events),
            )
            self._bytes += len(body)
            self._events += events
        return True

    def oldest(self) -> tuple[int, builtins.bytes, int, int] | None:
        """Return the oldest batch as ``(id, body, points, events)``, or ``None`` when empty."""
        with self._lock:
            row = self._db.execute(
                "SELECT id, lines, points, events FROM batches ORDER BY id LIMIT 1"
            ).fetchone()
        if row is None:
            return None
        body = row[1] if isinstance(row[1], bytes) else str(row[1]).encode("utf-8")
        return int(row[0]), body, int(row[2]), int(row[3])

    def remove(self, batch_id: int) -> None:
        """Delete a batch once it is written (or dead-lettered)."""
        with self._lock:
            row = self._db.execute(
                "SELECT LENGTH(lines), events FROM batches WHERE id = ?", (batch_id,)
            ).fetchone()
            if row is None:
                return
            self._db.execute("DELETE FROM batches WHERE id = ?", (batch_id,))
            self._bytes -= int(row[0])
            self._events -= int(row[1])

    def close(self) -> None:
        """Close the database file."""
        with self._lock:
            self._db.close()
