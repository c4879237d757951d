"""Bytes on the wire per UTC day and month, kept across restarts.

The MQTT link counts the bytes of every packet it writes and reads
(:meth:`gateway.transport.mqtt.MqttLink.wire_bytes`, since the process started);
:class:`WireUsage` adds what the link counted since the previous look to the current
day and month and writes them to a small JSON file (atomically, at most every
``save_every_s`` and on close), so a restart does not reset the month. A ``kill -9``
loses at most the last ``save_every_s`` of counting (the unit then under-counts).
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from gateway.atomicfile import write_atomically

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Usage:
    """What went over the wire in the current UTC day and month."""

    day: str
    day_bytes: int
    month: str
    month_bytes: int


def _periods(now_s: float) -> tuple[str, str]:
    when = datetime.fromtimestamp(now_s, UTC)
    return when.strftime("%Y-%m-%d"), when.strftime("%Y-%m")


def _count(value: object) -> int:
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return value
    return 0


class WireUsage:
    """The day's and the month's bytes, fed with the link's running total."""

    def __init__(
        self,
        path: Path,
        *,
        clock: Callable[[], float] = time.time,
        save_every_s: float = 30.0,
    ) -> None:
        self.path = path
        self._clock = clock
        self._save_every_s = save_every_s
        self._last_total = 0  # the link and this meter start with the process
        self._last_save = float("-inf")
        day, month = _periods(clock())
        self._usage = Usage(day, 0, month, 0)
        # The budget gate's marks as last saved (gateway.budget.held): a database that
        # comes back behind them lost its last transactions.
        self.held_marks = (0, 0)
        self._load()

    def note_held(self, last_id: int, readings: int) -> None:
        """Keep the gate's marks (the last row id held, readings summarized) at each save."""
        self.held_marks = (last_id, readings)

    @property
    def usage(self) -> Usage:
        """The current day and month (rolled over to now)."""
        self._roll(self._clock())
        return self._usage

    def observe(self, link_total: int) -> Usage:
        """Add what the link sent and received since the last call (``link_total``: its sum)."""
        now = self._clock()
        self._roll(now)
        last, self._last_total = self._last_total, link_total
        delta = link_total - last if link_total >= last else 0
        if delta:
            u = self._usage
            self._usage = Usage(u.day, u.day_bytes + delta, u.month, u.month_bytes + delta)
        if now - self._last_save >= self._save_every_s:
            self.save()
        return self._usage

    def save(self) -> None:
        """Write the usage now (atomically); a failure is logged, counting goes on."""
        self._last_save = self._clock()
        u = self._usage
        last_id, readings = self.held_marks
        text = json.dumps(
            {
                "day": u.day,
                "day_bytes": u.day_bytes,
                "month": u.month,
                "month_bytes": u.month_bytes,
                "held_last": last_id,
                "held_readings": readings,
            }
        )
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            write_atomically(self.path, text)
        except OSError as exc:
            log.warning("cannot save the byte usage to %s: %s", self.path, exc)

    def _roll(self, now: float) -> None:
        day, month = _periods(now)
        u = self._usage
        if day != u.day or month != u.month:
            self._usage = Usage(
                day,
                u.day_bytes if day == u.day else 0,
                month,
                u.month_bytes if month == u.month else 0,
            )

    def _load(self) -> None:
        try:
            raw = json.loads(self.path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return
        except (OSError, ValueError) as exc:
            log.warning("byte usage file %s unreadable (%s): counting from 0", self.path, exc)
            return
        if not isinstance(raw, dict):
            log.warning("byte usage file %s holds no object: counting from 0", self.path)
            return
        self.held_marks = (_count(raw.get("held_last")), _count(raw.get("held_readings")))
        u = self._usage
        day_bytes = _count(raw.get("day_bytes")) if raw.get("day") == u.day else 0
        month_bytes = _count(raw.get("month_bytes")) if raw.get("month") == u.month else 0
        self._usage = Usage(u.day, day_bytes, u.month, max(month_bytes, day_bytes))
