"""Exponential back-off with full jitter for reconnect loops."""

from __future__ import annotations

import random


class Backoff:
    """Delays that double from ``min_s`` up to ``max_s``, each drawn uniformly in [d/2, d].

    ``reset()`` after a success starts again from ``min_s``.
    """

    def __init__(self, min_s: float, max_s: float, rng: random.Random | None = None) -> None:
        self.min_s = min_s
        self.max_s = max(max_s, min_s)
        self.attempt = 0
        self._rng = rng or random.Random()

    def next_delay(self) -> float:
        """Return the delay before the next attempt and advance."""
        ceiling = min(self.max_s, self.min_s * (2 ** min(self.attempt, 30)))
        self.attempt += 1
        return self._rng.uniform(ceiling / 2, ceiling)

    def reset(self) -> None:
        """Start again from the shortest delay."""
        self.attempt = 0
