"""Turning movements: which gate a track entered by and which it left by, per interval.

Gates are the camera's own lines (crossed in the gate's ``entry`` direction: enters;
the other way: leaves) and zones (the first gate zone a track enters is its origin, the
first *other* gate zone it enters is its destination). The counter consumes the
engine's :class:`LineCrossing` and :class:`ZoneTransition` results, so it shares their
hysteresis, debouncing and id hand-over; it has no geometry of its own.

A trip is counted in the interval in which it ends, by origin, destination and the
track's label. A track that leaves by a gate without having entered by one counts
from ``unknown``; a trip that never reaches an exit (the track was lost in the middle,
or ``max_transit_s`` passed) counts to ``unknown`` when it is given up, so a matrix
whose ``unknown`` row and column are empty saw every trip whole.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from gateway.config.flow import UNKNOWN_GATE, GateConfig
from gateway.vision.analytics.geometry import MAX_TRACKS, evict
from gateway.vision.analytics.types import AnalyticsEvent, LineCrossing, ZoneTransition

Matrix = dict[str, dict[str, dict[str, int]]]


@dataclass(slots=True)
class _Trip:
    origin: str
    label: str
    started: float
    last_ts: float
    done: bool = False


class MovementCounter:
    """Origin-destination matrix of one intersection (one camera)."""

    def __init__(
        self,
        gates: Sequence[GateConfig],
        classes: Sequence[str] = (),
        *,
        forget_s: float,
        max_transit_s: float,
        max_tracks: int = MAX_TRACKS,
    ) -> None:
        """Set up from the gates; trips of tracks unseen for ``forget_s`` are given up."""
        self._lines = {g.line: (g.id, g.entry) for g in gates if g.line is not None}
        self._zones = {g.zone: g.id for g in gates if g.zone is not None}
        self.classes = set(classes)
        self.forget_s = forget_s
        self.max_transit_s = max_transit_s
        self.max_tracks = max_tracks
        self._trips: dict[int, _Trip] = {}
        self._matrix: Matrix = {}

    def __len__(self) -> int:
        """Return the number of tracks with a trip held."""
        return len(self._trips)

    def update(self, events: Iterable[AnalyticsEvent], seen: Iterable[int], ts: float) -> None:
        """Feed one frame's crossings and zone transitions and the track ids seen in it."""
        for event in events:
            if isinstance(event, LineCrossing):
                gate = self._lines.get(event.line_id)
                if gate is not None:
                    gate_id, entry = gate
                    if event.direction == entry:
                        self._enter(event.track_id, gate_id, event.label, ts)
                    else:
                        self._exit(event.track_id, gate_id, event.label, ts)
            elif isinstance(event, ZoneTransition) and event.kind == "enter":
                zone_gate = self._zones.get(event.zone_id)
                if zone_gate is not None:
                    trip = self._trips.get(event.track_id)
                    if trip is None:
                        self._enter(event.track_id, zone_gate, event.label, ts)
                    elif zone_gate != trip.origin:
                        self._exit(event.track_id, zone_gate, event.label, ts)
        for tid in seen:
            trip = self._trips.get(tid)
            if trip is not None:
                trip.last_ts = ts
        for tid, trip in list(self._trips.items()):
            if not trip.done and ts - trip.started > self.max_transit_s:
                self._give_up(tid, trip)
        for _, trip in evict(self._trips, ts, self.forget_s, self.max_tracks):
            if not trip.done:
                self._count(trip.origin, UNKNOWN_GATE, trip.label)

    def take(self) -> Matrix:
        """Return the trips finished since the last call and start anew."""
        matrix, self._matrix = self._matrix, {}
        return matrix

    def _enter(self, tid: int, gate: str, label: str, ts: float) -> None:
        if tid not in self._trips and self._wanted(label):
            self._trips[tid] = _Trip(origin=gate, label=label, started=ts, last_ts=ts)

    def _exit(self, tid: int, gate: str, label: str, ts: float) -> None:
        if not self._wanted(label):
            return
        trip = self._trips.get(tid)
        if trip is None:
            self._count(UNKNOWN_GATE, gate, label)
            self._trips[tid] = _Trip(UNKNOWN_GATE, label, ts, ts, done=True)
        elif not trip.done:
            self._count(trip.origin, gate, label)
            trip.done, trip.label = True, label

    def _give_up(self, tid: int, trip: _Trip) -> None:
        self._count(trip.origin, UNKNOWN_GATE, trip.label)
        trip.done = True

    def _wanted(self, label: str) -> bool:
        return not self.classes or label in self.classes

    def _count(self, origin: str, destination: str, label: str) -> None:
        row = self._matrix.setdefault(origin, {}).setdefault(destination, {})
        row[label] = row.get(label, 0) + 1
