"""The budget gate between the event sources and the outbox.

Each of :meth:`BudgetGate.admit`, :meth:`~BudgetGate.tick`, :meth:`~BudgetGate.release`,
:meth:`~BudgetGate.flush` and :meth:`~BudgetGate.recover` is a step: a context manager
giving a :class:`Step` (the drafts to store now and the changes of the held state,
:mod:`gateway.budget.held`, to write in the same transaction). The caller stores both
inside the ``with``; when that raises, the gate undoes the step (what it held stays
held, as it was), so the gate's memory and its rows always agree with what is stored.

:meth:`BudgetGate.admit` sees every draft before it is stored and applies the level
of :class:`~gateway.budget.policy.BudgetPolicy`:

* ``aggregates`` and below: a ``line_crossing`` is held back instead of stored. The
  camera's next ``aggregate`` counts it (a camera's aggregate counts every crossing
  the camera reported before it), so the held crossings are let go when it passes
  and the aggregate says how many in ``crossings_withheld``; its counts stay complete.
  Held crossings that no aggregate will count (the unit stops, a camera's pipeline is
  restarted, the run before ended without stopping, the aggregate that counted them
  could not be stored) are stored as they are.
* ``coarse_sensors``: sensor readings go into :class:`~gateway.budget.coarse.SensorSummaries`.

Everything else (alerts first) passes untouched. State is bounded: at most
:data:`MAX_HELD` crossings per camera, :data:`MAX_CAMERAS` cameras and ``max_bytes`` of
held rows (beyond, crossings pass), and the sensor summaries' own bound.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import Final

from gateway.budget import held as rows
from gateway.budget.coarse import SensorSummaries
from gateway.budget.held import Changes, HeldEvent, Loaded
from gateway.budget.policy import LEVELS, BudgetPolicy
from gateway.budget.usage import WireUsage
from gateway.config.budget import BudgetConfig
from gateway.events.envelope import Draft
from gateway.health import BudgetHealth

log = logging.getLogger(__name__)

MAX_HELD: Final = 20_000
MAX_CAMERAS: Final = 64
MAX_HELD_BYTES: Final = 16 * 1024 * 1024
"""Row bytes of held events at most, by default (a few hundred bytes per crossing)."""
_AGGREGATES: Final = LEVELS.index("aggregates")
_NOTHING: Final = Changes()  # (never changed: only steps of level full, as they are, get it)
_COARSE: Final = LEVELS.index("coarse_sensors")


@dataclass(frozen=True, slots=True)
class Step:
    """What one step stores now, and the held-state changes to write with it."""

    drafts: list[Draft]
    changes: Changes

    @property
    def write(self) -> rows.Write | None:
        """The writes for the transaction that stores :attr:`drafts` (None: nothing)."""
        return self.changes.apply if self.changes else None


@dataclass(slots=True)
class _Undo:
    """What a step changed in the gate's memory, to put back when it is not stored."""

    cameras: dict[str, tuple[list[HeldEvent] | None, int]] = field(default_factory=dict)
    orphans: list[HeldEvent] = field(default_factory=list)
    counters: tuple[int, int, int, int] = (0, 0, 0, 0)
    aggregated: list[str] = field(default_factory=list)  # cameras whose aggregate it stores


class BudgetGate:
    """Applies the degradation level to drafts; thread-safe.

    ``held``: what :func:`gateway.budget.held.load` read at start (stored by the first
    step); ``durable``: the steps carry their rows' changes (False: the rows could not be
    set up, the gate holds in memory only); ``max_bytes``: the bound on held rows.
    """

    def __init__(
        self,
        cfg: BudgetConfig,
        usage: WireUsage,
        *,
        held: Loaded | None = None,
        durable: bool = False,
        max_bytes: int = MAX_HELD_BYTES,
        clock: Callable[[], float] = time.time,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.cfg = cfg
        self.usage = usage
        self.policy = BudgetPolicy(cfg)
        self.summaries = SensorSummaries(cfg.sensor_interval_s)
        self.max_bytes = max_bytes
        self.durable = durable  # the steps' changes are written (the rows exist)
        self._clock = clock
        self._monotonic = monotonic
        self._held: dict[str, list[HeldEvent]] = {}
        # Held events no aggregate will count (the run before ended, an aggregate was not
        # stored): stored as they are at the next step that can.
        self._orphans: list[HeldEvent] = list(held.events) if held is not None else []
        self._bytes = sum(len(e.text) for e in self._orphans)
        last_id, readings = (held.last_id, held.readings) if held is not None else (0, 0)
        self._next_id = max(last_id, usage.held_marks[0]) + 1  # (no id used twice)
        self._marks = (last_id, readings)  # as committed: noted for the usage file's saves
        self.rolled_back = self._rolled_back(held, usage.held_marks) if durable else (0, 0)
        if durable:
            usage.note_held(*self._marks)
            if any(self.rolled_back):
                usage.save()  # reported once: a second start must not find it again
        self._lock = threading.Lock()
        self.withheld = 0  # crossings an aggregate counted instead (since start)
        self.released = 0  # held events stored as they are after all
        self.recovered = len(held.events) if held is not None else 0  # (stored at start)
        self.unreadable = held.unreadable if held is not None else 0
        if held is not None and held.events:
            log.warning(
                "byte budget: the last run ended without stopping; %d held crossing(s) and "
                "%d open summary(ies) it left are stored as they are",
                held.crossings,
                held.summaries,
            )
        # The level from the kept usage at once: a unit restarted with its limit used up
        # must not send its first second of events in full.
        self.policy.update(usage.usage, clock(), monotonic())

    @staticmethod
    def _rolled_back(held: Loaded | None, kept: tuple[int, int]) -> tuple[int, int]:
        """Held crossings and summarized readings the database lost (a power loss).

        The usage file (fsynced every 30 s) keeps the marks of committed steps; a database
        behind them rolled back its last transactions, and what they held with them.
        """
        if held is None or held.salvaged:
            return 0, 0
        crossings = max(kept[0] - held.mark, 0)
        readings = max(kept[1] - held.readings, 0)
        if crossings or readings:
            log.error(
                "byte budget: the outbox database lost its last transactions (a power loss?): "
                "%d held crossing(s) and %d summarized reading(s) are lost",
                crossings,
                readings,
            )
        return crossings, readings

    @property
    def level(self) -> str:
        """The level in force."""
        return self.policy.level

    def admit(self, drafts: Sequence[Draft]) -> AbstractContextManager[Step]:
        """The drafts to store now, in order (held crossings and readings left out)."""
        with self._lock:
            if self.policy.index < _AGGREGATES and not self._held and not self._orphans:
                # Level full, nothing held: the drafts as they are, nothing to undo.
                return contextlib.nullcontext(Step(list(drafts), _NOTHING))
        return self._admit(drafts)

    @contextlib.contextmanager
    def _admit(self, drafts: Sequence[Draft]) -> Iterator[Step]:
        with self._lock, self._step() as (undo, changes):
            index = self.policy.index
            out: list[Draft] = []
            for draft in drafts:
                if draft.type == "line_crossing" and index >= _AGGREGATES:
                    if self._hold(draft, undo, changes):
                        continue
                elif draft.type == "aggregate":
                    out.append(self._annotate(draft, undo, changes))
                    continue
                elif draft.type == "sensor_reading" and index >= _COARSE:
                    closed = self.summaries.add(draft)
                    if closed is not None:
                        changes.readings += 1
                        out.extend(closed)
                        continue
                out.append(draft)
            yield self._finish(out, changes)

    @contextlib.contextmanager
    def tick(self, link_total: int) -> Iterator[Step]:
        """Take the link's byte total, update the level; a step storing what is due."""
        usage = self.usage.observe(link_total)
        with self._lock, self._step() as (_undo, changes):
            before = self.policy.index
            after = self.policy.update(usage, self._clock(), self._monotonic())
            if self.policy.index != before:
                self._log_change(before)
            out = self.summaries.due(self._clock())
            if LEVELS.index(after) < _COARSE <= before:
                out.extend(self.summaries.flush())
            yield self._finish(out, changes)

    @contextlib.contextmanager
    def release(self, camera: str) -> Iterator[Step]:
        """A step storing the held crossings of ``camera`` (its pipeline was restarted)."""
        with self._lock, self._step() as (undo, changes):
            yield self._finish(self._let_go(camera, undo, changes), changes)

    @contextlib.contextmanager
    def flush(self) -> Iterator[Step]:
        """A step storing everything held (the unit stops): crossings, open summaries."""
        with self._lock, self._step() as (undo, changes):
            out: list[Draft] = []
            for camera in list(self._held):
                out.extend(self._let_go(camera, undo, changes))
            out.extend(self.summaries.flush())
            yield self._finish(out, changes)
        self.usage.save()

    @contextlib.contextmanager
    def recover(self) -> Iterator[Step]:
        """A step storing what no aggregate will count (the run before's, at start)."""
        with self._lock, self._step() as (_undo, changes):
            yield self._finish([], changes)

    @contextlib.contextmanager
    def _step(self) -> Iterator[tuple[_Undo, Changes]]:
        """Undo what the step changed when its body raises (the caller holds the lock).

        Every step also stores the orphans (usually none), first.
        """
        undo = _Undo(
            orphans=self._orphans,
            counters=(self.withheld, self.released, self._bytes, self._next_id),
        )
        changes = Changes()
        self.summaries.begin()
        try:
            yield undo, changes
        except BaseException:
            self._undo(undo)
            raise
        self.summaries.done()
        if self.durable and (changes.held or changes.readings):  # committed: the marks move
            last_id = changes.held[-1].id if changes.held else self._marks[0]
            self._marks = (max(self._marks[0], last_id), self._marks[1] + changes.readings)
            self.usage.note_held(*self._marks)

    def _finish(self, out: list[Draft], changes: Changes) -> Step:
        """The step's drafts (orphans first) and changes, with the summaries it touched."""
        for sensor in self.summaries.touched:
            changes.summaries[sensor] = self.summaries.state(sensor)
        if self._orphans:
            orphans, self._orphans = self._orphans, []
            drafts, freed = rows.let_go(orphans)
            changes.let_go.extend(freed.let_go)
            self.released += len(orphans)
            self._bytes -= sum(len(e.text) for e in orphans)
            out = drafts + out
        return Step(out, changes if self.durable else Changes())

    def _undo(self, undo: _Undo) -> None:
        for camera, (held, length) in undo.cameras.items():
            if held is None:
                self._held.pop(camera, None)
            else:
                del held[length:]
                self._held[camera] = held
        self._orphans = undo.orphans
        self.withheld, self.released, self._bytes, self._next_id = undo.counters
        self.summaries.rollback()
        # An aggregate that was not stored cannot count its camera's held crossings: they
        # go as they are (the next aggregate counts only its own interval's).
        for camera in undo.aggregated:
            held_now = self._held.pop(camera, [])
            self._orphans = [*self._orphans, *held_now]

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
                crossings_held=sum(len(h) for h in self._held.values()) + len(self._orphans),
                readings_summarized=self.summaries.readings,
                summaries=self.summaries.summaries,
                recovered_held=self.recovered,
                unreadable_held=self.unreadable,
                rolled_back_crossings=self.rolled_back[0],
                rolled_back_readings=self.rolled_back[1],
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

    def _touch(self, camera: str, undo: _Undo) -> None:
        if camera not in undo.cameras:
            held = self._held.get(camera)
            undo.cameras[camera] = (held, len(held) if held is not None else 0)

    def _hold(self, draft: Draft, undo: _Undo, changes: Changes) -> bool:
        camera = draft.data.get("camera")
        key = camera if isinstance(camera, str) else draft.source
        held = self._held.get(key)
        if held is None and len(self._held) >= MAX_CAMERAS:
            return False
        if held is not None and len(held) >= MAX_HELD:
            return False
        text = rows.encode_draft(draft)
        if self._bytes + len(text) > self.max_bytes:
            return False
        self._touch(key, undo)
        if held is None:
            held = self._held[key] = []
        event = HeldEvent(self._next_id, key, text)
        self._next_id += 1
        self._bytes += len(text)
        held.append(event)
        changes.held.append(event)
        return True

    def _let_go(self, camera: str, undo: _Undo, changes: Changes) -> list[Draft]:
        """Stop holding ``camera``'s crossings; the drafts to store as they are."""
        self._touch(camera, undo)
        held = self._held.pop(camera, [])
        if held:
            changes.let_go.append((camera, held[0].id, held[-1].id))
            self._bytes -= sum(len(e.text) for e in held)
        self.released += len(held)
        return [e.draft for e in held]

    def _annotate(self, draft: Draft, undo: _Undo, changes: Changes) -> Draft:
        camera = draft.data.get("camera")
        key = camera if isinstance(camera, str) else draft.source
        self._touch(key, undo)
        held = self._held.pop(key, [])
        undo.aggregated.append(key)
        if not held and self.policy.index < _AGGREGATES:
            return draft
        if held:
            changes.let_go.append((key, held[0].id, held[-1].id))
            self._bytes -= sum(len(e.text) for e in held)
        self.withheld += len(held)
        data = dict(draft.data)
        data["crossings_withheld"] = len(held)
        return Draft(draft.type, draft.source, draft.timestamp, data)
