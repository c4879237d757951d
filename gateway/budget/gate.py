"""The budget gate between the event sources and the outbox.

:meth:`BudgetGate.admit` sees every draft before it is stored and applies the level
of :class:`~gateway.budget.policy.BudgetPolicy`:

* ``aggregates`` and below: a ``line_crossing`` is held back instead of stored. The
  camera's next ``aggregate`` counts it (a camera's aggregate counts every crossing
  the camera reported before it), so the held crossings are let go when it passes
  and the aggregate says how many in ``crossings_withheld``; its counts stay complete.
  Held crossings that no aggregate will count (the unit stops, a camera's pipeline is
  restarted) are stored as they are (:meth:`release`, :meth:`flush`).
* ``coarse_sensors``: sensor readings go into :class:`~gateway.budget.coarse.SensorSummaries`.

Everything else (alerts first) passes untouched. State is bounded: at most
:data:`MAX_HELD` crossings per camera and :data:`MAX_CAMERAS` cameras are held
(beyond, crossings pass), and the sensor summaries' own bound.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from typing import Final

from gateway.budget.coarse import SensorSummaries
from gateway.budget.policy import LEVELS, BudgetPolicy
from gateway.budget.usage import WireUsage
from gateway.config.budget import BudgetConfig
from gateway.events.envelope import Draft
from gateway.health import BudgetHealth

log = logging.getLogger(__name__)

MAX_HELD: Final = 20_000
MAX_CAMERAS: Final = 64
_AGGREGATES: Final = LEVELS.index("aggregates")
_COARSE: Final = LEVELS.index("coarse_sensors")


class BudgetGate:
    """Applies the degradation level to drafts; thread-safe."""

    def __init__(
        self,
        cfg: BudgetConfig,
        usage: WireUsage,
        *,
        clock: Callable[[], float] = time.time,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.cfg = cfg
        self.usage = usage
        self.policy = BudgetPolicy(cfg)
        self.summaries = SensorSummaries(cfg.sensor_interval_s)
        self._clock = clock
        self._monotonic = monotonic
        self._held: dict[str, list[Draft]] = {}
        self._lock = threading.Lock()
        self.withheld = 0  # crossings an aggregate counted instead (since start)
        self.released = 0  # held crossings stored as they are after all
        # The level from the kept usage at once: a unit restarted with its limit used up
        # must not send its first second of events in full.
        self.policy.update(usage.usage, clock(), monotonic())

    @property
    def level(self) -> str:
        """The level in force."""
        return self.policy.level

    def admit(self, drafts: Sequence[Draft]) -> list[Draft]:
        """The drafts to store now, in order (held crossings and readings left out)."""
        with self._lock:
            index = self.policy.index
            out: list[Draft] = []
            for draft in drafts:
                if draft.type == "line_crossing" and index >= _AGGREGATES:
                    if self._hold(draft):
                        continue
                elif draft.type == "aggregate":
                    out.append(self._annotate(draft))
                    continue
                elif draft.type == "sensor_reading" and index >= _COARSE:
                    closed = self.summaries.add(draft)
                    if closed is not None:
                        out.extend(closed)
                        continue
                out.append(draft)
            return out

    def tick(self, link_total: int) -> list[Draft]:
        """Take the link's byte total, update the level; drafts to store now (summaries)."""
        usage = self.usage.observe(link_total)
        with self._lock:
            before = self.policy.index
            after = self.policy.update(usage, self._clock(), self._monotonic())
            if self.policy.index != before:
                self._log_change(before)
            out = self.summaries.due(self._clock())
            if LEVELS.index(after) < _COARSE <= before:
                out.extend(self.summaries.flush())
            return out

    def release(self, camera: str) -> list[Draft]:
        """The held crossings of ``camera`` that no aggregate will count (restarted)."""
        with self._lock:
            held = self._held.pop(camera, [])
            self.released += len(held)
            return held

    def flush(self) -> list[Draft]:
        """Everything held (the unit stops): crossings as they are, open summaries."""
        with self._lock:
            out = [draft for held in self._held.values() for draft in held]
            self.released += len(out)
            self._held.clear()
            out.extend(self.summaries.flush())
        self.usage.save()
        return out

    def health(self) -> BudgetHealth:
        """Level, usage, projections and what was degraded since start."""
        with self._lock:
            policy = self.policy
            usage = self.usage.usage
            return BudgetHealth(
                level=policy.level,
                level_index=policy.index,
                over_budget=policy.over_budget,
                changes=policy.changes,
                bytes_today=usage.day_bytes,
                bytes_month=usage.month_bytes,
                limit_day=policy.day.limit,
                limit_month=policy.month.limit,
                projected_day=policy.day.projected,
                projected_month=policy.month.projected,
                rate_bps=round(policy.rate() * 8, 1),
                crossings_withheld=self.withheld,
                crossings_held=sum(len(h) for h in self._held.values()),
                readings_summarized=self.summaries.readings,
                summaries=self.summaries.summaries,
            )

    def _log_change(self, before: int) -> None:
        policy = self.policy
        worse = policy.index > before
        log.log(
            logging.WARNING if worse else logging.INFO,
            "byte budget: %s -> %s (today %d of %s bytes, projected %d; month %d of %s, "
            "projected %d)",
            LEVELS[before],
            policy.level,
            policy.day.used,
            policy.day.limit or "no limit",
            policy.day.projected,
            policy.month.used,
            policy.month.limit or "no limit",
            policy.month.projected,
        )

    def _hold(self, draft: Draft) -> bool:
        camera = draft.data.get("camera")
        key = camera if isinstance(camera, str) else draft.source
        held = self._held.get(key)
        if held is None:
            if len(self._held) >= MAX_CAMERAS:
                return False
            held = self._held[key] = []
        if len(held) >= MAX_HELD:
            return False
        held.append(draft)
        return True

    def _annotate(self, draft: Draft) -> Draft:
        camera = draft.data.get("camera")
        key = camera if isinstance(camera, str) else draft.source
        held = self._held.pop(key, [])
        if not held and self.policy.index < _AGGREGATES:
            return draft
        self.withheld += len(held)
        data = dict(draft.data)
        data["crossings_withheld"] = len(held)
        return Draft(draft.type, draft.source, draft.timestamp, data)
