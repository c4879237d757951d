"""Polygon zones: who is inside, enter/exit events, dwell and occupancy per label.

``PolygonZone.trigger`` says which anchors are inside now; ``ZoneTracker.update``
follows tracks over time.

An object is inside when the bottom-centre of its box is inside the polygon (even-odd
rule, vectorised over all anchors and edges). With ``min_frames > 1`` an enter (exit) is
confirmed only after that many consecutive observations inside (outside); the event
carries the time of the first of them, and ``dwell_s`` on exit is measured between the two.
A track that vanishes while inside exits at its last sighting once it is forgotten.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from gateway.config.vision import ZoneConfig
from gateway.vision.analytics.geometry import MAX_TRACKS, class_mask, evict, label_list, to_pixels
from gateway.vision.analytics.types import ZoneTransition
from gateway.vision.detections import Detections


def points_in_polygon(
    points: NDArray[np.floating], polygon: NDArray[np.floating]
) -> NDArray[np.bool_]:
    """Even-odd test of ``(N, 2)`` points against a ``(M, 2)`` polygon, vectorised."""
    pts = np.asarray(points, dtype=np.float64).reshape(-1, 2)
    poly = np.asarray(polygon, dtype=np.float64).reshape(-1, 2)
    x, y = pts[:, 0:1], pts[:, 1:2]
    x1, y1 = poly[:, 0], poly[:, 1]
    x2, y2 = np.roll(x1, -1), np.roll(y1, -1)
    straddles = (y1 > y) != (y2 > y)
    dy = np.where(y2 == y1, 1.0, y2 - y1)
    x_cross = x1 + (y - y1) * (x2 - x1) / dy
    hits = straddles & (x < x_cross)
    inside: NDArray[np.bool_] = hits.sum(axis=1) % 2 == 1
    return inside


class PolygonZone:
    """The geometry of one zone in pixels."""

    def __init__(self, zone: ZoneConfig, frame_size: tuple[int, int]) -> None:
        self.zone = zone
        self.polygon = to_pixels(zone.points, frame_size)

    def trigger(self, detections: Detections) -> NDArray[np.bool_]:
        """Rows whose anchor (bottom-centre) lies inside the polygon."""
        return points_in_polygon(detections.anchors(), self.polygon)


@dataclass(slots=True)
class _Member:
    """Zone state of one track that is inside or about to change."""

    label: str
    last_ts: float
    inside: bool = False  # confirmed state
    streak: int = 0  # consecutive observations contradicting ``inside``
    streak_start: float = 0.0
    entered_at: float = 0.0


class ZoneTracker:
    """Enter/exit events, dwell times and occupancy of one zone."""

    def __init__(
        self,
        camera_id: str,
        zone: ZoneConfig,
        frame_size: tuple[int, int],
        labels: Sequence[str],
        *,
        forget_s: float = 1.5,
        max_tracks: int = MAX_TRACKS,
    ) -> None:
        """Set up a zone; tracks unseen for ``forget_s`` leave it; at most ``max_tracks`` held."""
        self.camera_id = camera_id
        self.zone = zone
        self.geometry = PolygonZone(zone, frame_size)
        self.labels = list(labels)
        self.forget_s = forget_s
        self.max_tracks = max_tracks
        self._members: dict[int, _Member] = {}

    def __len__(self) -> int:
        """Return the number of tracks with state held."""
        return len(self._members)

    def update(self, detections: Detections, timestamp: float) -> list[ZoneTransition]:
        """Feed one frame of tracked detections; the transitions confirmed by it."""
        names = label_list(detections, self.labels)
        use = class_mask(names, self.zone.classes) & (detections.tracker_id >= 0)
        inside = self.geometry.trigger(detections) & use
        events: list[ZoneTransition] = []
        for i in np.flatnonzero(use):
            tid = int(detections.tracker_id[i])
            member = self._members.get(tid)
            if member is None:
                if not inside[i]:
                    continue
                member = self._members[tid] = _Member(label=names[i], last_ts=timestamp)
            member.label, member.last_ts = names[i], timestamp
            event = self._observe(tid, member, bool(inside[i]), timestamp)
            if event is not None:
                events.append(event)
            if not member.inside and member.streak == 0:
                del self._members[tid]  # outside and settled: nothing to remember
        for tid, member in evict(self._members, timestamp, self.forget_s, self.max_tracks):
            if member.inside:
                events.append(self._event(tid, member, "exit", member.last_ts))
        return events

    def occupancy(self) -> dict[str, int]:
        """Tracks currently inside, per label."""
        return dict(Counter(m.label for m in self._members.values() if m.inside))

    def inside_ids(self) -> set[int]:
        """Track ids currently inside (confirmed)."""
        return {tid for tid, m in self._members.items() if m.inside}

    def _observe(self, tid: int, m: _Member, inside: bool, ts: float) -> ZoneTransition | None:
        """Debounce one observation; an event when the state flips."""
        if inside == m.inside:
            m.streak = 0
            return None
        if m.streak == 0:
            m.streak_start = ts
        m.streak += 1
        if m.streak < self.zone.min_frames:
            return None
        m.inside, m.streak = inside, 0
        if inside:
            m.entered_at = m.streak_start
            return self._event(tid, m, "enter", m.streak_start)
        return self._event(tid, m, "exit", m.streak_start)

    def _event(self, tid: int, m: _Member, kind: str, ts: float) -> ZoneTransition:
        dwell = round(max(0.0, ts - m.entered_at), 3) if kind == "exit" else None
        return ZoneTransition(
            camera_id=self.camera_id,
            zone_id=self.zone.id,
            track_id=tid,
            label=m.label,
            kind="enter" if kind == "enter" else "exit",
            timestamp=ts,
            dwell_s=dwell,
        )
