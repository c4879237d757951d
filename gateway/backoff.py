"""The one back-off of the project: exponential, capped, jittered, reset after a success.

Every retry loop uses it: MQTT reconnects, the outbox's re-send of refused events,
camera reconnects, serial port re-opens and the ingest's database retries. The
ceiling of attempt ``n`` (0-based) is ``min_s * 2**n`` capped at ``max_s``; the delay
is drawn uniformly in ``[ceiling * (1 - jitter), ceiling]`` so that many units (or
workers) that lost the same server do not come back in lock-step. A server's hint
(``Retry-After``) is honoured when it asks for longer, never beyond ``max_s``.
"""

from __future__ import annotations

import random


class Backoff:
    """Delays that double from ``min_s`` up to ``max_s``; ``reset()`` after a success.

    ``jitter`` is the fraction of the ceiling that may be taken off (0: no jitter,
    0.5: between half the ceiling and the ceiling).
    """

    def __init__(
        self,
        min_s: float,
        max_s: float,
        *,
        jitter: float = 0.5,
        rng: random.Random | None = None,
    ) -> None:
        if min_s <= 0:
            raise ValueError(f"min_s must be > 0, not {min_s}")
        if not 0.0 <= jitter <= 1.0:
            raise ValueError(f"jitter must be within [0, 1], not {jitter}")
        self.min_s = min_s
        self.max_s = max(max_s, min_s)
        self.jitter = jitter
        self.attempt = 0
        self._rng = rng or random.Random()

    def ceiling(self) -> float:
        """The longest delay the next attempt can draw."""
        return min(self.max_s, self.min_s * (2.0 ** min(self.attempt, 60)))

    def next_delay(self, at_least_s: float | None = None) -> float:
        """Return the delay before the next attempt and advance.

        ``at_least_s`` (a server's ``Retry-After``) wins when it is longer, capped at
        ``max_s`` so that a bogus hint cannot stall the caller for hours.
        """
        ceiling = self.ceiling()
        self.attempt += 1
        delay = ceiling * (1.0 - self.jitter * self._rng.random())
        if at_least_s is not None:
            delay = min(max(delay, at_least_s), self.max_s)
        return delay

    def reset(self) -> None:
        """Start again from the shortest delay."""
        self.attempt = 0
