"""The files around the outbox database: its seq record, its reserve, quarantine.

* ``<outbox>.state``: a tiny JSON record of the sequence counter, written atomically
  (:func:`gateway.atomicfile.write_atomically`: temporary file, fsync, rename, fsync of
  the directory). It holds a high-water
  ``mark`` ahead of the last allocated seq, so that a damaged or rolled-back database
  never makes the gateway reuse a seq: a fresh outbox continues after the mark.
* ``<outbox>.reserve``: a ballast file of a few hundred KiB on the outbox's volume. When
  the volume is full, deleting it gives SQLite room to record the loss, drop the
  oldest events and store a health event; it is put back once there is space again.
* quarantine: a damaged database (and its WAL and SHM files) is renamed with a UTC
  timestamp, and only the newest few such files are kept.
"""

from __future__ import annotations

import contextlib
import json
import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from gateway.atomicfile import write_atomically

SUFFIXES = ("", "-wal", "-shm")
KEEP_QUARANTINED = 3


@dataclass(frozen=True, slots=True)
class SeqRecord:
    """The sequence counter as last recorded beside the database."""

    last_seq: int  # the last seq allocated when the record was written
    mark: int  # no seq up to this one may ever be allocated again
    oldest_seq: int  # the oldest stored seq then (what a damaged file may have held)
    clean: bool = False  # written by a clean close (last_seq is exact)
    counters: dict[str, int] = field(default_factory=dict)  # the loss counters then


def state_path(db: Path) -> Path:
    """Where the seq record of the database ``db`` lives."""
    return db.with_name(db.name + ".state")


def read_record(db: Path) -> tuple[SeqRecord | None, str | None]:
    """The seq record of ``db``, or ``(None, why)`` when it is missing or unreadable."""
    path = state_path(db)
    try:
        raw = json.loads(path.read_text())
        record = SeqRecord(
            last_seq=int(raw["last_seq"]),
            mark=int(raw["mark"]),
            oldest_seq=int(raw["oldest_seq"]),
            clean=bool(raw.get("clean", False)),
            counters={str(k): int(v) for k, v in dict(raw.get("counters", {})).items()},
        )
    except FileNotFoundError:
        return None, None
    except (OSError, ValueError, KeyError, TypeError) as exc:
        return None, f"unreadable seq record {path}: {exc}"
    if record.mark < record.last_seq or record.last_seq < 0:
        return None, f"inconsistent seq record {path}: {record}"
    return record, None


def write_record(db: Path, record: SeqRecord) -> None:
    """Replace the seq record atomically (raises ``OSError``, e.g. on a full disk)."""
    write_atomically(state_path(db), json.dumps(asdict(record)).encode(), mode=0o644)


def _fsync_dir(directory: Path) -> None:
    with contextlib.suppress(OSError):
        fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def quarantine(db: Path, now: float | None = None) -> Path:
    """Move ``db`` and its WAL/SHM aside under a timestamped name; return the new name.

    Only the newest :data:`KEEP_QUARANTINED` quarantined databases are kept, so a
    unit that keeps damaging its outbox cannot fill its disk with them.
    """
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(time.time() if now is None else now))
    target = db.with_name(f"{db.name}.damaged-{stamp}")
    n = 1
    while target.exists():
        n += 1
        target = db.with_name(f"{db.name}.damaged-{stamp}-{n}")
    for suffix in SUFFIXES:
        source = Path(str(db) + suffix)
        if source.exists():
            os.replace(source, Path(str(target) + suffix))
    _fsync_dir(db.parent)
    _prune_quarantined(db)
    return target


def _prune_quarantined(db: Path) -> None:
    damaged = db.parent.glob(f"{db.name}.damaged-*")
    found = sorted(
        (p for p in damaged if not p.name.endswith(("-wal", "-shm"))),
        key=lambda p: p.stat().st_mtime,
    )
    for old in found[:-KEEP_QUARANTINED]:
        for suffix in SUFFIXES:
            with contextlib.suppress(OSError):
                Path(str(old) + suffix).unlink()


def disk_bytes(db: Path) -> int:
    """Bytes the database, its WAL and its SHM file take now."""
    total = 0
    for suffix in SUFFIXES:
        with contextlib.suppress(OSError):
            total += Path(str(db) + suffix).stat().st_size
    return total


def free_bytes(directory: Path) -> int:
    """Bytes an unprivileged writer may still use on the volume of ``directory``."""
    try:
        st = os.statvfs(directory)
    except OSError:
        return 0
    return int(st.f_bavail * st.f_frsize)


class Reserve:
    """A ballast file that keeps a little room on the volume for the worst moment."""

    def __init__(self, path: Path, size: int) -> None:
        self.path = path
        self.size = size

    @property
    def present(self) -> bool:
        """Whether the ballast is in place."""
        try:
            return self.path.stat().st_size >= self.size
        except OSError:
            return False

    def ensure(self) -> bool:
        """Put the ballast in place when the volume has room for it; True when present."""
        if self.present:
            return True
        if free_bytes(self.path.parent) < 4 * self.size:
            return False
        try:
            fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
            try:
                chunk = b"\0" * 65536
                left = self.size
                while left > 0:  # real blocks, not a sparse file: they must free space
                    left -= os.write(fd, chunk[: min(left, len(chunk))])
                os.fsync(fd)
            finally:
                os.close(fd)
        except OSError:
            with contextlib.suppress(OSError):
                self.path.unlink()
            return False
        return True

    def release(self) -> bool:
        """Delete the ballast (the volume is full); True when it was there."""
        try:
            self.path.unlink()
        except OSError:
            return False
        return True
