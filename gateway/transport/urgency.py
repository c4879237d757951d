"""Alerts in passage: the drain's own threads step aside for them, within a bound.

An alert goes from the thread that raises it (its outbox transaction) to the forwarder
(which hands it to the MQTT client) to the network thread (which writes it). While a
backlog drains, those same two threads are busy with the bulk lane: the forwarder
publishes, the network thread reads a window of PUBACKs, and all of it is Python under
one interpreter lock. Each SQLite call of the alert's transaction and each hand-over
between threads releases the lock, and a thread that gives it up for a moment to a
busy one gets it back only when that one blocks or after the switch interval (5 ms):
behind a drain an alert took two to three times its empty-queue time, and that time
was spent waiting for the lock, not for the network.

:class:`Urgency` counts the alerts between their store and their hand-over to the
client. While one is in passage the drain's bulk work (the forwarder's bulk publishes
and deletes of acknowledged rows, the network thread's reading of PUBACKs) waits in
short sleeps, which release the lock, until the alert is handed over (or written):
the alert's threads get the interpreter at once.

Bounded two ways, so that no flood of alerts starves the backlog: one passage makes
a drain thread wait at most ``max_wait_s`` (5 ms), however long the alert takes; and
each of the two waiting threads spends at most ``share`` (10 %) of any second waiting
(:meth:`step_aside` starts a wait only with budget left in the second).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

MAX_WAIT_S = 0.005  # one passage holds the drain at most this long
SHARE = 0.1  # of any second, at most this much is spent waiting
STEP_S = 0.00005  # one sleep of a waiting thread


class Urgency:
    """Alerts between their store and their hand-over to the MQTT client (thread-safe)."""

    def __init__(
        self,
        *,
        max_wait_s: float = MAX_WAIT_S,
        share: float = SHARE,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.max_wait_s = max_wait_s
        self.share = share
        self._clock = clock
        self._sleep = sleep
        self._lock = threading.Lock()
        self._pending = 0
        self._until = float("-inf")  # the current passage's wait ends here at the latest
        self._second = float("-inf")  # start of the second whose waits are counted
        self._spent = 0.0  # seconds waited in that second (all threads)
        self.passages = 0  # alerts announced
        self.waited_s = 0.0  # seconds the drain waited for them, in all

    @property
    def pending(self) -> int:
        """Alerts announced and not yet handed over."""
        return self._pending

    def begin(self, count: int) -> None:
        """``count`` alerts are about to be stored (the raising thread, before the store)."""
        if count <= 0:
            return
        with self._lock:
            self._pending += count
            self._until = self._clock() + self.max_wait_s
            self.passages += count

    def handed_over(self, count: int = 1) -> None:
        """``count`` alerts were handed to the MQTT client (or will not be sent now)."""
        with self._lock:
            self._pending = max(self._pending - count, 0)

    def need_drain(self) -> None:
        """The alert needs the drain to go on (no room for it in flight): stop waiting.

        The wait of the current passage ends; a later alert starts a new one.
        """
        with self._lock:
            self._until = float("-inf")

    def active(self) -> bool:
        """Whether an alert is in passage and the drain should step aside now."""
        return self._pending > 0 and self._clock() < self._until

    def step_aside(self, done: Callable[[], bool]) -> None:
        """Wait (releasing the interpreter) while an alert is in passage and not ``done()``.

        Called by the drain's threads before a piece of bulk work; returns at once when
        no alert is in passage. ``done``: the caller's own sign that it may go on (the
        alert reached it).
        """
        if not self.active():
            return
        start = self._clock()
        with self._lock:
            if start - self._second >= 1.0:
                self._second, self._spent = start, 0.0
            allowed = self.share - self._spent
        waited = 0.0
        while waited < allowed and self.active() and not done():
            self._sleep(STEP_S)
            waited = self._clock() - start
        with self._lock:
            self._spent += waited
            self.waited_s += waited
