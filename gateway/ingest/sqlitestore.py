"""How the ingest's SQLite files are opened: the spool and the dead-letter store.

Each is one file used from several threads (and, for dead letters, by every worker of
a host), in autocommit mode with explicit transactions where a check and a write must
be one step, journaled in WAL. A file that cannot be opened, read or given its schema
is one :class:`~gateway.errors.IngestError` that names the store and the path.
"""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Literal

from gateway.errors import IngestError


@contextlib.contextmanager
def store_errors(what: str, path: Path) -> Iterator[None]:
    """Turn SQLite and OS errors within the block into ``IngestError`` naming the store."""
    try:
        yield
    except (sqlite3.Error, OSError) as exc:
        raise IngestError(f"cannot open {what} {path}: {exc}") from exc


def open_sqlite(
    path: Path,
    what: str,
    *,
    schema: str,
    synchronous: Literal["FULL", "NORMAL"],
    timeout: float = 5.0,
) -> sqlite3.Connection:
    """Open (or create) ``path`` in WAL mode for any thread and run ``schema`` on it.

    ``timeout`` is how long a statement waits for another connection's lock.

    Raises:
        IngestError: the file cannot be opened or given its schema.
    """
    with store_errors(what, path):
        path.parent.mkdir(parents=True, exist_ok=True)
        db = sqlite3.connect(path, check_same_thread=False, isolation_level=None, timeout=timeout)
        db.execute("PRAGMA journal_mode=WAL")
        db.execute(f"PRAGMA synchronous={synchronous}")
        db.executescript(schema)
    return db
