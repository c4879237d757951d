"""MQTT acknowledgements, released in receive order and only once a message is done.

A message is *done* when its points are written to the database or committed to
the spool, or when its dead-letter copy has been acknowledged by the broker. The
broker redelivers anything not acknowledged (persistent session), so a worker
that dies loses nothing. MQTT wants PUBACKs in receive order, so a done message
waits for the ones before it.

Each entry remembers the connection it arrived on: after a reconnect the broker
redelivers unacknowledged messages with their old packet ids, so entries of an
earlier connection are dropped, never acknowledged (the redelivered copy is
processed and acknowledged instead; its point overwrites the first copy).

The deque is bounded by the broker: it sends at most ``receive_maximum``
unacknowledged QoS 1 messages. QoS 0 messages are not flow controlled; they are
acknowledged by nobody and count against ``max_pending`` (over it they are refused).
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable
from typing import Protocol


class Published(Protocol):
    """What paho's ``MQTTMessageInfo`` offers: whether the broker has the message."""

    def is_published(self) -> bool:
        """Return whether the publish is complete."""
        ...


class Pending:
    """One received message on its way to the database."""

    __slots__ = ("done", "generation", "mid", "published", "qos")

    def __init__(self, mid: int, qos: int, generation: int) -> None:
        self.mid = mid
        self.qos = qos
        self.generation = generation
        self.done = False
        self.published: Published | None = None

    def finish(self, published: Published | None = None) -> None:
        """Mark done: now, or once ``published`` (a dead-letter copy) is acknowledged."""
        self.published = published
        self.done = True

    @property
    def complete(self) -> bool:
        """Whether the message may be acknowledged."""
        return self.done and (self.published is None or self.published.is_published())


class AckTracker:
    """Received messages in order; acknowledges the done prefix with ``ack(mid, qos)``."""

    def __init__(self, ack: Callable[[int, int], object], max_pending: int) -> None:
        self._ack = ack
        self._max_pending = max_pending
        self._lock = threading.Lock()
        self._entries: deque[Pending] = deque()
        self.generation = 0

    def new_connection(self) -> None:
        """Start a new connection: entries received before it will never be acknowledged."""
        with self._lock:
            self.generation += 1

    def track(self, mid: int, qos: int) -> Pending | None:
        """Register a received message; ``None`` when it must be refused (over the bound)."""
        with self._lock:
            if qos == 0 and len(self._entries) >= self._max_pending:
                return None
            entry = Pending(mid, qos, self.generation)
            self._entries.append(entry)
            return entry

    def release(self) -> int:
        """Acknowledge every complete message at the front; return how many were acked."""
        acked = 0
        with self._lock:
            entries = self._entries
            while entries:
                head = entries[0]
                stale = head.generation != self.generation
                if not stale and not head.complete:
                    break
                entries.popleft()
                if not stale and head.qos > 0:
                    self._ack(head.mid, head.qos)
                    acked += 1
        return acked

    def __len__(self) -> int:
        with self._lock:
            return len(self._entries)
