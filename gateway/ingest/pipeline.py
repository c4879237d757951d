"""The batching thread: decode, map, batch, write (or spool), dead-letter, release acks.

Everything that touches the database runs on this one thread, so the order of
writes, spool appends and acknowledgements is easy to follow:

1. a received message is decoded and mapped; a bad one is published to the
   dead-letter topic and is done once the broker has that copy;
2. points collect in a batch, written when it holds ``batch_size`` points or is
   ``flush_interval_s`` old, in one request;
3. a write that fails with a connection error, 429 or 5xx is committed to the
   spool (when configured) and retried from there with exponential back-off;
   without a spool it is retried in place while acknowledgements are held, so
   the broker keeps the messages (bounded by ``receive_maximum``);
4. a write refused with another 4xx sends the batch's messages to the dead-letter
   topic with reason ``db_rejected``;
5. acknowledgements of done messages are released in receive order.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from gateway.config.ingest import IngestConfig
from gateway.ingest.acks import AckTracker, Pending, Published
from gateway.ingest.convert import Limits, convert
from gateway.ingest.database import (
    Database,
    RejectedWriteError,
    RetryableWriteError,
)
from gateway.ingest.decode import DB_REJECTED, RejectedError
from gateway.ingest.spool import Spool
from gateway.ingest.stats import Stats
from gateway.transport.backoff import Backoff

log = logging.getLogger(__name__)

# Publishes one dead-letter message: (reason, topic, payload, detail) -> broker receipt.
DeadLetter = Callable[[str, str, bytes, str], Published | None]

_STOP = object()
_POLL_S = 0.05


@dataclass(slots=True)
class _Batch:
    # One line-protocol body (lines joined by newlines) per message that has points.
    bodies: list[bytes] = field(default_factory=list)
    points: int = 0
    items: list[tuple[str, bytes, Pending]] = field(default_factory=list)
    started: float = 0.0


class Pipeline:
    """Turns received messages into database writes; runs :meth:`run` on its own thread."""

    def __init__(
        self,
        config: IngestConfig,
        *,
        database: Database,
        spool: Spool | None,
        acks: AckTracker,
        stats: Stats,
        dead_letter: DeadLetter,
        on_stats: Callable[[dict[str, Any]], None] | None = None,
        topic_prefix: str = "city",
    ) -> None:
        self.config = config
        self.db = database
        self.spool = spool
        self.acks = acks
        self.stats = stats
        self._dead_letter = dead_letter
        self._on_stats = on_stats
        self._limits = Limits.of(config, topic_prefix)
        self._queue: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._stopping = threading.Event()
        self._batch = _Batch()
        self._drain_at = 0.0
        influx = config.influx
        self._drain_backoff = Backoff(influx.retry_min_s, influx.retry_max_s)
        self._db_down = False
        self._next_stats = time.monotonic() + config.stats_interval_s

    def submit(self, topic: str, payload: bytes, pending: Pending) -> None:
        """Hand one received message over (called on paho's network thread)."""
        self.stats.received += 1
        self._queue.put((topic, payload, pending))

    def stop(self) -> None:
        """Ask :meth:`run` to flush what it has and return."""
        self._stopping.set()
        self._queue.put(_STOP)

    def run(self) -> None:
        """Process messages until :meth:`stop`; then write the last batch once."""
        influx = self.config.influx
        while True:
            drain_due = self.spool is not None and self.spool.events > 0
            wait = 0.001 if drain_due and time.monotonic() >= self._drain_at else _POLL_S
            try:
                item = self._queue.get(timeout=wait)
            except queue.Empty:
                item = None
            stop = item is _STOP
            while item is not None and not stop:
                self._handle(*item)
                if self._batch.points >= influx.batch_size:
                    self._flush()
                    # Under a steady flood the queue may never run dry: acknowledge,
                    # drain the spool and report here too, not only when it does.
                    now = time.monotonic()
                    self._drain(now)
                    self._tick(now)
                try:
                    item = self._queue.get_nowait()
                except queue.Empty:
                    item = None
                stop = item is _STOP
            if stop:
                break
            now = time.monotonic()
            if self._batch.items and now - self._batch.started >= influx.flush_interval_s:
                self._flush()
            self._drain(now)
            self._tick(now)
        self._flush(final=True)
        self._release()

    # -- one message -------------------------------------------------------------

    def _handle(self, topic: str, payload: bytes, pending: Pending) -> None:
        try:
            converted = convert(payload, self._limits, time.time(), topic)
        except RejectedError as exc:
            self._reject(exc.reason, topic, payload, exc.detail, pending)
            return
        batch = self._batch
        if not batch.items:
            batch.started = time.monotonic()
        if converted.points:
            batch.bodies.append(converted.body)
            batch.points += converted.points
        batch.items.append((topic, payload, pending))

    def _reject(
        self, reason: str, topic: str, payload: bytes, detail: str, pending: Pending
    ) -> None:
        self.stats.dead_lettered(reason)
        log.debug("dead-letter %s from %s: %s", reason, topic, detail)
        pending.finish(self._dead_letter(reason, topic, payload, detail))

    def _tick(self, now: float) -> None:
        """Release acknowledgements; report the counters when they are due."""
        self._release()
        if now >= self._next_stats:
            self._next_stats = now + self.config.stats_interval_s
            if self._on_stats is not None:
                self._on_stats(self.stats.snapshot())

    def _release(self) -> None:
        self.acks.release()
        self.stats.pending_acks = len(self.acks)
        if self.spool is not None:
            self.stats.spool_depth = self.spool.events

    # -- writing -------------------------------------------------------------------

    def _written(self, points: int, events: int) -> None:
        self.stats.add("points_written", points)
        self.stats.add("events_written", events)
        self.stats.add("batches_written")
        if self._db_down:
            self._db_down = False
            log.info("database is back")

    def _flush(self, final: bool = False) -> None:
        batch, self._batch = self._batch, _Batch()
        if not batch.items:
            return
        if not batch.bodies or (
            self.spool is not None and self.spool.events and self._spool(batch)
        ):
            self._finish(batch)
            return
        influx = self.config.influx
        retry = Backoff(influx.retry_min_s, influx.retry_max_s)
        while True:
            try:
                self.db.write(batch.bodies)
            except RejectedWriteError as exc:
                log.error("database refused a batch of %d points: %s", batch.points, exc)
                for topic, payload, pending in batch.items:
                    self._reject(DB_REJECTED, topic, payload, str(exc), pending)
                return
            except RetryableWriteError as exc:
                self.stats.add("retries")
                if not self._db_down:
                    self._db_down = True
                    log.warning("database write failed, will retry: %s", exc)
                if self.spool is not None and self._spool(batch):
                    self._finish(batch)
                    self._drain_at = time.monotonic() + retry.next_delay(exc.retry_after_s)
                    return
                if final or self._stopping.is_set():
                    log.warning(
                        "leaving %d messages unacknowledged for redelivery", len(batch.items)
                    )
                    return
                delay = retry.next_delay(exc.retry_after_s)
                deadline = time.monotonic() + delay
                while not self._stopping.is_set() and time.monotonic() < deadline:
                    self._tick(time.monotonic())  # counters and dead-letter acks go on
                    self._stopping.wait(min(_POLL_S * 4, max(deadline - time.monotonic(), 0)))
                if self._stopping.is_set():
                    final = True
                continue
            self._written(batch.points, len(batch.items))
            self._finish(batch)
            return

    def _spool(self, batch: _Batch) -> bool:
        assert self.spool is not None
        if not self.spool.append(batch.bodies, batch.points, len(batch.items)):
            return False
        self.stats.add("spooled", len(batch.items))
        return True

    @staticmethod
    def _finish(batch: _Batch) -> None:
        for _topic, _payload, pending in batch.items:
            pending.finish()

    def _drain(self, now: float) -> None:
        """Write the oldest spooled batch when it is time (one per call)."""
        if self.spool is None or not self.spool.events or now < self._drain_at:
            return
        oldest = self.spool.oldest()
        if oldest is None:
            return
        batch_id, body, points, events = oldest
        try:
            self.db.write([body])
        except RetryableWriteError as exc:
            self.stats.add("retries")
            delay = self._drain_backoff.next_delay(exc.retry_after_s)
            self._drain_at = now + delay
            log.debug(
                "spool drain failed (attempt %d, next in %.1f s): %s",
                self._drain_backoff.attempt,
                delay,
                exc,
            )
            return
        except RejectedWriteError as exc:
            log.error("database refused a spooled batch of %d points: %s", points, exc)
            for line in body.split(b"\n"):
                self.stats.dead_lettered(DB_REJECTED)
                self._dead_letter(DB_REJECTED, "(spool)", line, str(exc))
        else:
            self._written(points, events)
        self._drain_backoff.reset()
        self.spool.remove(batch_id)
        self._drain_at = now
