"""Small statistics for the flow measures: bounded samples and time-weighted values.

- :class:`Samples` keeps the values of one interval (spot speeds, headways) up to a cap;
  beyond it values are counted but not kept, so memory stays bounded however long the
  interval and however heavy the traffic.
- :class:`TimeWeighted` integrates a reading that holds until the next one (occupancy,
  queue length), so irregular frame rates weigh correctly; it also keeps the maximum.
- :func:`percentile` is linear interpolation between closest ranks (numpy's default,
  the same definition as Excel's ``PERCENTILE.INC``): the 85th percentile of one value
  is that value.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

# Samples kept per measure and interval (a lane carries at most ~2,000 vehicles an hour).
MAX_SAMPLES = 10_000


def percentile(values: list[float], q: float) -> float | None:
    """Return the ``q``-th percentile (0..100) of ``values`` by linear interpolation (or None)."""
    if not values:
        return None
    return float(np.percentile(np.asarray(values, dtype=np.float64), q))


@dataclass(slots=True)
class Samples:
    """Values of one interval, at most ``cap`` kept (``overflow`` counts the rest)."""

    cap: int = MAX_SAMPLES
    values: list[float] = field(default_factory=list)
    overflow: int = 0

    def add(self, value: float) -> None:
        """Keep ``value`` (or count it when full)."""
        if len(self.values) < self.cap:
            self.values.append(value)
        else:
            self.overflow += 1

    def mean(self) -> float | None:
        """Return the mean of the kept values, None when empty."""
        return sum(self.values) / len(self.values) if self.values else None

    def clear(self) -> None:
        """Start a new interval."""
        self.values = []
        self.overflow = 0


@dataclass(slots=True)
class TimeWeighted:
    """A reading that holds until the next one: its time integral and maximum."""

    integral: float = 0.0
    maximum: float | None = None
    _value: float | None = None
    _ts: float | None = None

    def observe(self, value: float, timestamp: float) -> None:
        """Record ``value`` from ``timestamp`` on (a reading older than the last is ignored)."""
        if self._ts is not None and timestamp < self._ts:
            return
        self.advance(timestamp)
        self._value = value
        self.maximum = value if self.maximum is None else max(self.maximum, value)

    def advance(self, timestamp: float) -> None:
        """Integrate the current value up to ``timestamp``."""
        if self._ts is not None and self._value is not None and timestamp > self._ts:
            self.integral += self._value * (timestamp - self._ts)
        if self._ts is None or timestamp > self._ts:
            self._ts = timestamp

    def close(self, start: float, end: float) -> tuple[float | None, float | None]:
        """Return ``(mean over [start, end], max)`` and restart (the current value carries on)."""
        self.advance(end)
        span = end - start
        mean = self.integral / span if span > 0 and self.maximum is not None else None
        maximum = self.maximum
        self.integral = 0.0
        self.maximum = self._value
        return mean, maximum

    def reset(self) -> None:
        """Forget everything (the clock went back)."""
        self.integral, self.maximum, self._value, self._ts = 0.0, None, None, None
