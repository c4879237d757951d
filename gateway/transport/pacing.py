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
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field


@dataclass(slots=True)
class BulkWindow:
    """The in-flight limit of the bulk lane, adapted to the round-trip times."""

    maximum: int
    minimum: int = 32
    ratio: float = 2.0
    slack_s: float = 0.002
    window_s: float = 10.0
    size: float = field(default=0.0)
    srtt_s: float = 0.0
    _min_now: float = math.inf
    _min_prev: float = math.inf
    _period_end: float = 0.0
    _last_cut: float = -math.inf

    def __post_init__(self) -> None:
        self.minimum = max(1, min(self.minimum, self.maximum))
        if self.size <= 0:
            self.size = float(self.minimum)

    @property
    def limit(self) -> int:
        """Bulk events that may be in flight now."""
        return max(self.minimum, min(self.maximum, int(self.size)))

    @property
    def min_rtt_s(self) -> float:
        """The smallest round trip of the last ``window_s`` (the link without queues)."""
        return min(self._min_now, self._min_prev)

    def on_ack(self, rtt_s: float, now: float) -> None:
        """Account for one PUBACK that took ``rtt_s`` (``now``: a monotonic time)."""
        if rtt_s < 0:
            return
        if now >= self._period_end:  # a windowed minimum: two periods, bounded state
            self._min_prev, self._min_now = self._min_now, math.inf
            self._period_end = now + self.window_s / 2
        self._min_now = min(self._min_now, rtt_s)
        self.srtt_s = rtt_s if self.srtt_s == 0 else 0.875 * self.srtt_s + 0.125 * rtt_s
        base = self.min_rtt_s
        if rtt_s > max(base * self.ratio, base + self.slack_s):
            if now - self._last_cut >= max(self.srtt_s, base):
                self._last_cut = now
                self.size = max(float(self.minimum), self.size * 0.75)
            return
        self.size = min(float(self.maximum), self.size + 1.0 / max(self.size, 1.0))
