"""The forwarder: outbox rows -> MQTT QoS 1, rows deleted when their PUBACK arrives.

One thread. It publishes rows in ``seq`` order, keeping at most the link's window in
flight, maps each PUBACK (``generation``, ``mid``) back to its ``seq`` and deletes the
acknowledged rows in batches. A new connection (new generation) restarts from the
oldest stored row, so whatever was in flight when the link dropped is sent again
(same ``id``, same ``seq``).
"""

from __future__ import annotations

import logging
import queue
import threading
import time

from gateway.errors import TransportError
from gateway.transport.mqtt import MqttLink
from gateway.transport.outbox import Outbox

log = logging.getLogger(__name__)

_ACK_BATCH = 1000
_ACK_EVERY_S = 0.05
_IDLE_WAIT_S = 0.25


class Forwarder:
    """Moves events from the outbox to the broker; ``wake()`` after adding events."""

    def __init__(self, outbox: Outbox, link: MqttLink) -> None:
        self.outbox = outbox
        self.link = link
        self.published = 0
        self.acked = 0
        self._acks: queue.SimpleQueue[tuple[int, int]] = queue.SimpleQueue()
        self._inflight: dict[int, int] = {}  # mid -> seq, for the current generation only
        self._generation = 0
        self._cursor = 0
        self._pending_acks: list[int] = []
        self._last_ack_flush = time.monotonic()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def inflight(self) -> int:
        """Events published and not yet acknowledged."""
        return len(self._inflight)

    @property
    def alive(self) -> bool:
        """Whether the forwarding thread runs (for the systemd watchdog)."""
        return self._thread is not None and self._thread.is_alive()

    def on_published(self, generation: int, mid: int) -> None:
        """Handle a PUBACK (called on the network thread: only queue it)."""
        self._acks.put((generation, mid))
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
        """Stop, after waiting up to ``drain_s`` for the outbox to empty; commit acks."""
        deadline = time.monotonic() + drain_s
        while drain_s > 0 and self.link.connected and time.monotonic() < deadline:
            if self.outbox.depth == 0:
                break
            time.sleep(0.02)
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(10.0)
            self._thread = None
        self._flush_acks(force=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                busy = self._step()
            except TransportError as exc:
                log.error("forwarder: %s", exc)
                busy = False
                self._stop.wait(1.0)
            if not busy:
                self._wake.wait(_IDLE_WAIT_S if not self._pending_acks else _ACK_EVERY_S)
                self._wake.clear()

    def _step(self) -> bool:
        """Do one round of work; return whether there may be more to do at once."""
        busy = self._collect_acks()
        generation = self.link.generation
        if generation != self._generation:
            self._generation = generation
            self._inflight.clear()
            self._cursor = 0
        if self.link.connected:
            room = self.link.window - len(self._inflight)
            if room > 0:
                rows = self.outbox.fetch(self._cursor, min(room, 1000))
                for row in rows:
                    sent = self.link.publish(row.topic, row.payload, qos=1)
                    if sent is None or sent[0] != generation:
                        break
                    self._inflight[sent[1]] = row.seq
                    self._cursor = row.seq
                    self.published += 1
                    busy = True
        self._flush_acks()
        return busy

    def _collect_acks(self) -> bool:
        got = False
        while True:
            try:
                generation, mid = self._acks.get_nowait()
            except queue.Empty:
                break
            got = True
            if generation != self._generation:
                continue  # a PUBACK of an earlier connection: those rows are sent again
            seq = self._inflight.pop(mid, None)
            if seq is not None:
                self._pending_acks.append(seq)
        return got

    def _flush_acks(self, force: bool = False) -> None:
        if not self._pending_acks:
            return
        now = time.monotonic()
        due = now - self._last_ack_flush >= _ACK_EVERY_S or len(self._pending_acks) >= _ACK_BATCH
        if force or due:
            seqs, self._pending_acks = self._pending_acks, []
            self._last_ack_flush = now
            self.acked += self.outbox.ack(seqs)
