"""How many bulk events may be in flight: as many as the link carries, not more.

An alert published while a backlog drains overtakes every event still in the outbox
(:mod:`gateway.transport.lanes`), but not the ones already sent: those are ahead of it
in the socket buffers, on the radio link and in the broker's input. With a fixed
window of 100 or 1,000 events that is a queue of its own (on loopback at load 4:
57 ms with 1,000 in flight against 1 ms on an idle link; on a cellular uplink it is
seconds). So the bulk lane's window follows the link, the way delay-based congestion
control does it (TCP Vegas): every PUBACK gives a round-trip time; the smallest one of
the last ``window_s`` is the link's own; while the round trips stay within ``ratio`` x
that (plus ``slack_s``) the window grows by one per round trip, and when they grow
beyond, events are queueing somewhere and the window shrinks by a quarter, at most
once per round trip. The alert and control lanes are not limited by it (they use the
whole ``[outbox] max_inflight``).

The window starts at ``least`` and doubles per round trip until the round trips first
grow (TCP's slow start), then follows them as above. Its floor is what the link delivers
(every lane) in ``floor_s`` (10 ms; ``least`` until a rate is measured), between
``least`` (2) and ``minimum`` (32) events: on loopback 32 (fewer events per PUBACK
cost the CPU more than they save), on a 2 Mbit/s uplink about 7, on 256 kbit/s 2, so
the queue ahead of an alert stays at about one round trip there too. The delivery rate
is the largest of the last ``window_s`` (measured over ``rate_period_s``). A window
that never empties also hides the link's own round trip (every PUBACK then waits
behind the window, and the window would creep up): on a link slower than that floor's
32 events per 10 ms, every ``window_s / 2`` the window is 1 until one event has gone and
come back alone (a clean round trip), as BBR's ProbeRTT does. Batches count as many
events as their bytes would (:data:`~gateway.transport.forwarder.BATCH_WEIGHT_BYTES`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

_PROBE_DRAIN = 1  # waiting for the bulk events in flight to be answered
_PROBE_ALONE = 2  # one event in flight alone: its round trip is the link's own


@dataclass(slots=True)
class BulkWindow:
    """The in-flight limit of the bulk lane, adapted to the round-trip times."""

    maximum: int
    minimum: int = 32
    least: int = 2
    floor_s: float = 0.010
    ratio: float = 2.0
    slack_s: float = 0.002
    window_s: float = 10.0
    rate_period_s: float = 0.1
    size: float = field(default=0.0)
    srtt_s: float = 0.0
    _min_now: float = math.inf
    _min_prev: float = math.inf
    _rate_now: float = 0.0
    _rate_prev: float = 0.0
    _rate_units: int = 0
    _rate_start: float = -math.inf
    _period_end: float = 0.0
    _last_cut: float = -math.inf
    _probe: int = 0
    _starting: bool = True  # until the first cut: the window doubles per round trip

    def __post_init__(self) -> None:
        self.minimum = max(1, min(self.minimum, self.maximum))
        self.least = max(1, min(self.least, self.minimum))
        if self.size <= 0:
            self.size = float(self.least)

    @property
    def rate(self) -> float:
        """Events (batch weights) the link delivered per second, the most recently."""
        return max(self._rate_now, self._rate_prev)

    @property
    def floor(self) -> int:
        """The smallest window: what the link delivers in ``floor_s`` (``least`` unknown)."""
        return max(self.least, min(self.minimum, math.ceil(self.rate * self.floor_s)))

    @property
    def limit(self) -> int:
        """Bulk events that may be in flight now."""
        if self._probe:
            return 1
        return max(self.floor, min(self.maximum, int(self.size)))

    @property
    def min_rtt_s(self) -> float:
        """The smallest round trip of the last ``window_s`` (the link without queues)."""
        return min(self._min_now, self._min_prev)

    def on_ack(self, rtt_s: float, now: float, *, units: int = 1, inflight: int = -1) -> None:
        """Account for one PUBACK that took ``rtt_s`` (``now``: a monotonic time).

        ``units``: the events it answered (a batch's weight), of any lane: the link's
        rate; ``inflight``: bulk events still in flight after it (-1: unknown).
        """
        if rtt_s < 0:
            return
        self._count(units, now)
        if now >= self._period_end:  # windowed minimum and maximum: two periods each
            self._min_prev, self._min_now = self._min_now, math.inf
            self._rate_prev, self._rate_now = self._rate_now, 0.0
            self._period_end = now + self.window_s / 2
            # a slow link (floor below minimum) only: on a fast one the CPU's jitter
            # gives clean round trips and a drain every 5 s costs throughput
            slow = 0 < self.rate * self.floor_s < self.minimum
            self._probe = _PROBE_DRAIN if inflight >= 0 and slow else 0
        elif self._probe == _PROBE_ALONE:
            self._probe = 0  # sent alone: this round trip is clean (kept below)
        elif self._probe == _PROBE_DRAIN and inflight == 0:
            self._probe = _PROBE_ALONE
        self._min_now = min(self._min_now, rtt_s)
        self.srtt_s = rtt_s if self.srtt_s == 0 else 0.875 * self.srtt_s + 0.125 * rtt_s
        base = self.min_rtt_s
        if rtt_s > max(base * self.ratio, base + self.slack_s):
            if now - self._last_cut >= max(self.srtt_s, base):
                self._last_cut = now
                self._starting = False
                self.size = max(float(self.floor), self.size * 0.75)
            return
        step = 1.0 if self._starting else 1.0 / max(self.size, 1.0)  # doubling per round trip
        self.size = min(float(self.maximum), self.size + step)

    def _count(self, units: int, now: float) -> None:
        """Measure the delivery rate over periods of ``rate_period_s``."""
        if self._rate_start == -math.inf:
            self._rate_start = now  # units delivered from now on
            return
        self._rate_units += units
        elapsed = now - self._rate_start
        if elapsed >= self.rate_period_s:
            self._rate_now = max(self._rate_now, self._rate_units / elapsed)
            self._rate_units = 0
            self._rate_start = now
