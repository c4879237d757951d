"""Counting lines: one :class:`LineCounter` per configured line, one verb (``trigger``).

Sides are taken relative to the directed line from point 1 to point 2 in image
coordinates (x right, y down). For an anchor ``a`` (bottom-centre of the box) and the
unit direction ``u`` of the line, ``s = u.x * (a.y - p1.y) - u.y * (a.x - p1.x)`` is the
signed distance: ``s < 0`` is the left-hand side seen from point 1 looking at point 2,
``s > 0`` the right-hand side. An anchor within ``hysteresis`` (a fraction of the frame
diagonal) of the line is on neither side, so jitter around the line never counts.

A track is counted when it moves from one side to the other and the path between its
last two sided positions cuts the segment itself (not its extension), once per track,
with two exceptions. A track first seen inside the dead band (its object's own track
was lost just before the line and nothing could hand over) counts when it leaves the
band, as a crossing towards that side. A counted track that then stays at least a box
width beyond the band on one side for ``REARM_S`` has finished its crossing and may count
again when it comes back (a U-turn, or a tracker that swapped it for an object going the
other way, which happens when people pass each other on a sidewalk); jitter never stays
away that long.
When a track disappears and a newer track of the same label appears soon after on its
way (within half a box width of the path from where it vanished to where its velocity
would have taken it: an id switch), the new track inherits the old one's side and
counted flag, so an id switch neither double-counts nor loses a crossing in progress.
That hand-over is on trial for ``verify_s``: the new track also keeps its own side and
counted flag as if nothing had been handed over, and when the trial ends its motion
decides. If it moved back against the vanished track (against its velocity, or back
towards the side a counted track came from) it is another object (two people passing
each other, say): it goes on with its own state, a crossing of that state during the
trial is reported then (up to ``verify_s`` late), and the vanished track may hand over
to someone else. Otherwise the inherited state stands. Crossings of the inherited state
are reported at once, as for any track.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from gateway.config.vision import LineConfig
from gateway.vision.analytics.geometry import (
    MAX_TRACKS,
    class_mask,
    diagonal,
    evict,
    label_list,
    to_pixels,
)
from gateway.vision.detections import Detections

LEFT, NONE, RIGHT = -1, 0, 1
LEFT_TO_RIGHT = "left_to_right"
RIGHT_TO_LEFT = "right_to_left"
# A new track that moved less than this fraction of its box width during a hand-over
# trial has not turned back (box jitter, or a stopped object).
TURN_MIN_MOVE = 0.25
# A counted track that has stayed at least REARM_WIDTHS of its box width beyond the dead
# band on the side it was counted into for REARM_S may count again when it crosses back.
REARM_WIDTHS = 1.0
REARM_S = 1.0


@dataclass(slots=True)
class _Ledger:
    """Which side a track was last seen on and whether it was counted."""

    side: int  # last definite side: LEFT, RIGHT, or NONE before the first
    sided_at: tuple[float, float]  # anchor where that side was last seen
    counted: bool = False


@dataclass(slots=True)
class _Trial:
    """A hand-over from a vanished track that the new track's motion has to confirm."""

    donor: _TrackSide  # the vanished track's state
    since: float  # when the new track appeared
    origin: tuple[float, float]  # where it appeared
    width: float  # its box width there
    own: _Ledger  # the new track's state as if nothing had been handed over
    held: int = NONE  # crossing of ``own`` during the trial, reported if it is refused


@dataclass(slots=True)
class _TrackSide:
    """What a line remembers about one track."""

    side: int  # last definite side: LEFT, RIGHT, or NONE before the first
    sided_at: tuple[float, float]  # anchor where that side was last seen
    anchor: tuple[float, float]  # last anchor seen
    last_ts: float
    label: str
    velocity: tuple[float, float] = (0.0, 0.0)  # pixels per second, smoothed
    counted: bool = False
    born_inside: bool = False  # first seen inside the dead band, with no hand-over
    far_since: float | None = None  # counted, and settled well past the line since then
    far_side: int = NONE  # on this side
    handed_over: bool = False  # already passed its state on to a new id
    trial: _Trial | None = None  # an inherited state still to be confirmed


class LineCounter:
    """Counts tracks crossing one line segment, once per track, with direction."""

    def __init__(
        self,
        line: LineConfig,
        frame_size: tuple[int, int],
        labels: Sequence[str],
        *,
        switch_s: float = 1.5,
        switch_radius: float = 0.5,
        verify_s: float = 0.5,
        forget_s: float = 5.0,
        max_tracks: int = MAX_TRACKS,
    ) -> None:
        """Set up a counter.

        Args:
            line: the configured line (normalised points).
            frame_size: ``(width, height)`` in pixels.
            labels: class id -> label.
            switch_s: longest gap between a track vanishing and a new id taking over.
            switch_radius: largest distance for that take-over, in widths of the new box.
            verify_s: how long the new id's motion is watched before a take-over stands.
            forget_s: per-track state is dropped after this long unseen.
            max_tracks: hard cap on per-track state.
        """
        self.line = line
        self.labels = list(labels)
        p1, p2 = to_pixels(line.points, frame_size)
        self._p1 = p1
        self._length = float(np.hypot(*(p2 - p1)))
        self._u = (p2 - p1) / self._length
        diag = diagonal(frame_size)
        self._band = line.hysteresis * diag
        self.switch_radius = switch_radius
        self.switch_s = switch_s
        self.verify_s = verify_s
        self.forget_s = max(forget_s, switch_s)
        self.max_tracks = max_tracks
        self._tracks: dict[int, _TrackSide] = {}

    def __len__(self) -> int:
        """Return the number of tracks with state held."""
        return len(self._tracks)

    def signed_distance(self, points: NDArray[np.floating]) -> NDArray[np.float64]:
        """Signed pixel distance of ``(N, 2)`` points from the line (negative: left)."""
        d = np.asarray(points, dtype=np.float64).reshape(-1, 2) - self._p1
        out: NDArray[np.float64] = self._u[0] * d[:, 1] - self._u[1] * d[:, 0]
        return out

    def trigger(
        self, detections: Detections, timestamp: float
    ) -> tuple[NDArray[np.bool_], NDArray[np.bool_]]:
        """Update with tracked detections; masks of rows that crossed now, per direction.

        Returns ``(left_to_right, right_to_left)`` boolean masks aligned with ``detections``.
        Rows without a track id or of a class this line ignores never cross.
        """
        n = len(detections)
        l2r = np.zeros(n, dtype=bool)
        r2l = np.zeros(n, dtype=bool)
        names = label_list(detections, self.labels)
        use = class_mask(names, self.line.classes) & (detections.tracker_id >= 0)
        anchors = detections.anchors().astype(np.float64)
        dist = self.signed_distance(anchors)
        sides = np.where(dist < -self._band, LEFT, np.where(dist > self._band, RIGHT, NONE))
        present = {int(t) for t in detections.tracker_id[use]}
        for i in np.flatnonzero(use):
            tid = int(detections.tracker_id[i])
            anchor = (float(anchors[i, 0]), float(anchors[i, 1]))
            state = self._tracks.get(tid)
            if state is None:
                width = float(detections.xyxy[i, 2] - detections.xyxy[i, 0])
                state = self._adopt(
                    tid, anchor, label=names[i], now=timestamp, present=present, width=width
                )
                self._tracks[tid] = state
            crossed = self._step(state, int(sides[i]), anchor)
            if state.trial is not None:
                crossed = self._try(
                    state,
                    state.trial,
                    crossed=crossed,
                    side=int(sides[i]),
                    anchor=anchor,
                    now=timestamp,
                )
            if state.counted and state.trial is None:
                width = float(detections.xyxy[i, 2] - detections.xyxy[i, 0])
                self._rearm(state, float(dist[i]), width, timestamp)
            _move(state, anchor, timestamp)
            state.label = names[i]
            if crossed == RIGHT:
                l2r[i] = True
            elif crossed == LEFT:
                r2l[i] = True
        evict(self._tracks, timestamp, self.forget_s, self.max_tracks)
        return l2r, r2l

    def _rearm(self, state: _TrackSide, dist: float, width: float, now: float) -> None:
        """Let a counted track count again once it has settled well past the line.

        A track counted into one side that then stays at least ``REARM_WIDTHS`` box widths
        beyond the dead band on that side for ``REARM_S`` has finished its crossing; if it
        comes back (a U-turn, or a tracker that swapped the object for one walking the
        other way) that is another crossing. Jitter around the line never stays away that
        long, so it still counts once.
        """
        far = dist * state.side >= self._band + REARM_WIDTHS * max(width, 1.0)
        if not far:
            state.far_since = None
        elif state.far_since is None or state.far_side != state.side:
            state.far_since, state.far_side = now, state.side
        elif now - state.far_since >= REARM_S:
            state.counted, state.far_since = False, None

    def _try(
        self,
        state: _TrackSide,
        trial: _Trial,
        *,
        crossed: int,
        side: int,
        anchor: tuple[float, float],
        now: float,
    ) -> int:
        """Advance a hand-over on trial; the crossing to report now.

        ``crossed`` is what the inherited state did on this update.
        """
        trial.held = trial.held or self._step(trial.own, side, anchor)
        if now - trial.since < self.verify_s:
            return crossed
        state.trial = None
        if not self._turned_back(trial, anchor):
            return crossed  # stopped, or on the vanished track's way: the same object
        # Moving against the vanished track: another object after all.
        trial.donor.handed_over = False
        state.side, state.sided_at = trial.own.side, trial.own.sided_at
        state.counted = trial.own.counted
        return trial.held

    def _turned_back(self, trial: _Trial, anchor: tuple[float, float]) -> bool:
        """Whether the new track moved against the vanished one it took over from.

        It did if it moved at least ``TURN_MIN_MOVE`` of its width and either against the
        vanished track's last velocity or, when that track had been counted, back towards
        the side it had come from (the velocity of a track may already be mixed up with
        another object's; the direction it was counted in is settled).
        """
        dx, dy = anchor[0] - trial.origin[0], anchor[1] - trial.origin[1]
        if np.hypot(dx, dy) < TURN_MIN_MOVE * max(trial.width, 1.0):
            return False
        vx, vy = trial.donor.velocity
        if dx * vx + dy * vy < 0:
            return True
        if not trial.donor.counted:
            return False
        towards = float(np.diff(self.signed_distance(np.array([trial.origin, anchor])))[0])
        return towards * trial.donor.side < 0

    def _step(self, state: _TrackSide | _Ledger, side: int, anchor: tuple[float, float]) -> int:
        """Advance one track; the side it crossed to (LEFT/RIGHT), or NONE."""
        if side == NONE:
            return NONE
        previous, start = state.side, state.sided_at
        state.side, state.sided_at = side, anchor
        if previous == NONE and isinstance(state, _TrackSide) and state.born_inside:
            # First seen on the line itself (its own track lost before the line, or an id
            # switch the hand-over could not place): leaving the band completes a crossing
            # that was already under way.
            state.born_inside = False
            previous = -side
        if previous in (NONE, side) or state.counted:
            return NONE
        if not self._within_segment(start, anchor):
            return NONE
        state.counted = True
        return side

    def _within_segment(self, a: tuple[float, float], b: tuple[float, float]) -> bool:
        """Whether the path ``a -> b`` (on opposite sides) cuts the segment itself."""
        sa, sb = self.signed_distance(np.array([a, b]))
        f = sa / (sa - sb)
        x = np.array(a) + f * (np.array(b) - np.array(a))
        t = float(np.dot(x - self._p1, self._u))
        return 0.0 <= t <= self._length

    def _adopt(
        self,
        tid: int,
        anchor: tuple[float, float],
        *,
        label: str,
        now: float,
        present: set[int],
        width: float,
    ) -> _TrackSide:
        """State for a new track id, taken over from a vanished track if it is the same object.

        The vanished track must have the same label and an older id (tracker ids increase,
        so the new id started after it), have been seen within ``switch_s``, and the new
        anchor must lie within ``switch_radius`` box widths of the path from where it was
        last seen to where its velocity would have taken it by now (so both an object that
        stopped and one that kept moving are recognised, but not a neighbour). The hand-over
        then stays on trial for ``verify_s`` (see the module docstring).
        """
        best: _TrackSide | None = None
        best_d = self.switch_radius * max(width, 1.0)
        for old_tid, old in self._tracks.items():
            if old_tid in present or old_tid >= tid or old.handed_over or old.label != label:
                continue
            gap = now - old.last_ts
            if gap > self.switch_s or gap < 0:
                continue
            end = (old.anchor[0] + old.velocity[0] * gap, old.anchor[1] + old.velocity[1] * gap)
            d = _distance_to_segment(anchor, old.anchor, end)
            if d <= best_d:
                best, best_d = old, d
        if best is None:
            inside = abs(float(self.signed_distance(np.array([anchor]))[0])) <= self._band
            return _TrackSide(
                side=NONE,
                sided_at=anchor,
                anchor=anchor,
                last_ts=now,
                label=label,
                born_inside=inside,
            )
        best.handed_over = True
        return _TrackSide(
            side=best.side,
            sided_at=best.sided_at,
            anchor=anchor,
            last_ts=now,
            label=label,
            velocity=best.velocity,
            counted=best.counted,
            trial=_Trial(
                donor=best,
                since=now,
                origin=anchor,
                width=width,
                own=_Ledger(side=NONE, sided_at=anchor),
            ),
        )


def _move(state: _TrackSide, anchor: tuple[float, float], now: float) -> None:
    """Record a new anchor and update the smoothed velocity."""
    dt = now - state.last_ts
    if dt > 0:
        vx = (anchor[0] - state.anchor[0]) / dt
        vy = (anchor[1] - state.anchor[1]) / dt
        state.velocity = (0.5 * (state.velocity[0] + vx), 0.5 * (state.velocity[1] + vy))
    state.anchor, state.last_ts = anchor, now


def _distance_to_segment(
    p: tuple[float, float], a: tuple[float, float], b: tuple[float, float]
) -> float:
    """Distance from point ``p`` to the segment ``a``-``b``."""
    ax, ay = a
    dx, dy = b[0] - ax, b[1] - ay
    length2 = dx * dx + dy * dy
    t = 0.0 if length2 == 0 else min(1.0, max(0.0, ((p[0] - ax) * dx + (p[1] - ay) * dy) / length2))
    return float(np.hypot(p[0] - (ax + t * dx), p[1] - (ay + t * dy)))
