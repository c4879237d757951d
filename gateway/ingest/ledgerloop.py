"""The worker's periodic ledger reconciliation (``[ingest] ledger_audit_interval_s``).

Every interval the worker reconciles the manifests of the last ``ledger_audit_window_s``
against the receipts in the database (:func:`gateway.ingest.audit.audit`) and writes the
accounts back (``ledger_account``, ``ledger_gap``), on its own thread and its own
database client, so the ingest path never waits for it. Everything it reads is in the
database: any worker may run it, two running it write the same accounts (the same
points, at the manifests' times). A failure is logged once a minute and retried at the
next interval.
"""

from __future__ import annotations

import logging
import threading
import time

from gateway.config.ingest import IngestConfig
from gateway.errors import GatewayError
from gateway.ingest.audit import audit
from gateway.ingest.database import Database, RejectedWriteError, RetryableWriteError
from gateway.ingest.ledger_readers import ledger_reader
from gateway.ratelog import RateLimitedLog

log = logging.getLogger(__name__)


class LedgerAuditor:
    """A thread that audits the recent ledger every ``ledger_audit_interval_s``."""

    def __init__(self, config: IngestConfig) -> None:
        self.config = config
        self.runs = 0
        self.last_unexplained: int | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._ratelog = RateLimitedLog(log, interval_s=60.0)

    def start(self) -> None:
        """Start the thread (nothing when the interval is 0)."""
        if self.config.ledger_audit_interval_s <= 0:
            return
        self._thread = threading.Thread(target=self._run, name="ledger-audit", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        database = Database(self.config.influx)
        try:
            while not self._stop.wait(self.config.ledger_audit_interval_s):
                self.run_once(database)
        finally:
            database.close()

    def run_once(self, database: Database) -> None:
        """One reconciliation of the window that ends now."""
        now_ms = int(time.time() * 1000)
        window_ms = int(self.config.ledger_audit_window_s * 1000)
        try:
            reader = ledger_reader(self.config.influx)
            result = audit(reader, now_ms - window_ms, now_ms + 1)
            if result.lines:
                database.write(result.lines)
        except (GatewayError, RetryableWriteError, RejectedWriteError, OSError, ValueError) as exc:
            self._ratelog.log("audit", logging.WARNING, "ledger audit failed: %s", exc)
            return
        self.runs += 1
        bad = [d for d in result.days if d.status == "unexplained"]
        self.last_unexplained = len(bad)
        for day in bad:
            self._ratelog.log(
                f"gap:{day.unit}",
                logging.WARNING,
                "ledger: %s %s has %d seq(s) lost in transit, %d chain mismatch(es) "
                "(`gateway ingest audit --unit %s`)",
                day.unit,
                day.day,
                day.missing_transit,
                day.chain_mismatches,
                day.unit,
            )

    def stop(self) -> None:
        """Stop the thread (a run in progress finishes first)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(30.0)
