"""Trigger evaluators: what a rule listens to, turned into a level (active or not).

Each evaluator is fed the analytics events of its camera (or the readings of its sensor)
and answers :meth:`Evaluator.level` at any time. Times are epoch seconds, the clock of
frame and reading timestamps. All state is bounded: zone members are capped at
:data:`MAX_MEMBERS` per trigger (oldest evicted), a line rate keeps ``min_count``
timestamps.

The registry :data:`EVALUATORS` maps a trigger ``type`` to its evaluator.
"""

from __future__ import annotations

import math
from collections import OrderedDict, deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from gateway.actuation import Cause
from gateway.config.rules import (
    AlertTrigger,
    LineRateTrigger,
    SensorTrigger,
    Trigger,
    ZoneDwellTrigger,
    ZoneOccupancyTrigger,
)
from gateway.sensors.types import Reading
from gateway.vision.analytics.types import Alert, AnalyticsEvent, LineCrossing, ZoneTransition

MAX_MEMBERS = 1024


@dataclass(frozen=True, slots=True)
class Level:
    """A trigger's answer: active or not, whether its input is known, and why."""

    active: bool
    known: bool
    cause: Cause | None
    since: float | None = None  # when it became active (epoch), for min_duration_s


class Evaluator(Protocol):
    """One trigger's state."""

    def feed(self, event: AnalyticsEvent) -> bool:
        """Take one analytics event of the trigger's camera; True when it mattered."""

    def feed_reading(self, reading: Reading) -> bool:
        """Take one sensor reading; True when it mattered."""

    def level(self, now: float) -> Level:
        """The level at ``now`` (epoch seconds)."""

    def reset(self) -> None:
        """Forget what was seen (the camera restarted: its tracks are gone)."""


def _wanted(labels: list[str], label: str) -> bool:
    return not labels or label in labels


class _CameraEvaluator:
    """Defaults for camera triggers: readings do not matter."""

    def feed_reading(self, reading: Reading) -> bool:
        """Take one reading; True when it mattered."""
        return False


class AlertEvaluator(_CameraEvaluator):
    """An instant: each matching alert is one pulse (the outputs' ``hold_s`` keeps them on)."""

    def __init__(self, cfg: AlertTrigger) -> None:
        self.cfg = cfg
        self._pending: Cause | None = None

    def feed(self, event: AnalyticsEvent) -> bool:
        """Take one analytics event; True when it mattered."""
        cfg = self.cfg
        if not isinstance(event, Alert) or event.kind != cfg.kind:
            return False
        if cfg.zone is not None and event.zone_id != cfg.zone:
            return False
        if cfg.line is not None and event.line_id != cfg.line:
            return False
        if cfg.labels and (event.label is None or event.label not in cfg.labels):
            return False
        details: dict[str, str | int | float] = {"kind": event.kind}
        for key, value in (("zone", event.zone_id), ("line", event.line_id)):
            if value is not None:
                details[key] = value
        if event.track_id is not None:
            details["track_id"] = event.track_id
        if event.label is not None:
            details["label"] = event.label
        self._pending = Cause("alert", event.timestamp, "alert", event.camera_id, details)
        return True

    def level(self, now: float) -> Level:
        """The level at ``now``."""
        cause, self._pending = self._pending, None
        return Level(cause is not None, True, cause, None if cause is None else cause.timestamp)

    def reset(self) -> None:
        """Forget what was seen."""
        self._pending = None


class _ZoneMembers(_CameraEvaluator):
    """Tracks inside one zone (of the wanted labels), from enter/exit events."""

    kind = "zone"

    def __init__(self, zone: str, labels: list[str], camera: str) -> None:
        self.zone = zone
        self.labels = labels
        self.camera = camera
        self.members: OrderedDict[int, tuple[str, float]] = OrderedDict()
        self.evicted = 0
        self._last: Cause | None = None

    def feed(self, event: AnalyticsEvent) -> bool:
        """Take one analytics event; True when it mattered."""
        if not isinstance(event, ZoneTransition) or event.zone_id != self.zone:
            return False
        if not _wanted(self.labels, event.label):
            return False
        if event.kind == "enter":
            self.members[event.track_id] = (event.label, event.timestamp)
            self.members.move_to_end(event.track_id)
            while len(self.members) > MAX_MEMBERS:
                self.members.popitem(last=False)
                self.evicted += 1
        elif self.members.pop(event.track_id, None) is None:
            return False
        self._last = Cause(
            f"zone_{event.kind}",
            event.timestamp,
            self.kind,
            event.camera_id,
            {"zone": self.zone, "track_id": event.track_id, "label": event.label},
        )
        return True

    def reset(self) -> None:
        """Forget what was seen."""
        self.members.clear()


class ZoneOccupancyEvaluator(_ZoneMembers):
    """Active while at least ``min_count`` wanted tracks are inside."""

    kind = "zone_occupancy"

    def __init__(self, cfg: ZoneOccupancyTrigger) -> None:
        super().__init__(cfg.zone, cfg.labels, cfg.camera)
        self.min_count = cfg.min_count
        self._since: float | None = None

    def level(self, now: float) -> Level:
        """The level at ``now``."""
        n = len(self.members)
        if n < self.min_count:
            self._since = None
            return Level(False, True, self._last)
        if self._since is None:
            # The enter that reached the threshold: the min_count-th newest member.
            entered = sorted(ts for _label, ts in self.members.values())
            self._since = entered[self.min_count - 1]
        cause = self._last
        if cause is not None:
            cause = Cause(cause.reason, cause.timestamp, self.kind, cause.source,
                          {**cause.details, "occupancy": n})  # fmt: skip
        return Level(True, True, cause, self._since)


class ZoneDwellEvaluator(_ZoneMembers):
    """Active while a wanted track has been inside for ``dwell_s`` or more."""

    kind = "zone_dwell"

    def __init__(self, cfg: ZoneDwellTrigger) -> None:
        super().__init__(cfg.zone, cfg.labels, cfg.camera)
        self.dwell_s = cfg.dwell_s

    def level(self, now: float) -> Level:
        """The level at ``now``."""
        if not self.members:
            return Level(False, True, self._last)
        track, (label, entered) = min(self.members.items(), key=lambda item: item[1][1])
        due = entered + self.dwell_s
        if now < due:
            return Level(False, True, self._last)
        details: dict[str, str | int | float] = {
            "zone": self.zone, "track_id": track, "label": label, "dwell_s": round(now - entered, 3)
        }  # fmt: skip
        return Level(True, True, Cause("dwell", due, self.kind, self.camera, details), due)


class LineRateEvaluator(_CameraEvaluator):
    """Active while ``min_count`` crossings fall within the last ``window_s``."""

    def __init__(self, cfg: LineRateTrigger) -> None:
        self.cfg = cfg
        self.times: deque[float] = deque(maxlen=cfg.min_count)
        self._last: Cause | None = None

    def feed(self, event: AnalyticsEvent) -> bool:
        """Take one analytics event; True when it mattered."""
        cfg = self.cfg
        if not isinstance(event, LineCrossing) or event.line_id != cfg.line:
            return False
        if cfg.direction is not None and event.direction != cfg.direction:
            return False
        if not _wanted(cfg.labels, event.label):
            return False
        self.times.append(event.timestamp)
        self._last = Cause(
            "crossing",
            event.timestamp,
            "line_rate",
            event.camera_id,
            {"line": cfg.line, "track_id": event.track_id, "label": event.label,
             "direction": event.direction},
        )  # fmt: skip
        return True

    def level(self, now: float) -> Level:
        """The level at ``now``."""
        times = self.times
        full = len(times) == self.cfg.min_count
        if full and now - times[0] <= self.cfg.window_s:
            return Level(True, True, self._last, times[-1])
        if full:  # the window passed: the level fell when the oldest crossing aged out
            due = times[0] + self.cfg.window_s
            return Level(False, True, Cause("window", due, "line_rate", self.cfg.camera))
        return Level(False, True, self._last)

    def reset(self) -> None:
        """Forget what was seen."""
        self.times.clear()


class SensorEvaluator:
    """Active while a value is beyond its limit (with a clear margin); unknown when stale."""

    def __init__(self, cfg: SensorTrigger) -> None:
        self.cfg = cfg
        self.value: float | None = None
        self.at: float | None = None
        self.active = False
        self._cause: Cause | None = None
        self._since: float | None = None

    def feed(self, event: AnalyticsEvent) -> bool:
        """Take one analytics event; True when it mattered."""
        return False

    def feed_reading(self, reading: Reading) -> bool:
        """Take one reading; True when it mattered."""
        cfg = self.cfg
        if reading.sensor_id != cfg.sensor:
            return False
        raw = reading.values.get(cfg.value, reading.extra.get(cfg.value))
        if isinstance(raw, bool) or not isinstance(raw, int | float) or math.isnan(raw):
            return False
        value = float(raw)
        self.value, self.at = value, reading.timestamp
        if cfg.above is not None:
            on, off = value > cfg.above, value <= cfg.above - cfg.clear_margin
        else:
            assert cfg.below is not None
            on, off = value < cfg.below, value >= cfg.below + cfg.clear_margin
        if (on and not self.active) or (off and self.active):
            self.active = on
            self._since = reading.timestamp if on else None
            reason = "over_limit" if on else "back_in_limit"
            self._cause = Cause(reason, reading.timestamp, "sensor", cfg.sensor,
                                {"value": cfg.value, "reading": value})  # fmt: skip
        return True

    def level(self, now: float) -> Level:
        """The level at ``now``."""
        if self.at is None or now - self.at > self.cfg.max_age_s:
            due = self.at + self.cfg.max_age_s if self.at is not None else now
            return Level(False, False, Cause("sensor_stale", due, "sensor", self.cfg.sensor))
        return Level(self.active, True, self._cause, self._since)

    def reset(self) -> None:
        """Forget what was seen."""
        self.value = self.at = None
        self.active = False


# The explicit registry: trigger type -> evaluator factory.
EVALUATORS: dict[str, Callable[[Any], Evaluator]] = {
    "alert": AlertEvaluator,
    "zone_occupancy": ZoneOccupancyEvaluator,
    "zone_dwell": ZoneDwellEvaluator,
    "line_rate": LineRateEvaluator,
    "sensor": SensorEvaluator,
}


def make_evaluator(cfg: Trigger) -> Evaluator:
    """Build the evaluator of one trigger."""
    return EVALUATORS[cfg.type](cfg)
