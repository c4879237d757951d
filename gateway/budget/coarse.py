"""Sensor readings summarized over a longer interval (the ``coarse_sensors`` level).

The readings of one sensor within ``interval_s`` become one ``sensor_reading`` whose
``values`` are the means of the numeric values (a string value: the latest), with a
``summary``: ``start``, ``end``, ``interval_s``, ``count`` (readings summarized),
``min`` and ``max`` per numeric value. ``count`` and the means keep every total
(sum = mean x count); ``ts`` is the latest reading's time.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace
from typing import Final

from gateway.events.envelope import Draft, format_ts
from gateway.jsontypes import JsonObject, JsonValue

MAX_SENSORS: Final = 256
"""Sensors summarized at once; a reading of a further sensor passes as it is."""


def _number(value: object) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


@dataclass(slots=True)
class _Summary:
    source: str
    sensor: str
    protocol: str
    start: float
    end: float
    count: int = 0
    sums: dict[str, float] = field(default_factory=dict)
    counts: dict[str, int] = field(default_factory=dict)
    mins: dict[str, float] = field(default_factory=dict)
    maxs: dict[str, float] = field(default_factory=dict)
    texts: dict[str, JsonValue] = field(default_factory=dict)
    extra: JsonObject = field(default_factory=dict)

    def add(self, draft: Draft, values: dict[str, JsonValue]) -> None:
        self.count += 1
        self.end = max(self.end, draft.timestamp)
        for key, raw in values.items():
            number = _number(raw)
            if number is None:
                self.texts[key] = raw
                continue
            self.sums[key] = self.sums.get(key, 0.0) + number
            self.counts[key] = self.counts.get(key, 0) + 1
            self.mins[key] = min(self.mins.get(key, number), number)
            self.maxs[key] = max(self.maxs.get(key, number), number)
        extra = draft.data.get("extra")
        if isinstance(extra, dict):
            self.extra = dict(extra)

    def copy(self) -> _Summary:
        """A copy whose maps can change without changing this one's."""
        return replace(
            self,
            sums=dict(self.sums),
            counts=dict(self.counts),
            mins=dict(self.mins),
            maxs=dict(self.maxs),
            texts=dict(self.texts),
            extra=dict(self.extra),
        )

    def state(self) -> JsonObject:
        """Everything the summary holds, as JSON (:meth:`from_state` reads it back)."""
        return asdict(self)

    @classmethod
    def from_state(cls, state: JsonObject) -> _Summary:
        """The summary :meth:`state` described; ``ValueError`` when it is not one."""
        try:
            summary = cls(**state)  # type: ignore[arg-type]
        except TypeError as exc:
            raise ValueError(f"not a sensor summary: {exc}") from exc
        numbers = (summary.start, summary.end, summary.count)
        maps = (summary.sums, summary.counts, summary.mins, summary.maxs, summary.texts)
        if not all(isinstance(x, int | float) and not isinstance(x, bool) for x in numbers) or not (
            all(isinstance(m, dict) for m in (*maps, summary.extra))
            and isinstance(summary.source, str)
            and isinstance(summary.sensor, str)
            and isinstance(summary.protocol, str)
        ):
            raise ValueError("not a sensor summary: a field of the wrong type")
        return summary

    def draft(self) -> Draft:
        values: JsonObject = dict(self.texts)
        for key, total in self.sums.items():
            values[key] = total / self.counts[key]
        summary: JsonObject = {
            "start": format_ts(self.start),
            "end": format_ts(self.end),
            "interval_s": round(max(self.end - self.start, 0.0), 3),
            "count": self.count,
            "min": dict(self.mins),
            "max": dict(self.maxs),
        }
        data: JsonObject = {
            "sensor": self.sensor,
            "protocol": self.protocol,
            "values": values,
            "extra": self.extra,
            "summary": summary,
        }
        return Draft("sensor_reading", self.source, self.end, data)


def closed(state: JsonObject) -> Draft:
    """The summary a kept :meth:`SensorSummaries.state` describes, closed now.

    Raises ``ValueError`` when ``state`` is not such a state.
    """
    return _Summary.from_state(state).draft()


class SensorSummaries:
    """Open summaries by sensor; :meth:`add` returns the ones that closed."""

    def __init__(self, interval_s: float) -> None:
        self.interval_s = interval_s
        self._open: dict[str, _Summary] = {}
        self.readings = 0
        self.summaries = 0
        self._saved: tuple[dict[str, _Summary], int, int] | None = None
        self.touched: set[str] = set()  # sensors changed since :meth:`begin`

    def __len__(self) -> int:
        return len(self._open)

    def begin(self) -> None:
        """Start a step that :meth:`rollback` can undo (the summaries are copied on write)."""
        self._saved = (dict(self._open), self.readings, self.summaries)
        self.touched = set()

    def rollback(self) -> None:
        """Put back the summaries as they were at :meth:`begin`."""
        if self._saved is not None:
            self._open, self.readings, self.summaries = self._saved
            self._saved = None
        self.touched = set()

    def done(self) -> None:
        """End the step :meth:`begin` started (what it changed stays)."""
        self._saved = None
        self.touched = set()

    def state(self, sensor: str) -> JsonObject | None:
        """The open summary of ``sensor`` as JSON (None: none open)."""
        current = self._open.get(sensor)
        return None if current is None else current.state()

    def add(self, draft: Draft) -> list[Draft] | None:
        """Take one ``sensor_reading``; ``None`` when it cannot be summarized (pass it on).

        A reading that is itself a summary, or of a sensor beyond :data:`MAX_SENSORS`,
        or without values, passes as it is.
        """
        data = draft.data
        sensor, protocol, values = data.get("sensor"), data.get("protocol"), data.get("values")
        if "summary" in data or not isinstance(sensor, str) or not isinstance(protocol, str):
            return None
        if not isinstance(values, dict) or not values:
            return None
        closed: list[Draft] = []
        current = self._open.get(sensor)
        if (
            current is not None
            and self._saved is not None
            and current is self._saved[0].get(sensor)
        ):
            current = self._open[sensor] = current.copy()  # the saved one stays as it was
        if current is not None and (
            draft.timestamp - current.start >= self.interval_s
            or draft.timestamp < current.start
            or current.protocol != protocol
        ):
            closed.append(self._close(sensor))
            current = None
        if current is None:
            if len(self._open) >= MAX_SENSORS:
                return None
            current = _Summary(draft.source, sensor, protocol, draft.timestamp, draft.timestamp)
            self._open[sensor] = current
        current.add(draft, values)
        self.readings += 1
        self.touched.add(sensor)
        return closed

    def due(self, now_s: float) -> list[Draft]:
        """Close the summaries whose interval has passed by ``now_s`` (a silent sensor)."""
        late = [s for s, o in self._open.items() if now_s - o.start >= self.interval_s]
        return [self._close(sensor) for sensor in late]

    def flush(self) -> list[Draft]:
        """Close every open summary (level raised, or the unit stops)."""
        return [self._close(sensor) for sensor in list(self._open)]

    def _close(self, sensor: str) -> Draft:
        self.summaries += 1
        self.touched.add(sensor)
        return self._open.pop(sensor).draft()
