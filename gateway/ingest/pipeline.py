"""The batching thread: decode, map, batch, write (or spool), dead-letter, release acks.

Everything that touches the database runs on this one thread, so the order of
writes, spool appends and acknowledgements is easy to follow:

1. a received message is converted (:func:`gateway.ingest.convert.convert`); a bad
   one goes to the :class:`~gateway.ingest.deadletter.DeadLetterSink` with its reason
   and is done once the dead letter is safe;
2. points collect in a batch, written when it holds ``batch_size`` points or is
   ``flush_interval_s`` old, in one request;
3. a write that fails with a connection error, 429 or 5xx, or with a configuration
   fault (401, 403, 404: nothing is dead-lettered for that, an alarm is raised), is
   committed to the spool (when configured) and retried from there with back-off;
   without a spool it is retried in place while acknowledgements are held, so the
   broker keeps the messages (bounded by ``receive_maximum``);
4. a batch refused for its data (400, 413, 422) is split until the refused messages
   are isolated (:func:`gateway.ingest.isolate.write_isolating`): the rest is written,
   those are dead-lettered with reason ``db_rejected``;
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

from gateway.backoff import Backoff
from gateway.config.ingest import IngestConfig
from gateway.ingest.acks import AckTracker, Pending
from gateway.ingest.convert import Limits, convert
from gateway.ingest.database import ConfigFaultError, Database, RetryableWriteError
from gateway.ingest.deadletter import DeadLetterSink
from gateway.ingest.decode import DB_REJECTED, RejectedError
from gateway.ingest.isolate import write_isolating
from gateway.ingest.spool import Spool
from gateway.ingest.stats import Stats
from gateway.ratelog import RateLimitedLog

log = logging.getLogger(__name__)

_STOP = object()
_POLL_S = 0.05


@dataclass(slots=True)
class _Batch:
    # One line-protocol body (lines joined by newlines) per message that has points.
    bodies: list[bytes] = field(default_factory=list)
    owners: list[int] = field(default_factory=list)  # the index in ``items`` of each body
    points: int = 0
    items: list[tuple[str, bytes, Pending]] = field(default_factory=list)
    counts: list[int] = field(default_factory=list)  # events of each item (batches: many)
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
        dead_letters: DeadLetterSink,
        on_stats: Callable[[dict[str, Any]], None] | None = None,
        topic_prefix: str = "city",
    ) -> None:
        self.config = config
        self.db = database
        self.spool = spool
        self.acks = acks
        self.stats = stats
        self.dead_letters = dead_letters
        self._on_stats = on_stats
        self._limits = Limits.of(config, topic_prefix)
        self._queue: queue.SimpleQueue[Any] = queue.SimpleQueue()
        # Bytes put by the network thread and taken by this one (each written by one
        # thread only, so no lock): their difference bounds the queue's memory.
        self._submitted_bytes = 0
        self._taken_bytes = 0
        self._inbox: list[tuple[str, bytes, Pending]] = []
        self._stopping = threading.Event()
        self._batch = _Batch()
        self._drain_at = 0.0
        influx = config.influx
        self._drain_backoff = Backoff(influx.retry_min_s, influx.retry_max_s)
        self._ratelog = RateLimitedLog(log)
        self._next_stats = time.monotonic() + config.stats_interval_s

    def submit(self, topic: str, payload: bytes, pending: Pending) -> None:
        """Take one received message (network thread); :meth:`hand_over` passes it on."""
        self.stats.received += 1
        self._submitted_bytes += len(payload)
        self._inbox.append((topic, payload, pending))

    def hand_over(self) -> None:
        """Pass the messages taken since the last call to this thread, in one piece.

        Called on the network thread after each burst of reads: one queue operation
        (and one wake-up of this thread) per burst instead of per message.
        """
        if self._inbox:
            inbox, self._inbox = self._inbox, []
            self._queue.put(inbox)

    @property
    def queued_bytes(self) -> int:
        """Payload bytes received and not yet converted (the queue's memory)."""
        return self._submitted_bytes - self._taken_bytes

    def can_read(self) -> bool:
        """Whether the network thread may read more messages (the queue's byte bound)."""
        return self.queued_bytes < self.config.max_queue_bytes

    def idle(self) -> bool:
        """Nothing received waits here: no payload queued, no batch open, spool empty."""
        spooled = self.spool is not None and self.spool.events > 0
        return self.queued_bytes == 0 and not self._batch.items and not spooled

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
                for message in item:
                    self._handle(*message)
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
        self._taken_bytes += len(payload)
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
            batch.owners.append(len(batch.items))
            batch.points += converted.points
        batch.items.append((topic, payload, pending))
        batch.counts.append(converted.events)
        if converted.compact:
            self.stats.add("compact_batches")

    def _reject(
        self, reason: str, topic: str, payload: bytes, detail: str, pending: Pending
    ) -> None:
        self.dead_letters.reject(reason, topic, payload, detail, pending)

    def _tick(self, now: float) -> None:
        """Release acknowledgements; report the counters when they are due."""
        self._release()
        if now >= self._next_stats:
            self._next_stats = now + self.config.stats_interval_s
            if self._on_stats is not None:
                self._on_stats(self.stats.snapshot())

    def _release(self) -> None:
        if self.dead_letters.held:
            self.dead_letters.retry()
        self.acks.release()
        self.stats.pending_acks = len(self.acks)
        if self.spool is not None:
            self.stats.spool_depth = self.spool.events

    # -- writing -------------------------------------------------------------------

    def _written(self, points: int, events: int) -> None:
        self.stats.add("points_written", points)
        self.stats.add("events_written", events)
        self.stats.add("batches_written")
        if self.stats.db_state != "ok":
            log.info("database is back (was %s)", self.stats.db_state.replace("_", " "))
            self.stats.db_state = "ok"

    def _trouble(self, exc: RetryableWriteError, held: int) -> None:
        """Count and report a failed write: the database is away, or refuses everything."""
        self.stats.add("retries")
        if isinstance(exc, ConfigFaultError):
            self.stats.add("config_faults")
            if self.stats.db_state != "config_fault":
                self._ratelog = RateLimitedLog(log)  # the first record of a fault at once
            self.stats.db_state = "config_fault"
            self._ratelog.log(
                "config",
                logging.ERROR,
                "the database refuses every write (%s): a configuration fault (token, "
                "permission, org, bucket or URL); %d messages held and retried, nothing "
                "dead-lettered",
                exc,
                held,
            )
        elif self.stats.db_state == "ok":
            self.stats.db_state = "unavailable"
            log.warning("database write failed, will retry: %s", exc)

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
                refused = write_isolating(self.db, batch.bodies)
            except RetryableWriteError as exc:
                self._trouble(exc, len(batch.items))
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
            break
        rejected = {batch.owners[index]: why for index, why in refused}
        refused_points = sum(batch.bodies[index].count(b"\n") + 1 for index, _ in refused)
        events = sum(batch.counts) - sum(batch.counts[index] for index in rejected)
        self._written(batch.points - refused_points, events)
        if rejected:
            log.error(
                "database refused %d of %d messages of a batch (dead-lettered): %s",
                len(rejected),
                len(batch.items),
                refused[0][1],
            )
        for index, (topic, payload, pending) in enumerate(batch.items):
            if index in rejected:
                self._reject(DB_REJECTED, topic, payload, rejected[index], pending)
            else:
                pending.finish()

    def _spool(self, batch: _Batch) -> bool:
        assert self.spool is not None
        if not self.spool.append(batch.bodies, batch.points, sum(batch.counts)):
            return False
        self.stats.add("spooled", sum(batch.counts))
        return True

    @staticmethod
    def _finish(batch: _Batch) -> None:
        for _topic, _payload, pending in batch.items:
            pending.finish()

    def _drain(self, now: float) -> None:
        """Write the oldest spooled batch when it is time (one per call)."""
        if self.spool is None or not self.spool.events or now < self._drain_at:
            return
        if self.dead_letters.held:
            return  # a refused line waits for room in the dead-letter store
        oldest = self.spool.oldest()
        if oldest is None:
            return
        batch_id, body, points, events = oldest
        lines = body.split(b"\n")
        try:
            refused = write_isolating(self.db, lines)
        except RetryableWriteError as exc:
            self._trouble(exc, 0)
            delay = self._drain_backoff.next_delay(exc.retry_after_s)
            self._drain_at = now + delay
            log.debug(
                "spool drain failed (attempt %d, next in %.1f s): %s",
                self._drain_backoff.attempt,
                delay,
                exc,
            )
            return
        self._written(points - len(refused), events)
        for index, why in refused:
            log.error("database refused a spooled line (dead-lettered): %s", why)
            self.dead_letters.reject(DB_REJECTED, "(spool)", lines[index], why, None, kind="line")
        self._drain_backoff.reset()
        self.spool.remove(batch_id)
        self._drain_at = now
