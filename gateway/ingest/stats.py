"""The counters of one ingest worker.

Each counter has one writing thread (``received`` and ``refused_qos0``: paho's network
thread; every other: the pipeline thread), so bumping needs no lock; :meth:`snapshot`
may run anywhere (reads of ints are atomic).
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from gateway.ingest.decode import REASONS


class Stats:
    """Received, written, dead-lettered (per reason), retries, spool depth, pending acks."""

    def __init__(self) -> None:
        self.received = 0
        self.events_written = 0
        self.points_written = 0
        self.batches_written = 0  # database writes
        self.compact_batches = 0  # compact batches (.../batch) converted for writing
        self.retries = 0
        self.spooled = 0
        self.spool_depth = 0
        self.pending_acks = 0
        self.refused_qos0 = 0
        # "ok", "unavailable" (away, busy) or "config_fault" (refuses every write).
        self.db_state = "ok"
        self.config_faults = 0
        self.dead_letters_stored = 0
        self.dead_letter_held = 0
        self.dead_letter: Counter[str] = Counter({reason: 0 for reason in REASONS})

    def add(self, name: str, n: int = 1) -> None:
        """Add ``n`` to counter ``name`` (from that counter's one writing thread)."""
        setattr(self, name, getattr(self, name) + n)

    def dead_lettered(self, reason: str, n: int = 1) -> None:
        """Count ``n`` messages dead-lettered for ``reason`` (pipeline thread)."""
        self.dead_letter[reason] += n

    def snapshot(self) -> dict[str, Any]:
        """Return every counter as a JSON-ready dict."""
        return {
            "received": self.received,
            "events_written": self.events_written,
            "points_written": self.points_written,
            "batches_written": self.batches_written,
            "compact_batches": self.compact_batches,
            "retries": self.retries,
            "spooled": self.spooled,
            "spool_depth": self.spool_depth,
            "pending_acks": self.pending_acks,
            "refused_qos0": self.refused_qos0,
            "db_state": self.db_state,
            "config_faults": self.config_faults,
            "dead_letters_stored": self.dead_letters_stored,
            "dead_letter_held": self.dead_letter_held,
            "dead_letter": dict(self.dead_letter),
        }
