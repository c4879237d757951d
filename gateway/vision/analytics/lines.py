"""Counting lines: one :class:`LineCounter` per configured line, one verb (``trigger``).

Sides are taken relative to the directed line from point 1 to point 2 in image
coordinates (x right, y down). For an anchor ``a`` (bottom-centre of the box) and the
unit direction ``u`` of the line, ``s = u.x * (a.y - p1.y) - u.y * (a.x - p1.x)`` is the
signed distance: ``s < 0`` is the left-hand side seen from point 1 looking at point 2,
``s > 0`` the right-hand side. An anchor within ``hysteresis`` (a fraction of the frame
diagonal) of the line is on neither side, so jitter around the line never counts.

Where a track is comes from :class:`~gateway.vision.analytics.anchors.AnchorEstimator`:
the ground point of its box, placed from the sides that are not cut by the frame edge or
a nearer object, or marked unreliable (no side is taken from it) when the box is cut and
the object was never seen whole.

A track is counted when it moves from one side to the other and the path between its
last sighting on the old side and its first on the new one cuts the segment itself (not
its extension), once per track. A side change needs ``CONFIRM`` sightings in a row on the
new side: one stray box past the line never counts. The crossing's time
(:attr:`LineCounter.crossed_at`) is interpolated where that path cut the line.

A new track starts on the side it came from: beyond the frame edge its first box
touches (it entered there), else the side of its anchor, also inside the dead band when
``BORN_SIDE_SHARE`` of the band away from the line; a track first seen on the line itself
has come from nowhere known (a vehicle queued at a stop line in the first frame) and
its first side change cannot count. When the whole box of a track jumps against its own
motion (the tracker put the id on another object: a person standing still whose id goes
to someone stepping out next to them), where the track was says nothing about this
object: its side starts afresh.

A counted track that then stays at least half a box width beyond the band on one side for
``REARM_S`` has finished its crossing and may count again when it comes back (a U-turn,
or a tracker that swapped it for an object going the other way, which happens when
people pass each other on a sidewalk); jitter never stays away that long.

When a track disappears and a newer track of the same label appears soon after on its
way (within half a box width of the path from where it vanished to where its velocity
would have taken it: an id switch), the new track inherits the old one's side and
counted flag, so an id switch neither double-counts nor loses a crossing in progress. The
same holds for a new track first detected on a box that also covers a nearer tracked
object of its label, soon after a track whose last box that first box overlaps vanished
(the detector moved the vanished object's box onto one around it and the nearer object;
the box's bottom, on the nearer object, says nothing of where the vanished one is).
That hand-over is on trial for ``verify_s``: the new track also keeps its own side and
counted flag as if nothing had been handed over, and when the trial ends its motion
decides. If it moved back against the vanished track (against its velocity, or back
towards the side a counted track came from) it is another object (two people passing
each other, say): it goes on with its own state, a crossing of that state during the
trial is reported then (up to ``verify_s`` late), and the vanished track may hand over
to someone else. Otherwise the inherited state stands. Crossings of the inherited state
are reported at once, as for any track.

An object hidden longer than that (a car behind a bus while it crosses) is re-identified
the same way for up to ``reid_s``, with more care: the vanished track must have moved
steadily (its box steps close to its velocity, which comes from the uncut sides of its
boxes) and its last box must not have been part of another box of its class (a
half-body box, a second box on one person: that object has not gone); the new anchor
must lie on its path or up to ``REID_SPREAD`` of its travel beyond, never further
sideways than half a box width (another lane is another car), and no other object of
its class may be on that path now (which of two walkers is the one that vanished?);
the inherited state's crossings wait for the trial, which the new track passes only by
moving on the vanished track's way.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from gateway.config.vision import LineConfig
from gateway.vision.analytics.anchors import EDGE_MARGIN_PX, EDGE_SHARE, EITHER_WAY, Anchors
from gateway.vision.analytics.geometry import (
    MAX_TRACKS,
    class_mask,
    diagonal,
    evict,
    label_list,
    to_pixels,
)
from gateway.vision.boxes import areas, box_iou, covered_share, intersections
from gateway.vision.detections import Detections

LEFT, NONE, RIGHT = -1, 0, 1
LEFT_TO_RIGHT = "left_to_right"
RIGHT_TO_LEFT = "right_to_left"
# A new track that moved less than this fraction of its box width during a hand-over
# trial has not turned back (box jitter, or a stopped object).
TURN_MIN_MOVE = 0.25
# A counted track that has stayed at least REARM_WIDTHS of its box width beyond the dead
# band on the side it was counted into for REARM_S may count again when it crosses back
# (people turning back at a lamp post go half a stride past it, for half a second).
REARM_WIDTHS = 0.5
REARM_S = 0.5
# A counted track whose anchor, within SWAP_S of the count, lands SWAP_HEIGHTS box heights
# or more along the line from where its motion would have taken it was moved onto
# another object (two walkers passing each other on the line): it may count again.
SWAP_S = 1.0
SWAP_HEIGHTS = 0.3
# A side change counts once the anchor has been seen this many times on the new side
# (one stray box past the line, or a box that jumps there for a frame, never counts).
CONFIRM = 2
# A track first seen inside the dead band takes the side its anchor is on as where it
# came from when it is at least this share of the band away from the line; nearer, the
# side of its box's centre or of a track it overlaps by SPLIT_IOU (see ``_origin``), else
# it has no side until it leaves the band (so it cannot count on leaving it).
BORN_SIDE_SHARE = 0.5
SPLIT_IOU = 0.3
# After a gap longer than ``switch_s`` (up to ``reid_s``) a new id re-identifies a
# vanished track within ``switch_radius`` widths of the new box plus REID_SPREAD of the
# vanished track's predicted travel (the longer an object was hidden, the less exactly
# its speed says where it is), and only a track that moved steadily: the deviation of
# its steps from its velocity at most STEADY_SHARE of its box width (a person jostled in
# a crowd, or a box that keeps changing shape, says little about where it went).
REID_SPREAD = 0.25
STEADY_SHARE = 0.25
# A box at least this share of whose area lies inside another box of the same class
# is a duplicate or a part of that object (a half-body box, the second of two boxes on
# one person): when it vanishes its object has not gone, so it hands over nothing
# after a long gap.
DUPLICATE_SHARE = 0.7
# A new track first detected on a box that also covers a nearer tracked object of its
# class (``beside``), at most MERGED_GAP_S after a track of its class whose last box that
# first box overlaps vanished, is the vanished one: the detector moved its box onto one
# around it and the nearer object, whose bottom says nothing of where it is.
MERGED_GAP_S = 0.3


@dataclass(slots=True)
class _Ledger:
    """Which side a track was last seen on and whether it was counted."""

    side: int  # last confirmed side: LEFT, RIGHT, or NONE before the first
    sided_at: tuple[float, float]  # anchor where that side was last seen
    counted: bool = False
    pending: int = NONE  # the other side, seen there ``pending_n`` times in a row
    pending_n: int = 0
    pending_at: tuple[float, float] = (0.0, 0.0)  # first anchor seen on the pending side
    sided_ts: float = 0.0  # when ``sided_at`` was seen
    pending_ts: float = 0.0  # when ``pending_at`` was seen
    crossed_at: float = 0.0  # estimated time of the latest counted crossing
    last_at: tuple[float, float] | None = None  # latest reliable anchor, on a side or not
    last_at_ts: float = 0.0
    zero_ts: float | None = None  # first time the anchor passed the line since ``sided_ts``


@dataclass(slots=True)
class _Trial:
    """A hand-over from a vanished track that the new track's motion has to confirm."""

    donor: _TrackSide  # the vanished track's state
    since: float  # when the new track appeared
    origin: tuple[float, float]  # where it appeared
    width: float  # its box width there
    own: _Ledger  # the new track's state as if nothing had been handed over
    held: int = NONE  # crossing of ``own`` during the trial, reported if it is refused
    # A re-identification after a long gap: the inherited state's crossings wait for
    # the trial too (``inherited``), and the new track must move on the vanished
    # track's way for the hand-over to stand.
    long: bool = False
    inherited: int = NONE


@dataclass(slots=True)
class _TrackSide:
    """What a line remembers about one track."""

    side: int  # last confirmed side: LEFT, RIGHT, or NONE before the first
    sided_at: tuple[float, float]  # anchor where that side was last seen
    anchor: tuple[float, float]  # last reliable anchor seen
    last_ts: float
    label: str
    velocity: tuple[float, float] = (0.0, 0.0)  # pixels per second, smoothed
    counted: bool = False
    pending: int = NONE  # the other side, seen there ``pending_n`` times in a row
    pending_n: int = 0
    pending_at: tuple[float, float] = (0.0, 0.0)
    sided_ts: float = 0.0  # when ``sided_at`` was seen
    pending_ts: float = 0.0  # when ``pending_at`` was seen
    crossed_at: float = 0.0  # estimated time of the latest counted crossing
    last_at: tuple[float, float] | None = None  # latest reliable anchor, on a side or not
    last_at_ts: float = 0.0
    zero_ts: float | None = None  # first time the anchor passed the line since ``sided_ts``
    seen_at: float = 0.0  # when ``anchor`` was seen
    steps: int = 0  # reliable sightings after the first (the velocity is known from 2 on)
    leaving: bool = False  # last box at a frame edge, moving out of the frame
    spread: float = float("nan")  # deviation of its steps from ``velocity`` (estimator's)
    width: float = 0.0  # last box width
    part: bool = False  # last box mostly inside another box of the same class
    covered: bool = True  # every box so far mostly inside other boxes of its class together
    # Where the latest counted crossing's run on the new side began from (the anchor, time
    # and velocity of the sighting before it), for SWAP_S; None: no recent count.
    counted_from: tuple[tuple[float, float], float, tuple[float, float]] | None = None
    far_since: float | None = None  # counted, and settled well past the line since then
    far_side: int = NONE  # on this side
    handed_over: bool = False  # already passed its state on to a new id
    # Anchor, time and velocity before the latest run of sightings on a new side began.
    pre_pending: tuple[tuple[float, float], float, tuple[float, float]] | None = None
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
        reid_s: float = 0.0,
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
            reid_s: longest gap for a steadily moving object hidden longer than that (a
                car behind a bus) to be re-identified by its motion; 0: ``switch_s``.
            switch_radius: largest distance for that take-over, in widths of the new box.
            verify_s: how long the new id's motion is watched before a take-over stands.
            forget_s: per-track state is dropped after this long unseen.
            max_tracks: hard cap on per-track state.
        """
        self.line = line
        self.labels = list(labels)
        p1, p2 = to_pixels(line.points, frame_size)
        self._frame = frame_size
        self._p1 = p1
        self._length = float(np.hypot(*(p2 - p1)))
        self._u = (p2 - p1) / self._length
        diag = diagonal(frame_size)
        self._band = line.hysteresis * diag
        self.switch_radius = switch_radius
        self.switch_s = switch_s
        self.reid_s = max(reid_s, switch_s)
        self.verify_s = verify_s
        self.forget_s = max(forget_s, self.reid_s)
        self.max_tracks = max_tracks
        self._tracks: dict[int, _TrackSide] = {}
        # Per row of the latest trigger() call: estimated time of the crossing, else NaN.
        self.crossed_at: NDArray[np.float64] = np.empty(0)

    def __len__(self) -> int:
        """Return the number of tracks with state held."""
        return len(self._tracks)

    def signed_distance(self, points: NDArray[np.floating]) -> NDArray[np.float64]:
        """Signed pixel distance of ``(N, 2)`` points from the line (negative: left)."""
        d = np.asarray(points, dtype=np.float64).reshape(-1, 2) - self._p1
        out: NDArray[np.float64] = self._u[0] * d[:, 1] - self._u[1] * d[:, 0]
        return out

    def trigger(
        self,
        detections: Detections,
        timestamp: float,
        anchors: Anchors | None = None,
        *,
        births: Mapping[int, tuple[tuple[float, float, float, float], float]] | None = None,
    ) -> tuple[NDArray[np.bool_], NDArray[np.bool_]]:
        """Update with tracked detections; masks of rows that crossed now, per direction.

        Returns ``(left_to_right, right_to_left)`` boolean masks aligned with ``detections``;
        :attr:`crossed_at` then holds each crossing's estimated time (the moment the
        anchor passed the line, which can be earlier than ``timestamp``: a crossing is
        confirmed a frame or two later, and an object hidden while it crossed is counted
        when it re-appears). Rows without a track id or of a class this line ignores
        never cross. ``anchors``
        (from :class:`~gateway.vision.analytics.anchors.AnchorEstimator`) place objects
        whose boxes are cut; by default the boxes' bottom-centres are used as they are.
        ``births`` (the tracker's) give where newly reported tracks were first detected.
        """
        n = len(detections)
        l2r = np.zeros(n, dtype=bool)
        r2l = np.zeros(n, dtype=bool)
        self.crossed_at = np.full(n, np.nan)
        names = label_list(detections, self.labels)
        use = class_mask(names, self.line.classes) & (detections.tracker_id >= 0)
        anchors = anchors or Anchors.plain(detections)
        dist = self.signed_distance(anchors.points)
        sides = np.where(dist < -self._band, LEFT, np.where(dist > self._band, RIGHT, NONE))
        present = {int(t) for t in detections.tracker_id[use]}
        part = _parts(detections.xyxy, detections.class_id)
        covered = _covered_by_class(detections)
        for i in np.flatnonzero(use):
            tid = int(detections.tracker_id[i])
            anchor = (float(anchors.points[i, 0]), float(anchors.points[i, 1]))
            width = float(detections.xyxy[i, 2] - detections.xyxy[i, 0])
            reliable = bool(anchors.reliable[i]) or self._side_certain(
                float(dist[i]), anchors.unknown[i], anchors.reach[i]
            )
            state = self._tracks.get(tid)
            if state is None:
                state = self._adopt(
                    tid,
                    anchor,
                    label=names[i],
                    now=timestamp,
                    present=present,
                    width=width,
                    origin=(float(anchors.origin[i, 0]), float(anchors.origin[i, 1])),
                    body=_centre(detections.xyxy[i]),
                    beside=self._beside(detections, int(i), names, tid),
                    reliable=reliable,
                    birth=(births or {}).get(tid)
                    if not reliable or sides[i] == NONE or self._touching(detections, int(i), names)
                    else None,
                )
                self._tracks[tid] = state
            elif bool(anchors.jumped[i]):
                _restart(state, int(sides[i]) if reliable else NONE, anchor, timestamp)
            before = (state.anchor, state.seen_at, state.velocity)
            crossed = self._step(state, int(sides[i]), anchor, timestamp) if reliable else NONE
            if state.pending != NONE and state.pending_n == 1:
                state.pre_pending = before  # where it was before its run on the new side
            if state.trial is not None and reliable:
                crossed = self._try(
                    state,
                    state.trial,
                    crossed=crossed,
                    side=int(sides[i]),
                    anchor=anchor,
                    now=timestamp,
                )
            if state.counted and state.trial is None and reliable:
                self._rearm(state, float(dist[i]), width, timestamp)
                height = float(detections.xyxy[i, 3] - detections.xyxy[i, 1])
                self._swapped(state, anchor, height, timestamp)
            _move(state, anchor, timestamp, anchors.velocity[i], reliable=reliable)
            state.last_ts = timestamp
            state.spread, state.width, state.part = float(anchors.spread[i]), width, bool(part[i])
            state.leaving = self._leaving(detections.xyxy[i], state.velocity)
            state.label = names[i]
            state.covered = state.covered and bool(covered[i])
            if state.covered:
                crossed = NONE  # not another object (see ``_covered_by_class``)
            if crossed == RIGHT:
                l2r[i] = True
            elif crossed == LEFT:
                r2l[i] = True
            if crossed != NONE:
                self.crossed_at[i] = state.crossed_at
                state.counted_from = state.pre_pending or before
                height = float(detections.xyxy[i, 3] - detections.xyxy[i, 1])
                if self._shifted(state.counted_from, anchor, height, timestamp):
                    # The confirming box is already another object's: re-armed at once.
                    state.counted, state.counted_from = False, None
        evict(self._tracks, timestamp, self.forget_s, self.max_tracks)
        return l2r, r2l

    def _side_certain(
        self, dist: float, unknown: NDArray[np.int8], reach: NDArray[np.float64]
    ) -> bool:
        """Whether a cut box's anchor is on its side whatever the cut part hides.

        The true point lies somewhere beyond the anchor in the ``unknown`` directions, up
        to ``reach`` pixels; moving it that way changes the signed distance by ``-u.y``
        per pixel along x and ``u.x`` along y. It must not bring it back towards the
        line, or, bounded, not into the dead band.
        """
        ux, uy = float(self._u[0]), float(self._u[1])
        towards = 0.0  # how much nearer the line the true point may be
        for slope, way, far in ((-uy, int(unknown[0]), reach[0]), (ux, int(unknown[1]), reach[1])):
            if abs(slope) <= 1e-6 or not way:
                continue
            if way == EITHER_WAY or np.sign(slope * way) != np.sign(dist):
                towards += abs(slope) * float(far)
        if not towards:
            return bool(unknown.any())
        return bool(abs(dist) - towards > self._band)

    def _leaving(self, box: NDArray[np.float32], velocity: tuple[float, float]) -> bool:
        """Whether a box at a frame edge moves out through it (the object leaves the frame)."""
        x1, y1, x2, y2 = (float(v) for v in box)
        fw, fh = self._frame
        mx, my = max(EDGE_MARGIN_PX, EDGE_SHARE * fw), max(EDGE_MARGIN_PX, EDGE_SHARE * fh)
        vx, vy = velocity
        return (
            (x1 <= mx and vx < 0)
            or (x2 >= fw - mx and vx > 0)
            or (y1 <= my and vy < 0)
            or (y2 >= fh - my and vy > 0)
        )

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

    def _shifted(
        self,
        before: tuple[tuple[float, float], float, tuple[float, float]],
        anchor: tuple[float, float],
        height: float,
        now: float,
    ) -> bool:
        """Whether ``anchor`` was moved onto another object along the line.

        It lies ``SWAP_HEIGHTS`` box heights or more along the line from where the motion
        ``before`` (last anchor, when it was seen, velocity) would have taken it.
        """
        (x, y), ts, (vx, vy) = before
        dx, dy = anchor[0] - x - vx * (now - ts), anchor[1] - y - vy * (now - ts)
        return bool(abs(dx * self._u[0] + dy * self._u[1]) >= SWAP_HEIGHTS * max(height, 1.0))

    def _swapped(
        self, state: _TrackSide, anchor: tuple[float, float], height: float, now: float
    ) -> None:
        """Re-arm a just-counted track that the tracker moved onto another object.

        Within ``SWAP_S`` of the count, an anchor ``SWAP_HEIGHTS`` box heights or more along
        the line from where the track's own motion would have taken it is another object
        (walkers passing each other on the line, one a little nearer the camera: the
        tracker hands the counted track to the other one, who then crosses with it). The
        motion is the one before the run of sightings that confirmed the count: the
        tracker's box slides onto the other walker over a few frames, and the confirming
        sightings may already be part of the way.
        """
        if state.counted_from is None or now - state.counted_from[1] > SWAP_S:
            state.counted_from = None
            return
        if self._shifted(state.counted_from, anchor, height, now):
            state.counted, state.counted_from = False, None

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

        ``crossed`` is what the inherited state did on this update. After a long gap
        that waits for the trial too, and the hand-over stands only if the new track
        moved on the vanished track's way.
        """
        trial.held = trial.held or self._step(trial.own, side, anchor, now)
        if trial.long:
            trial.inherited = trial.inherited or crossed
            crossed = NONE
        if now - trial.since < self.verify_s:
            return crossed
        state.trial = None
        if trial.long and self._followed(trial, anchor):
            return trial.inherited
        if not trial.long and not self._turned_back(trial, anchor):
            return crossed  # stopped, or on the vanished track's way: the same object
        # Moving against the vanished track: another object after all.
        trial.donor.handed_over = False
        own = trial.own
        state.side, state.sided_at, state.sided_ts = own.side, own.sided_at, own.sided_ts
        state.pending, state.pending_n = own.pending, own.pending_n
        state.pending_at, state.pending_ts = own.pending_at, own.pending_ts
        state.counted, state.crossed_at = own.counted, own.crossed_at
        return trial.held

    def _followed(self, trial: _Trial, anchor: tuple[float, float]) -> bool:
        """Whether the new track moved at least ``TURN_MIN_MOVE`` widths on the donor's way."""
        dx, dy = anchor[0] - trial.origin[0], anchor[1] - trial.origin[1]
        vx, vy = trial.donor.velocity
        speed = float(np.hypot(vx, vy))
        return speed > 0 and (dx * vx + dy * vy) / speed >= TURN_MIN_MOVE * max(trial.width, 1.0)

    def _turned_back(self, trial: _Trial, anchor: tuple[float, float]) -> bool:
        """Whether the new track moved against the vanished one it took over from.

        It did if it moved at least ``TURN_MIN_MOVE`` of its width and either against the
        vanished track's last velocity (when that track was moving at least that much
        over ``verify_s``: a standing track's velocity is box jitter), or, when that
        track had been counted, back towards
        the side it had come from (the velocity of a track may already be mixed up with
        another object's; the direction it was counted in is settled).
        """
        dx, dy = anchor[0] - trial.origin[0], anchor[1] - trial.origin[1]
        if np.hypot(dx, dy) < TURN_MIN_MOVE * max(trial.width, 1.0):
            return False
        vx, vy = trial.donor.velocity
        # A donor slower than that move over the trial was standing: its velocity is
        # box jitter, with no direction to turn back from.
        moving = np.hypot(vx, vy) * self.verify_s >= TURN_MIN_MOVE * max(trial.width, 1.0)
        if moving and dx * vx + dy * vy < 0:
            return True
        if not trial.donor.counted:
            return False
        towards = float(np.diff(self.signed_distance(np.array([trial.origin, anchor])))[0])
        return towards * trial.donor.side < 0

    def _step(
        self, state: _TrackSide | _Ledger, side: int, anchor: tuple[float, float], now: float
    ) -> int:
        """Advance one track; the side it crossed to (LEFT/RIGHT), or NONE.

        The first definite side is taken at once; a change of side only once the anchor
        has been seen ``CONFIRM`` times in a row on the new side (sightings inside the
        dead band do not break the run, one on the old side does). A counted crossing's
        time (``crossed_at``) is the first moment after the last sighting on the old side
        that the anchor passed the line itself, interpolated between the two sightings
        either side of it (someone who steps just past the line and stands in the band
        for a while, their box jittering about the line, crossed when they stepped over).
        """
        if state.last_at is not None:
            sa, sb = (float(v) for v in self.signed_distance(np.array([state.last_at, anchor])))
            stale = state.zero_ts is None or state.zero_ts < state.sided_ts
            if stale and (sa * sb < 0 or (sb == 0 and sa != 0)):
                state.zero_ts = state.last_at_ts + sa / (sa - sb) * (now - state.last_at_ts)
        state.last_at, state.last_at_ts = anchor, now
        if side == NONE:
            return NONE
        if state.side == NONE:
            state.side, state.sided_at, state.sided_ts = side, anchor, now
            return NONE
        if side == state.side:
            state.sided_at, state.sided_ts, state.pending, state.pending_n = anchor, now, NONE, 0
            return NONE
        if state.pending != side:
            state.pending, state.pending_n = side, 0
            state.pending_at, state.pending_ts = anchor, now
        state.pending_n += 1
        if state.pending_n < CONFIRM:
            return NONE
        start, first = state.sided_at, state.pending_at
        t0, t1 = state.sided_ts, state.pending_ts
        state.side, state.sided_at, state.sided_ts = side, anchor, now
        state.pending, state.pending_n = NONE, 0
        if state.counted or not self._within_segment(start, first):
            return NONE
        state.counted = True
        if state.zero_ts is not None and t0 <= state.zero_ts <= t1:
            state.crossed_at = state.zero_ts
        else:
            sa, sb = self.signed_distance(np.array([start, first]))
            state.crossed_at = t0 + float(sa / (sa - sb)) * (t1 - t0)
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
        origin: tuple[float, float],
        body: tuple[float, float],
        beside: int,
        reliable: bool,
        birth: tuple[tuple[float, float, float, float], float] | None = None,
    ) -> _TrackSide:
        """State for a new track id, taken over from a vanished track if it is the same object.

        The vanished track must have the same label and an older id (tracker ids increase,
        so the new id started after it), have been seen within ``switch_s`` and not have
        been leaving the frame, and the new anchor must lie within ``switch_radius`` box
        widths (plus ``REID_SPREAD`` of the predicted travel) of the path from where it was
        last seen to where its velocity would have taken it by now (so both an object that
        stopped and one that kept moving, hidden behind a bus for a few seconds, are
        recognised, but not a neighbour). The hand-over then stays on trial for
        ``verify_s`` (see the module docstring).

        Otherwise the track starts with the side it came from: the side of ``origin`` (a
        point beyond the frame edge it entered by) when there is one, else the side of its
        anchor, also inside the dead band when ``BORN_SIDE_SHARE`` of the band away from
        the line, else none yet.
        """
        best: _TrackSide | None = None
        best_d = np.inf
        for old_tid, old in self._tracks.items():
            if old_tid in present or old_tid >= tid or old.handed_over or old.label != label:
                continue
            gap = now - old.last_ts
            long = gap > self.switch_s
            if gap > self.reid_s or gap < 0 or old.leaving or (long and not _steady(old)):
                continue
            since = now - old.seen_at
            end = (
                old.anchor[0] + old.velocity[0] * since,
                old.anchor[1] + old.velocity[1] * since,
            )
            travel = float(np.hypot(end[0] - old.anchor[0], end[1] - old.anchor[1]))
            radius = self.switch_radius * max(width, 1.0)
            ahead = REID_SPREAD * travel if long else 0.0
            d = _distance_to_path(anchor, old.anchor, end, radius=radius, ahead=ahead)
            crowded = long and np.isfinite(d)
            if crowded and self._crowded(
                old, end, present=present, tid=tid, radius=radius, ahead=ahead
            ):
                continue
            if d < best_d:
                best, best_d = old, d
        if best is None and beside != NONE and birth is not None:
            best = self._merged_from(tid, label, present, birth)
        if best is None:
            side, sided_at = self._origin(anchor, origin, body, beside, reliable)
            sided_ts, last_at = now, None
            if birth is not None and not np.isfinite(origin[0]):
                (x1, _, x2, y2), born_ts = birth
                born = ((x1 + x2) / 2, y2)
                s = float(self.signed_distance(np.array([born]))[0])
                other = RIGHT if s < 0 else LEFT
                # A cut box may have no side from the rules: then the first box's, when
                # it was at least as wide as the box now (a narrower one was a smaller
                # part of the object: a car emerging from behind a truck).
                whole = side == NONE and x2 - x1 >= width
                if abs(s) > self._band and born_ts < now and (side == other or whole):
                    # First detected (before the tracker reported it) on that side.
                    side, sided_at, sided_ts = (LEFT if s < 0 else RIGHT), born, born_ts
                    last_at = born
            return _TrackSide(
                side=side,
                sided_at=sided_at,
                sided_ts=sided_ts,
                anchor=anchor,
                last_ts=now,
                label=label,
                seen_at=now,
                last_at=last_at,
                last_at_ts=sided_ts,
            )
        best.handed_over = True
        return _TrackSide(
            side=best.side,
            sided_at=best.sided_at,
            sided_ts=best.sided_ts,
            anchor=anchor,
            last_ts=now,
            label=label,
            velocity=best.velocity,
            counted=best.counted,
            seen_at=now,
            trial=_Trial(
                donor=best,
                since=now,
                origin=anchor,
                width=width,
                own=_Ledger(side=NONE, sided_at=anchor, sided_ts=now),
                long=now - best.last_ts > self.switch_s,
            ),
        )

    def _merged_from(
        self,
        tid: int,
        label: str,
        present: set[int],
        birth: tuple[tuple[float, float, float, float], float],
    ) -> _TrackSide | None:
        """The vanished track a new track first detected on a merged box continues, if any.

        The new track's first box overlaps a nearer tracked object's (the caller's
        ``beside``), so its bottom is partly that object's and its anchor is no guide. It
        continues a track of its label and with a side that vanished at most
        ``MERGED_GAP_S`` before that first box and whose last box (its anchor and width)
        the first box overlaps; of several, the one nearest the first box's centre.
        """
        (x1, y1, x2, y2), born_ts = birth
        best: _TrackSide | None = None
        best_d = np.inf
        for old_tid, old in self._tracks.items():
            if old_tid in present or old_tid >= tid or old.handed_over or old.label != label:
                continue
            gap = born_ts - old.last_ts
            if old.side == NONE or old.leaving or not 0 < gap <= MERGED_GAP_S:
                continue
            (ax, ay), half = old.anchor, old.width / 2
            if ax + half <= x1 or ax - half >= x2 or not y1 <= ay <= y2:
                continue
            d = float(np.hypot(ax - (x1 + x2) / 2, ay - (y1 + y2) / 2))
            if d < best_d:
                best, best_d = old, d
        return best

    def _crowded(
        self,
        old: _TrackSide,
        end: tuple[float, float],
        *,
        present: set[int],
        tid: int,
        radius: float,
        ahead: float,
    ) -> bool:
        """Whether another object of the label now on a vanished track's path could be it.

        After a long gap the motion alone cannot tell which of two people walking one
        path is the one that vanished (in a crowd, the object has usually been tracked
        again under another id already): nothing is handed over then.
        """
        for other_tid in present:
            other = self._tracks.get(other_tid)
            if other_tid == tid or other is None or other.label != old.label:
                continue
            reach = _distance_to_path(other.anchor, old.anchor, end, radius=radius, ahead=ahead)
            if np.isfinite(reach):
                return True
        return False

    def _origin(
        self,
        anchor: tuple[float, float],
        origin: tuple[float, float],
        body: tuple[float, float],
        beside: int,
        reliable: bool,
    ) -> tuple[int, tuple[float, float]]:
        """The side a new track (no hand-over) came from, and the point it was on.

        Beyond the frame edge it entered by (``origin``); else the side of its anchor,
        when at least ``BORN_SIDE_SHARE`` of the band from the line; else, with the anchor
        on the line itself, the side its box's centre (``body``) is on beyond the band
        (a vehicle waiting with its front on the line has come from behind it); else the
        side of a track of its class whose box it overlaps (``beside``: the tracker
        started a second track on an object it was following); else none.
        """
        if np.isfinite(origin[0]):
            s = float(self.signed_distance(np.array([origin]))[0])
            if abs(s) > self._band:
                return (LEFT if s < 0 else RIGHT), origin
        if not reliable:
            return NONE, anchor
        s, b = (float(v) for v in self.signed_distance(np.array([anchor, body])))
        if abs(s) >= BORN_SIDE_SHARE * self._band:
            return (LEFT if s < 0 else RIGHT), anchor
        if abs(b) > self._band:
            return (LEFT if b < 0 else RIGHT), anchor
        return beside, anchor

    def _touching(self, detections: Detections, row: int, names: list[str]) -> bool:
        """Whether ``row``'s box overlaps the box of another track of its label.

        A new track there may have been split off a box the detector had drawn around
        both objects, and where it was first detected tells where it came from. (Alone,
        a first box can be a part of the object: a car emerging from behind a truck.)
        """
        others = [
            k
            for k in range(len(detections))
            if k != row
            and names[k] == names[row]
            and int(detections.tracker_id[k]) != int(detections.tracker_id[row])
        ]
        if not others:
            return False
        return bool(
            (intersections(detections.xyxy[row : row + 1], detections.xyxy[others]) > 0).any()
        )

    def _beside(self, detections: Detections, row: int, names: list[str], tid: int) -> int:
        """The side of a known track of ``row``'s label whose box overlaps it most.

        Only tracks with a side and an IoU of at least ``SPLIT_IOU``; NONE when none.
        """
        others = [
            k
            for k in range(len(detections))
            if k != row
            and names[k] == names[row]
            and (t := int(detections.tracker_id[k])) != tid
            and t in self._tracks
            and self._tracks[t].side != NONE
        ]
        if not others:
            return NONE
        iou = box_iou(detections.xyxy[row : row + 1], detections.xyxy[others])[0]
        best = int(np.argmax(iou))
        if iou[best] < SPLIT_IOU:
            return NONE
        return self._tracks[int(detections.tracker_id[others[best]])].side


def _centre(box: NDArray[np.float32]) -> tuple[float, float]:
    """Centre of an ``x1, y1, x2, y2`` box."""
    return float(box[0] + box[2]) / 2, float(box[1] + box[3]) / 2


def _restart(state: _TrackSide, side: int, anchor: tuple[float, float], now: float) -> None:
    """Forget where a track came from after its anchor jumped; it starts from here."""
    state.side, state.sided_at, state.sided_ts = side, anchor, now
    state.pending, state.pending_n = NONE, 0
    state.velocity, state.far_since, state.steps = (0.0, 0.0), None, 0
    state.last_at, state.zero_ts = None, None


def _move(
    state: _TrackSide,
    anchor: tuple[float, float],
    now: float,
    velocity: NDArray[np.float64],
    *,
    reliable: bool,
) -> None:
    """Record the latest anchor (where a re-appearing object is looked for) and velocity.

    ``velocity`` is the anchor estimator's (from the sides of the boxes that were not
    cut); where it is unknown (NaN) the steps between reliable anchors are smoothed.
    """
    dt = now - state.seen_at
    if np.isfinite(velocity).all():
        state.velocity = (float(velocity[0]), float(velocity[1]))
    elif reliable and dt > 0:
        vx = (anchor[0] - state.anchor[0]) / dt
        vy = (anchor[1] - state.anchor[1]) / dt
        state.velocity = (0.5 * (state.velocity[0] + vx), 0.5 * (state.velocity[1] + vy))
    state.anchor, state.seen_at = anchor, now
    state.steps += 1


def _steady(state: _TrackSide) -> bool:
    """Whether a track moved steadily enough to be found again by its motion alone.

    Its steps deviate from its velocity by at most ``STEADY_SHARE`` of its box width
    (known from the anchor estimator), and its last box was not part of another one.
    """
    limit = STEADY_SHARE * max(state.width, 1.0)
    return bool(np.isfinite(state.spread) and state.spread <= limit and not state.part)


def _parts(xyxy: NDArray[np.float32], class_id: NDArray[np.int64]) -> NDArray[np.bool_]:
    """Rows whose box lies ``DUPLICATE_SHARE`` or more inside another box of its class."""
    boxes = np.asarray(xyxy, dtype=np.float64).reshape(-1, 4)
    if len(boxes) < 2:
        return np.zeros(len(boxes), dtype=bool)
    share = intersections(boxes, boxes) / np.maximum(areas(boxes), 1e-9)[:, None]
    same = class_id[:, None] == class_id[None, :]
    np.fill_diagonal(same, False)
    out: NDArray[np.bool_] = ((share >= DUPLICATE_SHARE) & same).any(axis=1)
    return out


def _covered_by_class(detections: Detections) -> NDArray[np.bool_]:
    """Rows whose box lies ``DUPLICATE_SHARE`` or more inside other tracks' boxes of its class.

    (Inside their union.) A track whose every box was so covered is not another object: a
    box the detector spread over two objects one behind the other (on the demo road, a
    third box between two cars one lane apart; its track crossed with them and was
    counted a third time), or a second box on one object. Its crossings are not counted.
    A track covered only for a while (a walker passing behind another) still counts.
    """
    tid = detections.tracker_id
    out = np.zeros(len(detections), dtype=bool)
    if len(detections) < 2:
        return out
    boxes = np.asarray(detections.xyxy, dtype=np.float64)
    others = (tid[None, :] >= 0) & (tid[:, None] != tid[None, :])
    others &= detections.class_id[:, None] == detections.class_id[None, :]
    inter = np.where(others, intersections(boxes, boxes), 0.0)
    # The sum of the overlaps bounds the union's: most rows need no exact union.
    maybe = inter.sum(axis=1) >= DUPLICATE_SHARE * np.maximum(areas(boxes), 1e-9)
    for i in np.flatnonzero(maybe & (tid >= 0)):
        near = others[i] & (inter[i] > 0)
        out[i] = covered_share(boxes[i], boxes[near]) >= DUPLICATE_SHARE
    return out


def _distance_to_path(
    p: tuple[float, float],
    a: tuple[float, float],
    b: tuple[float, float],
    *,
    radius: float,
    ahead: float,
) -> float:
    """Distance from ``p`` to the path ``a``-``b`` when within reach of it, else infinity.

    Within reach: at most ``radius`` from the segment, or from its extension up to
    ``ahead`` beyond ``b`` (an object hidden for a while may have sped up; it does not
    drift sideways out of its lane or sidewalk).
    """
    ax, ay = a
    dx, dy = b[0] - ax, b[1] - ay
    length = float(np.hypot(dx, dy))
    if length == 0:
        d = float(np.hypot(p[0] - ax, p[1] - ay))
        return d if d <= radius else np.inf
    along = ((p[0] - ax) * dx + (p[1] - ay) * dy) / length
    t = min(length + ahead, max(0.0, along))
    d = float(np.hypot(p[0] - (ax + t * dx / length), p[1] - (ay + t * dy / length)))
    return d if d <= radius else np.inf
