"""The degradation level: how far down its documented order the unit must go.

Levels, in order (:data:`LEVELS`):

0. ``full``: every event as produced;
1. ``aggregates``: raw ``line_crossing`` events give way to the interval aggregates
   that count them;
2. ``coarse_sensors``: besides, sensor readings are summarized over a longer interval.

Alerts, actuations, health and commands are never degraded. Each period with a limit
(UTC day, UTC month) projects its usage to its end: ``used + rate x time left``, the
rate being the bytes of the last ``window_s``. A projection beyond the limit (or a
limit reached) steps one level down, at most once per ``window_s`` (the rate must show
the effect of the step first), straight to the last level once a limit is reached. A
projection below ``resume_ratio`` of every limit steps one level back up after
``resume_s`` at the level. At the last level the unit still sends what it must (nothing
is dropped: the outbox keeps it) and reports ``over_budget``.
"""

from __future__ import annotations

import calendar
import collections
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Final, Literal

from gateway.budget.usage import Usage
from gateway.config.budget import BudgetConfig

Level = Literal["full", "aggregates", "coarse_sensors"]
LEVELS: Final[tuple[Level, ...]] = ("full", "aggregates", "coarse_sensors")
_MAX_SAMPLES: Final = 4096


@dataclass(frozen=True, slots=True)
class Projection:
    """One period's usage, limit and projection to its end."""

    used: int
    limit: int | None
    projected: int

    @property
    def ratio(self) -> float:
        """Projected share of the limit (0 without a limit)."""
        return self.projected / self.limit if self.limit else 0.0

    @property
    def reached(self) -> bool:
        """Whether the limit is used up."""
        return self.limit is not None and self.used >= self.limit


def _seconds_left(now_s: float) -> tuple[float, float]:
    """Seconds to the end of the UTC day and of the UTC month."""
    when = datetime.fromtimestamp(now_s, UTC)
    day_left = 86_400.0 - (
        when.hour * 3600 + when.minute * 60 + when.second + when.microsecond / 1e6
    )
    days_in_month = calendar.monthrange(when.year, when.month)[1]
    month_left = day_left + (days_in_month - when.day) * 86_400.0
    return day_left, month_left


class BudgetPolicy:
    """Decides the level from the measured usage; call :meth:`update` regularly."""

    def __init__(self, cfg: BudgetConfig) -> None:
        self.cfg = cfg
        self.index = 0
        self.changes = 0
        self.day = Projection(0, cfg.bytes_per_day, 0)
        self.month = Projection(0, cfg.bytes_per_month, 0)
        self._samples: collections.deque[tuple[float, int]] = collections.deque(maxlen=_MAX_SAMPLES)
        self._changed_at: float | None = None

    @property
    def level(self) -> Level:
        """The level in force."""
        return LEVELS[self.index]

    @property
    def over_budget(self) -> bool:
        """At the last level and still projected beyond a limit."""
        return self.index == len(LEVELS) - 1 and self._ratio() > 1.0

    def rate(self) -> float:
        """Bytes per second over the last ``window_s`` (0 until two samples)."""
        if len(self._samples) < 2:
            return 0.0
        (t0, b0), (t1, b1) = self._samples[0], self._samples[-1]
        return (b1 - b0) / (t1 - t0) if t1 > t0 else 0.0

    def update(self, usage: Usage, now_s: float, mono_s: float) -> Level:
        """Take the usage now (wall time for the periods, monotonic for the rate)."""
        samples = self._samples
        if samples and usage.month_bytes < samples[-1][1]:  # a new month began
            samples.clear()
        samples.append((mono_s, usage.month_bytes))
        while len(samples) > 2 and mono_s - samples[1][0] >= self.cfg.window_s:
            samples.popleft()
        rate = self.rate()
        day_left, month_left = _seconds_left(now_s)
        self.day = Projection(
            usage.day_bytes, self.cfg.bytes_per_day, int(usage.day_bytes + rate * day_left)
        )
        self.month = Projection(
            usage.month_bytes, self.cfg.bytes_per_month, int(usage.month_bytes + rate * month_left)
        )
        since = None if self._changed_at is None else mono_s - self._changed_at
        last = len(LEVELS) - 1
        if self.day.reached or self.month.reached:
            self._set(last, mono_s)
        elif self._ratio() > 1.0:
            if self.index < last and (since is None or since >= self.cfg.window_s):
                self._set(self.index + 1, mono_s)
        elif (
            self._ratio() < self.cfg.resume_ratio
            and self.index > 0
            and (since is None or since >= self.cfg.resume_s)
        ):
            self._set(self.index - 1, mono_s)
        return self.level

    def _ratio(self) -> float:
        return max(self.day.ratio, self.month.ratio)

    def _set(self, index: int, mono_s: float) -> None:
        if index != self.index:
            self.index = index
            self.changes += 1
            self._changed_at = mono_s
