"""The forwarder: outbox rows -> MQTT QoS 1, rows deleted when the broker accepted them.

One thread. It publishes rows lane by lane (:mod:`gateway.transport.lanes`: each free
slot of the link's window goes to the highest lane with events waiting, no lane
starves, ``seq`` order within a lane), maps each PUBACK (``generation``, ``mid``,
reason code) back to its ``seq`` and acts on the reason code
(:mod:`gateway.transport.reasons`):

* accepted: the row is deleted (in batches);
* refused for the message itself: the row is deleted and counted (``lost_refused``);
* refused for a reason of the broker's state or configuration (no subscriber, not
  authorized, quota): the row is kept and its TOPIC is held. Rows of a held topic are
  not published; after a back-off the oldest kept row of the topic is sent alone as a
  probe; when the broker accepts the probe the hold is lifted and the topic's lane
  goes back to the oldest kept row (:meth:`LaneQueue.rewind`), so every kept row of the
  topic is sent again in lane order (rows of other topics flow meanwhile, so one
  refused topic never blocks the rest). Refusals are counted and logged once per hold.

With :class:`Batching` (``[outbox] batch = "backlog"``, or what
:mod:`gateway.transport.negotiate` says is in force) a bulk lane with at least
``min_events`` rows waiting sends them as compact batches (:mod:`gateway.events.batch`,
one message on the unit's batch topic carrying up to ``max_events`` consecutive rows of
the lane, in lane order, of the types the batching accepts; a row of another type goes
alone). The broker's PUBACK of a batch acknowledges all its rows; a refused batch is
not a refused event: its rows are sent again one by one (the lane is rewound to the
batch's first row) and batching pauses for ``retry_max_s``.

A new connection (new generation) restarts every lane from its oldest stored row (or,
for a bulk backlog drained newest first, from its newest), so whatever was in flight
when the link dropped is sent again (same ``id``, same ``seq``).
"""

from __future__ import annotations

import collections
import logging
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from gateway.backoff import Backoff
from gateway.errors import TransportError
from gateway.events.batch import batch_json_size, encode_batch
from gateway.events.topics import event_type_of
from gateway.health import OutboxHealth
from gateway.ratelog import RateLimitedLog
from gateway.transport.lanes import ALERT, BULK, BacklogOrder, LaneQueue, Scheduler, queues_for
from gateway.transport.mqtt import MqttLink
from gateway.transport.outbox import Outbox, Row
from gateway.transport.pacing import BulkWindow
from gateway.transport.reasons import PUBACK, NoSubscribers, Reason, classify
from gateway.transport.urgency import Urgency

log = logging.getLogger(__name__)

_ACK_BATCH = 1000
_MAX_PENDING_ACKS = 20 * _ACK_BATCH  # accepted rows not yet deleted (the disk refuses)
_ACK_EVERY_S = 0.05
_IDLE_WAIT_S = 0.25
MAX_HELD_TOPICS = 1024
_SUCCESS = PUBACK[0]
_PACKET_TOO_LARGE = 149
_LOG_EVERY_S = 60.0
BATCH_WEIGHT_BYTES = 512
"""A compact batch counts as one bulk event per this many bytes of its payload."""


def publish_size(topic: str, payload: bytes) -> int:
    """Bytes of an MQTT v5 QoS 1 PUBLISH without properties (for Maximum Packet Size)."""
    remaining = 2 + len(topic.encode()) + 2 + 1 + len(payload)
    length_bytes = 1 + (remaining >= 128) + (remaining >= 16_384) + (remaining >= 2_097_152)
    return 1 + length_bytes + remaining


@dataclass(frozen=True, slots=True)
class Batching:
    """Compact batches for a bulk backlog: where, from how deep, how large, which types.

    ``types``: the event types a batch may hold (None: every bulk type); a row of
    another type is sent alone and ends the batch before it (a batch is a run of the
    lane).
    """

    topic: str
    min_events: int = 20
    max_events: int = 500
    max_bytes: int = 256 * 1024
    types: frozenset[str] | None = None

    def accepts(self, topic: str) -> bool:
        """Whether an event published on ``topic`` may go into a batch."""
        if self.types is None:
            return True
        return event_type_of(self.topic.removesuffix("/batch"), topic) in self.types


BatchSource = Callable[[], Batching | None]
"""What the forwarder asks before forming batches (:mod:`gateway.transport.negotiate`)."""


@dataclass(slots=True)
class Hold:
    """A topic the broker refused: its kept rows wait for a probe to be accepted."""

    reason: Reason
    lane: int
    first_seq: int  # the oldest kept row of the topic is at or after this seq
    backoff: Backoff
    until: float  # monotonic time of the next probe
    probe: int | None = None  # seq of the probe in flight
    refusals: int = 0


@dataclass(slots=True)
class Refusals:
    """What the broker refused since start: counts by reason name, topics held now."""

    by_reason: collections.Counter[str] = field(default_factory=collections.Counter)
    held_topics: int = 0

    @property
    def total(self) -> int:
        """Every refusal since start."""
        return sum(self.by_reason.values())


class Forwarder:
    """Moves events from the outbox to the broker; ``wake()`` after adding events."""

    def __init__(
        self,
        outbox: Outbox,
        link: MqttLink,
        *,
        no_subscribers: NoSubscribers = "retry",
        retry_min_s: float = 1.0,
        retry_max_s: float = 30.0,
        backlog_order: BacklogOrder = "oldest_first",
        lane_share: float = 0.1,
        batching: Batching | BatchSource | None = None,
        bulk_hold: Callable[[], bool] = lambda: False,
        urgency: Urgency | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.outbox = outbox
        self.link = link
        self.no_subscribers: NoSubscribers = no_subscribers
        self.retry_min_s = retry_min_s
        self.retry_max_s = retry_max_s
        self.published = 0
        self.acked = 0
        self.refusals = Refusals()
        self._clock = clock
        # (generation, mid, reason code, monotonic time of the PUBACK)
        self._acks: queue.SimpleQueue[tuple[int, int, int, float]] = queue.SimpleQueue()
        # mid -> (seq, topic, lane, monotonic time sent), this generation
        self._inflight: dict[int, tuple[int, str, int, float]] = {}
        if batching is None or isinstance(batching, Batching):
            fixed = batching
            self._batch_source: BatchSource = lambda: fixed
        else:
            self._batch_source = batching
        # mid -> (seqs, weight in the bulk window) of a batch in flight
        self._batches: dict[int, tuple[list[int], int]] = {}
        self._batch_pause_until = float("-inf")
        self._batch_ratio = 1.0  # JSON bytes per payload byte of the last batch (x 0.9)
        self._bulk_hold = bulk_hold  # the bulk lane waits while True (negotiation)
        self._urgency = urgency  # alerts in passage: bulk work steps aside for them
        self.batches = 0  # batches published (their events count in ``published``)
        self._bulk_inflight = 0
        self.bulk_window = BulkWindow(link.max_inflight)
        self._generation = 0
        self.backlog_order: BacklogOrder = backlog_order
        self._scheduler = Scheduler(queues_for(backlog_order, 0), lane_share)
        self._holds: dict[str, Hold] = {}
        self._pending_acks: list[int] = []
        self._pending_discards: dict[str, list[int]] = {}
        self._last_ack_flush = clock()
        self._ratelog = RateLimitedLog(log, interval_s=_LOG_EVERY_S, clock=clock)
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def inflight(self) -> int:
        """Events published and not yet acknowledged."""
        return len(self._inflight) + sum(len(seqs) - 1 for seqs, _ in self._batches.values())

    def health(self) -> OutboxHealth:
        """The outbox as it stands and what this forwarder has in flight or held."""
        return OutboxHealth(
            depth=self.outbox.depth,
            bytes=self.outbox.size_bytes,
            oldest_age_s=round(self.outbox.oldest_age_s(), 3),
            inflight=self.inflight,
            losses=self.outbox.losses(),
            damaged=self.outbox.damaged,
            disk_bytes=self.outbox.disk_bytes,
            limit_bytes=self.outbox.limit_bytes,
            refused=self.refusals.total,
            held_topics=self.refusals.held_topics,
            lanes=self.outbox.lane_depths(),
        )

    @property
    def held_topics(self) -> list[str]:
        """Topics whose events the broker refused and that wait for a probe."""
        return list(self._holds)

    @property
    def alive(self) -> bool:
        """Whether the forwarding thread runs (for the systemd watchdog)."""
        return self._thread is not None and self._thread.is_alive()

    def on_published(self, generation: int, mid: int, reason_code: int = 0) -> None:
        """Handle a PUBACK (called on the network thread: only queue it)."""
        self._acks.put((generation, mid, reason_code, self._clock()))
        self._wake.set()

    def on_connected(self, _generation: int) -> None:
        """Handle a new connection (network thread): wake up to replay."""
        self._wake.set()

    def wake(self) -> None:
        """There is something new in the outbox."""
        self._wake.set()

    def start(self) -> None:
        """Start the forwarding thread."""
        self._thread = threading.Thread(target=self._run, name="forwarder", daemon=True)
        self._thread.start()

    def stop(self, drain_s: float = 0.0) -> None:
        """Stop, after waiting up to ``drain_s`` for the outbox to empty; commit acks.

        Rows of held topics cannot leave now: the wait ends when only they are left.
        """
        deadline = time.monotonic() + drain_s
        while drain_s > 0 and self.link.connected and time.monotonic() < deadline:
            if self.outbox.depth == 0 or (self._holds and self._settled()):
                break
            time.sleep(0.02)
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(10.0)
            self._thread = None
        self._flush(force=True)

    def _settled(self) -> bool:
        """Nothing in flight, every row taken by a lane's cursor."""
        return not self._inflight and not any(
            self._fetch(queue, 1) for queue in self._scheduler.queues
        )

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                busy = self._step()
            except TransportError as exc:
                self._ratelog.log("step", logging.ERROR, "forwarder: %s (retrying)", exc)
                busy = False
                self._stop.wait(1.0)
            if not busy:
                self._wake.wait(self._idle_wait())
                self._wake.clear()

    def _idle_wait(self) -> float:
        wait = _ACK_EVERY_S if self._pending_acks or self._pending_discards else _IDLE_WAIT_S
        due = min((h.until for h in self._holds.values() if h.probe is None), default=None)
        if due is not None:
            wait = min(wait, max(due - self._clock(), 0.0))
        return wait

    def _step(self) -> bool:
        """Do one round of work; return whether there may be more to do at once."""
        busy = self._collect_acks()
        generation = self.link.generation
        if generation != self._generation:
            self._generation = generation
            self._inflight.clear()
            self._batches.clear()
            self._bulk_inflight = 0
            self._scheduler.queues = queues_for(self.backlog_order, self.outbox.last_seq)
            for hold in self._holds.values():
                hold.probe = None  # its PUBACK will never come: probe again when due
        if self.link.connected:
            busy = self._probe(generation) or busy
            busy = self._forward(generation) or busy
        self._flush()
        return busy

    def _room(self) -> int:
        if len(self._pending_acks) >= _MAX_PENDING_ACKS:  # deletes keep failing: wait
            return 0
        return self.link.window - len(self._inflight)

    def _too_large(self, row: Row) -> bool:
        """A row larger than the broker's Maximum Packet Size: discarded and counted.

        Sent anyway, it would make the broker close the connection, and the replay
        after the reconnect would send it again, for ever.
        """
        limit = self.link.max_packet
        if limit is None or publish_size(row.topic, row.payload) <= limit:
            return False
        self._outcome_refused(row.seq, row.topic, PUBACK[_PACKET_TOO_LARGE], row.lane)
        return True

    def _send(self, row: Row, generation: int) -> bool:
        at = self._clock()  # before the publish: its PUBACK may come before it returns
        # Alerts go out ahead of the packets queued in the client and not yet written
        # (lanes order what leaves the outbox; this orders what leaves the client).
        sent = self.link.publish(row.topic, row.payload, qos=1, first=row.lane == ALERT)
        if sent is None or sent[0] != generation:
            return False
        self._inflight[sent[1]] = (row.seq, row.topic, row.lane, at)
        if row.lane == BULK:
            self._bulk_inflight += 1
        elif row.lane == ALERT and self._urgency is not None:
            self._urgency.handed_over(1)
        self.published += 1
        return True

    def _fetch(self, queue: LaneQueue, limit: int) -> list[Row]:
        """The next rows of ``queue`` after its cursor, in its order."""
        if queue.descending:
            if queue.exhausted:
                return []
            rows = self.outbox.fetch_newest(queue.cursor, limit, queue.lane)
            queue.exhausted = not rows  # nothing new is ever stored below the cursor
            return rows
        return self.outbox.fetch(queue.cursor, limit, lane=queue.lane)

    def _forward(self, generation: int) -> bool:
        """Fill the window's free slots, each from the lane the scheduler picks."""
        busy = False
        room = self._room()
        if room <= 0:
            if self._urgency is not None and self._urgency.active():
                self._urgency.need_drain()  # PUBACKs must be read to make room for it
            return False
        scheduler = self._scheduler
        buffers: dict[int, collections.deque[Row]] = {}
        empty: dict[int, int] = {}  # queue -> its lane's newest seq when it was found empty
        taken: set[int] | None = None  # computed when a rewound queue needs it
        urgency = self._urgency
        while room > 0:
            if urgency is not None and urgency.active():
                urgency.step_aside(self._alert_waiting)  # until it is stored
            ready = []
            bulk_room = self.bulk_window.limit - self._bulk_inflight
            if bulk_room > 0 and self._bulk_hold():
                bulk_room = 0
            batching = self._batching_now()
            for lane_queue in scheduler.queues:
                key = id(lane_queue)
                limit = min(room, bulk_room if lane_queue.lane == BULK else room, 1000)
                if batching is not None and lane_queue.lane == BULK and bulk_room > 0:
                    limit = max(limit, batching.max_events)
                if limit <= 0 or (key in empty and not self._stored_since(lane_queue, empty)):
                    continue
                if not buffers.get(key):
                    newest = self.outbox.lane_last(lane_queue.lane)  # before: none is missed
                    rows = self._fetch(lane_queue, limit)
                    if not rows:
                        empty[key] = newest
                        continue
                    buffers[key] = collections.deque(rows)
                ready.append(lane_queue)
            chosen = scheduler.pick(ready)
            if chosen is None:
                break
            buffer = buffers[id(chosen)]
            if batching is not None and chosen.lane == BULK and len(buffer) >= batching.min_events:
                taken = self._taken() if taken is None else taken
                sent = self._forward_batch(
                    chosen, buffer, batching, taken, generation, room=bulk_room
                )
                if sent is None:
                    break
                if sent:
                    scheduler.served(chosen, ready)
                    room -= 1
                busy = True
                continue
            row = buffer.popleft()
            if chosen.revisits(row.seq):  # read again after a rewind: maybe in flight
                taken = self._taken() if taken is None else taken
                if row.seq in taken:
                    chosen.advance(row.seq)
                    continue
            if row.topic in self._holds or self._too_large(row):
                chosen.advance(row.seq)  # held: kept for the topic's probe and re-send
                busy = True
                continue
            if not self._send(row, generation):
                break
            chosen.advance(row.seq)
            if taken is not None:
                taken.add(row.seq)
            scheduler.served(chosen, ready)
            room -= 1
            busy = True
        return busy

    def _alert_waiting(self) -> bool:
        """Whether an alert was stored that the alert lane has not sent yet."""
        last = self.outbox.lane_last(ALERT)
        return any(q.lane == ALERT and last > q.cursor for q in self._scheduler.queues)

    def _stored_since(self, queue: LaneQueue, empty: dict[int, int]) -> bool:
        """Whether an alert or control event was stored in ``queue``'s lane since it was read.

        A pass over the window fills many slots; an alert stored meanwhile takes the
        next one, not the next pass (one comparison, no query).
        """
        if queue.lane == BULK or queue.descending:
            return False
        if self.outbox.lane_last(queue.lane) <= empty[id(queue)]:
            return False
        del empty[id(queue)]
        return True

    def _batching_now(self) -> Batching | None:
        """The batching in force (None: off, or paused after a refused batch)."""
        batching = self._batch_source()
        if batching is None or self._clock() < self._batch_pause_until:
            return None
        return batching

    def _forward_batch(
        self,
        queue: LaneQueue,
        buffer: collections.deque[Row],
        batching: Batching,
        taken: set[int],
        generation: int,
        *,
        room: int,
    ) -> bool | None:
        """Send the next rows of ``buffer`` as one batch, no heavier than ``room``.

        Returns True when a batch went out, False when only skipped rows were taken
        (held topics, rows in flight), None when the link took nothing (stop).

        ``room`` is the bulk window's free room: a batch takes one unit per
        :data:`BATCH_WEIGHT_BYTES` of its payload and what is in flight cannot be
        overtaken, so on a slow link (a small window) batches are small. The rows are
        taken up to ``room`` x the weight x the compression of the previous batch, and
        when the batch still weighs more, its tail is put back.
        """
        rows: list[Row] = []
        size = 0
        most = min(batching.max_bytes, int(max(room, 1) * BATCH_WEIGHT_BYTES * self._batch_ratio))
        while buffer and len(rows) < batching.max_events:
            row = buffer[0]
            if (queue.revisits(row.seq) and row.seq in taken) or row.topic in self._holds:
                if rows:
                    break  # a batch is a run of the lane: send what precedes the gap
                buffer.popleft()
                queue.advance(row.seq)  # in flight already, or kept for its topic's probe
                continue
            if not batching.accepts(row.topic):
                if not rows:  # a type the consumers do not read batched goes alone
                    rows.append(buffer.popleft())
                break
            if size + len(row.payload) + 1 > most:
                if not rows:  # larger than a batch may be: it goes alone (else: no progress)
                    rows.append(buffer.popleft())
                break
            rows.append(buffer.popleft())
            size += len(row.payload) + 1
        if not rows:
            return False
        payload = encode_batch([r.payload for r in rows]) if len(rows) > 1 else b""
        weight = max(1, len(payload) // BATCH_WEIGHT_BYTES)
        if len(rows) > 1:
            self._batch_ratio = max(size / max(len(payload), 1) * 0.9, 1.0)
        while weight > room and len(rows) > 1:  # compressed worse than the last: shrink
            keep = max(1, min(len(rows) - 1, len(rows) * max(room, 1) // weight))
            buffer.extendleft(reversed(rows[keep:]))
            rows = rows[:keep]
            payload = encode_batch([r.payload for r in rows]) if keep > 1 else b""
            weight = max(1, len(payload) // BATCH_WEIGHT_BYTES)
        if len(rows) == 1:
            return self._send(rows[0], generation) and self._advanced(queue, rows, taken)
        limit = self.link.max_packet
        if limit is not None and publish_size(batching.topic, payload) > limit:
            self._pause_batching("the batch is larger than the broker's Maximum Packet Size")
            buffer.extendleft(reversed(rows))
            return False
        at = self._clock()
        sent = self.link.publish(batching.topic, payload, qos=1)
        if sent is None or sent[0] != generation:
            return None
        # The bulk window counts single events of a few hundred bytes: a batch takes the
        # room of as many as its bytes would, so an alert does not queue behind a window
        # full of batches (what is in flight cannot be overtaken).
        self._inflight[sent[1]] = (rows[0].seq, batching.topic, BULK, at)
        self._batches[sent[1]] = ([r.seq for r in rows], weight)
        self._bulk_inflight += weight
        self.published += len(rows)
        self.batches += 1
        log.debug(
            "batch of %d events (%d -> %d bytes)",
            len(rows),
            batch_json_size([r.payload for r in rows]),
            len(payload),
        )
        return self._advanced(queue, rows, taken)

    @staticmethod
    def _advanced(queue: LaneQueue, rows: list[Row], taken: set[int]) -> bool:
        for row in rows:
            queue.advance(row.seq)
            taken.add(row.seq)
        return True

    def _pause_batching(self, why: str) -> None:
        self._batch_pause_until = self._clock() + self.retry_max_s
        self._ratelog.log(
            "batch", logging.WARNING, "compact batches paused for %.0f s: %s", self.retry_max_s, why
        )

    def _batch_outcome(self, seqs: list[int], code: int) -> None:
        """A batch's PUBACK: all its rows delivered, or all sent again one by one."""
        if code == 0:
            self._pending_acks.extend(seqs)
            return
        self.refusals.by_reason[classify(code, self.no_subscribers).name] += 1
        self._pause_batching(f"the broker refused a batch with {code}; its events go one by one")
        first = min(seqs)
        for lane_queue in self._scheduler.queues:
            if lane_queue.lane == BULK:
                lane_queue.rewind(first)

    def _taken(self) -> set[int]:
        """Seqs in flight or answered and not yet committed: never to be sent again now."""
        taken = {entry[0] for entry in self._inflight.values()}
        for seqs, _weight in self._batches.values():
            taken.update(seqs)
        taken.update(self._pending_acks)
        for seqs in self._pending_discards.values():
            taken.update(seqs)
        return taken

    def _probe(self, generation: int) -> bool:
        """Send the oldest kept row of each held topic whose back-off has passed."""
        now = self._clock()
        busy = False
        for topic, hold in list(self._holds.items()):
            if hold.probe is not None or now < hold.until or self._room() <= 0:
                continue
            row = self._first_kept(topic, hold)
            if row is None:  # the bounds dropped what was kept: nothing to probe
                self._release(topic, hold, resend=False)
                continue
            if row.seq in self._taken():  # an earlier send is still unanswered
                continue
            if self._too_large(row):
                busy = True
                continue
            if self._send(row, generation):
                hold.probe = row.seq
                hold.first_seq = row.seq
                busy = True
        return busy

    def _first_kept(self, topic: str, hold: Hold) -> Row | None:
        """The oldest row of a held topic that its lane's cursor went past (kept for it)."""
        found: list[Row] = []
        for lane_queue in self._scheduler.queues:
            passed = lane_queue.passed_range() if lane_queue.lane == hold.lane else None
            if passed is None or passed[1] < hold.first_seq:
                continue
            low = max(passed[0], hold.first_seq)
            row = self.outbox.first_on_topic(topic, low - 1, passed[1])
            if row is not None:
                found.append(row)
        return min(found, key=lambda r: r.seq) if found else None

    def _collect_acks(self) -> bool:
        got = False
        while True:
            try:
                generation, mid, code, acked_at = self._acks.get_nowait()
            except queue.Empty:
                break
            got = True
            if generation != self._generation:
                continue  # a PUBACK of an earlier connection: those rows are sent again
            sent = self._inflight.pop(mid, None)
            if sent is not None:
                seq, topic, lane, sent_at = sent
                batch = self._batches.pop(mid, None)
                units = 1 if batch is None else batch[1]  # what the link carried
                if lane == BULK:
                    self._bulk_inflight -= units
                self.bulk_window.on_ack(
                    acked_at - sent_at, acked_at, units=units, inflight=self._bulk_inflight
                )
                if batch is not None:
                    self._batch_outcome(batch[0], code)
                else:
                    self._outcome(seq, topic, code, lane)
        return got

    def _outcome(self, seq: int, topic: str, code: int, lane: int) -> None:
        hold = self._holds.get(topic)
        reason = _SUCCESS if code == 0 else classify(code, self.no_subscribers)
        if reason.verdict == "delivered":
            self._pending_acks.append(seq)
            if hold is not None:  # the probe (or a row sent before the hold) got through
                self._release(topic, hold, resend=True)
            return
        self._outcome_refused(seq, topic, reason, lane)

    def _outcome_refused(self, seq: int, topic: str, reason: Reason, lane: int) -> None:
        hold = self._holds.get(topic)
        self.refusals.by_reason[reason.name] += 1
        if reason.verdict == "discard":
            assert reason.counter is not None
            self._pending_discards.setdefault(reason.counter, []).append(seq)
            self._log_discard(
                reason.counter,
                "broker refused event seq %d on %s with %d (%s): removed, counted in %s",
                seq,
                topic,
                reason.code,
                reason.name,
                reason.counter,
            )
            if hold is not None and hold.probe == seq:
                hold.probe = None
            return
        self._hold(topic, seq, reason, lane)

    def _log_discard(self, counter: str, msg: str, *args: object) -> None:
        """Log the first discard of a kind, then at most one line a minute with a count."""
        level = logging.INFO if counter == "accepted_unsubscribed" else logging.ERROR
        self._ratelog.log(f"discard:{counter}", level, msg, *args)

    def _hold(self, topic: str, seq: int, reason: Reason, lane: int) -> None:
        now = self._clock()
        hold = self._holds.get(topic)
        if hold is None:
            if len(self._holds) >= MAX_HELD_TOPICS:
                oldest = next(iter(self._holds))
                self._release(oldest, self._holds[oldest], resend=True)
            backoff = Backoff(self.retry_min_s, self.retry_max_s)
            hold = Hold(reason, lane, seq, backoff, now + backoff.next_delay())
            self._holds[topic] = hold
            self.refusals.held_topics = len(self._holds)
            self._ratelog.log(  # many topics refused at once: one line a minute per reason
                f"hold:{reason.code}",
                logging.WARNING if reason.code == 16 else logging.ERROR,
                "broker refused event seq %d on %s: %d (%s); its events are kept and "
                "retried from %.1f s on",
                seq,
                topic,
                reason.code,
                reason.name,
                hold.until - now,
            )
        hold.refusals += 1
        hold.reason = reason
        hold.first_seq = min(hold.first_seq, seq)
        if hold.probe == seq:  # the probe was refused again: wait longer
            hold.probe = None
            hold.until = now + hold.backoff.next_delay()
            log.debug("probe on %s refused again; next in %.1f s", topic, hold.until - now)

    def _release(self, topic: str, hold: Hold, *, resend: bool) -> None:
        del self._holds[topic]
        self.refusals.held_topics = len(self._holds)
        self._ratelog.log(
            "release",
            logging.INFO,
            "broker accepts events on %s again (%d refusal(s) while held)",
            topic,
            hold.refusals,
        )
        if resend:  # send the kept rows again, in their lane's order
            for lane_queue in self._scheduler.queues:
                if lane_queue.lane == hold.lane:
                    lane_queue.rewind(hold.first_seq)

    def _flush(self, force: bool = False) -> None:
        if not self._pending_acks and not self._pending_discards:
            return
        if not force and self._urgency is not None and self._urgency.active():
            return  # a delete holds the outbox for ms: after the alert's passage
        now = self._clock()
        due = now - self._last_ack_flush >= _ACK_EVERY_S or len(self._pending_acks) >= _ACK_BATCH
        if force or due:
            self._last_ack_flush = now
            if self._pending_acks:  # taken off the list only once committed
                self.acked += self.outbox.ack(self._pending_acks)
                self._pending_acks = []
            for counter in list(self._pending_discards):
                self.outbox.discard(self._pending_discards[counter], counter)
                del self._pending_discards[counter]
