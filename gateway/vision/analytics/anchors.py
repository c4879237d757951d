"""Where a tracked object touches the ground, also when its box is cut.

The anchor of an object is the bottom-centre of its box. A box cut by the frame edge
(an object entering or leaving at the side) or by a nearer object (a car behind a bus,
a person behind a parked car) moves that point by up to half the object's size in one
frame, which looks like motion and can fake a line crossing. :class:`AnchorEstimator`
finds the sides of a box that are cut, from evidence only:

- a side within ``EDGE_SHARE`` of the frame edge is cut by it;
- the left or right side of a box, when its lower part lies inside (or flush with) the
  box of a nearer object (one whose bottom is lower in the picture: ground contact
  nearer the camera), is hidden behind that object.

A bottom hidden by a nearer object is not looked for: in a queue of vehicles seen from
behind, every vehicle's bottom-centre lies inside the box of the one in front, and
taking them all for cut would leave a platoon crossing a line without a side. Such an
anchor sits at the visible bottom, a little far: a crossing is seen a little late.

A sudden change of a box's shape with no such evidence (the detector boxed half a
person, or two people as one, then one again) is not taken for a cut: what it does to
the anchor is left to the line counter's tests of the track's motion.

Each track keeps the size of its recent whole boxes (no side cut). A cut box of a track
with a known whole size that is smaller than it is placed from its uncut side: touching
the left (right) edge or hidden on the left (right), ``x`` is its right (left) side minus
(plus) half the whole width; cut at the bottom, ``y`` is its top plus the whole height.
A cut box of a track never seen whole has no such size: its anchor is marked unreliable,
with the direction in which the true point may lie and how far (``reach``: a side hidden
behind nearer boxes lies at most at their far side, else it would be seen; a frame edge
bounds nothing). The line counter still takes a side from it when moving the point that
far that way cannot bring it back over the line's dead band. A box cut on both the left
and the right is unreliable along ``x`` either way.

A track whose first box touches exactly one frame edge entered the frame there; its
``origin`` is a point just outside that edge (the counter uses it as the side it came
from). Per-track state is bounded (``forget_s`` unseen, ``max_tracks``).
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from statistics import median

import numpy as np
from numpy.typing import NDArray

from gateway.vision.analytics.geometry import MAX_TRACKS, evict
from gateway.vision.detections import Detections

# A box side within this share of the frame width (height) of the frame edge, and at
# least EDGE_MARGIN_PX, is cut by it (detectors rarely reach the last pixel).
EDGE_SHARE = 0.01
EDGE_MARGIN_PX = 2.0
# A box is nearer than another when its bottom is lower by more than this share of the
# other's height (objects on one ground plane; equal depth is no occlusion).
NEARER_SHARE = 0.05
# The side point tested for being hidden lies this share of the box height above its
# bottom (the part of a person or vehicle that a nearer object covers first).
SIDE_PROBE = 0.25
# Weight of a new whole box in the track's whole size.
SIZE_ALPHA = 0.3
# A track's velocity is the median of its last STEPS steps (one box the tracker puts
# on something else for a frame or two does not drag it along).
STEPS = 8
# Two opposite sides whose steps differ by at most this many pixels moved together
# (the box kept its shape, within jitter): their mean is the step. A box overlapping a
# nearer object's may change shape with it; there, and for larger differences, the side
# that kept closer to the track's motion gives the step.
SAME_SHAPE_PX = 2.0
# How steady a track moves is known from this many steps on.
SPREAD_STEPS = 4
# A box whose opposite sides both moved against the track's motion, by more than this
# share of its size (at least JUMP_MIN_PX: detector jitter on small boxes) plus
# JUMP_SPEED_SHARE of the track's travel, jumped.
JUMP_SHARE = 0.5
JUMP_MIN_PX = 4.0
JUMP_SPEED_SHARE = 0.5

# ``Anchors.unknown`` value: the true point may lie on either side along that axis.
EITHER_WAY = 2

F64 = NDArray[np.float64]


@dataclass(frozen=True, slots=True)
class Anchors:
    """Anchors of one frame's tracked detections, row-aligned with them.

    Attributes:
        points: ``(N, 2)`` ground points in pixels.
        reliable: ``(N,)`` False where the box is cut and the track was never seen whole.
        unknown: ``(N, 2)`` for those rows, the direction in which the true point may lie
            beyond ``points`` along x (-1 left, +1 right) and y (+1 down), 0 where known,
            :data:`EITHER_WAY` where it could lie on both sides: a point is still on a
            definite side of a line when moving it that way cannot bring it back over it.
        origin: ``(N, 2)`` a point just outside the frame edge a new track entered by,
            NaN for other rows (only on the track's first sighting).
        velocity: ``(N, 2)`` the track's smoothed velocity (pixels per second) from the
            sides of its boxes that were not cut, NaN until known.
        spread: ``(N,)`` how far the track's steps deviate from that velocity (median,
            pixels per step): small for an object moving steadily, NaN until known.
        jumped: ``(N,)`` the whole box moved against the track's motion in one step (the
            tracker put the track on another object).
        reach: ``(N, 2)`` how far beyond ``points`` the true point may lie in the
            ``unknown`` directions (pixels; inf: no bound known, as where a frame edge
            cuts the box). A box hidden on one side by nearer objects hides at most up to
            their far side, so its centre lies at most half that further.
    """

    points: F64
    reliable: NDArray[np.bool_]
    origin: F64
    unknown: NDArray[np.int8] = field(default_factory=lambda: np.zeros((0, 2), dtype=np.int8))
    velocity: F64 = field(default_factory=lambda: np.zeros((0, 2)))
    spread: F64 = field(default_factory=lambda: np.zeros(0))
    jumped: NDArray[np.bool_] = field(default_factory=lambda: np.zeros(0, dtype=bool))
    reach: F64 = field(default_factory=lambda: np.zeros((0, 2)))

    def __post_init__(self) -> None:
        n = len(self.points)
        if len(self.reach) != n:
            object.__setattr__(self, "reach", np.full((n, 2), np.inf))
        if len(self.unknown) != n:
            object.__setattr__(self, "unknown", np.zeros((n, 2), dtype=np.int8))
        if len(self.velocity) != n:
            object.__setattr__(self, "velocity", np.full((n, 2), np.nan))
        if len(self.spread) != n:
            object.__setattr__(self, "spread", np.full(n, np.nan))
        if len(self.jumped) != n:
            object.__setattr__(self, "jumped", np.zeros(n, dtype=bool))

    @classmethod
    def plain(cls, detections: Detections) -> Anchors:
        """Bottom-centres of the boxes as they are, all reliable, no origins."""
        n = len(detections)
        return cls(
            detections.anchors().astype(np.float64),
            np.ones(n, dtype=bool),
            np.full((n, 2), np.nan),
        )


@dataclass(slots=True)
class _Shape:
    """What the estimator remembers about one track."""

    last_ts: float
    box: tuple[float, float, float, float]
    cut: tuple[bool, bool, bool, bool]  # left, top, right, bottom of ``box``
    width: float = 0.0  # whole size, 0 until a whole box was seen
    height: float = 0.0
    velocity: tuple[float, float] = (0.0, 0.0)  # pixels per second: median of the steps
    spread: float = 0.0  # median deviation of the steps from ``velocity``, px per step
    steps_x: deque[tuple[float, float]] = field(default_factory=lambda: deque(maxlen=STEPS))
    steps_y: deque[tuple[float, float]] = field(default_factory=lambda: deque(maxlen=STEPS))
    touched: bool = False  # the last box overlapped a nearer object's

    @property
    def steps(self) -> int:
        """Velocity steps held."""
        return max(len(self.steps_x), len(self.steps_y))


@dataclass(frozen=True, slots=True)
class Cuts:
    """Which sides of each box are cut (by the frame edge or a nearer object)."""

    left: NDArray[np.bool_]
    top: NDArray[np.bool_]  # by the frame edge only
    right: NDArray[np.bool_]
    bottom: NDArray[np.bool_]
    # The box overlaps the box of a nearer object (its shape may change with it).
    touched: NDArray[np.bool_] = field(default_factory=lambda: np.zeros(0, dtype=bool))
    # How far the hidden left (right) side may lie beyond the box's: to the far side of
    # the nearer boxes hiding it (the hidden part is behind them, or it would be seen);
    # inf when the frame edge cuts that side, 0 when it is not cut.
    reach_left: F64 = field(default_factory=lambda: np.zeros(0))
    reach_right: F64 = field(default_factory=lambda: np.zeros(0))

    def row(self, i: int) -> tuple[bool, bool, bool, bool]:
        """``(left, top, right, bottom)`` of one box."""
        return bool(self.left[i]), bool(self.top[i]), bool(self.right[i]), bool(self.bottom[i])


def find_cuts(xyxy: NDArray[np.floating], frame_size: tuple[int, int]) -> Cuts:
    """The cut sides of every box of one frame; see the module docstring."""
    boxes = np.asarray(xyxy, dtype=np.float64).reshape(-1, 4)
    edge = _edge_cuts(boxes, frame_size)
    x1, y1, x2, y2 = boxes.T
    h = y2 - y1
    probe_y = y2 - SIDE_PROBE * h
    # nearer[i, j]: box j stands nearer the camera than box i.
    nearer: NDArray[np.bool_] = y2[None, :] > y2[:, None] + NEARER_SHARE * h[:, None]
    tol = EDGE_MARGIN_PX  # a side flush with a nearer box may be cut by it

    def hiders(px: F64, py: F64) -> NDArray[np.bool_]:
        """``hit[i, j]``: point i lies inside box j, nearer than box i (or on its border)."""
        hit: NDArray[np.bool_] = (
            (px[:, None] >= x1[None, :] - tol)
            & (px[:, None] <= x2[None, :] + tol)
            & (py[:, None] > y1[None, :])
            & (py[:, None] < y2[None, :])
            & nearer
        )
        return hit

    hid_left, hid_right = hiders(x1, probe_y), hiders(x2, probe_y)
    far_left = np.where(hid_left, x1[None, :] - tol, np.inf).min(axis=1, initial=np.inf)
    far_right = np.where(hid_right, x2[None, :] + tol, -np.inf).max(axis=1, initial=-np.inf)
    left = edge[:, 0] | hid_left.any(axis=1)
    right = edge[:, 2] | hid_right.any(axis=1)

    overlap = (
        (x1[:, None] < x2[None, :])
        & (x2[:, None] > x1[None, :])
        & (y1[:, None] < y2[None, :])
        & (y2[:, None] > y1[None, :])
    )
    return Cuts(
        left=left,
        top=edge[:, 1],
        right=right,
        bottom=edge[:, 3],
        touched=np.asarray((overlap & nearer).any(axis=1), dtype=bool),
        reach_left=np.where(edge[:, 0], np.inf, np.where(left, np.maximum(x1 - far_left, 0), 0)),
        reach_right=np.where(edge[:, 2], np.inf, np.where(right, np.maximum(far_right - x2, 0), 0)),
    )


class AnchorEstimator:
    """Per-track anchors that ignore the cut sides of boxes; see the module docstring."""

    def __init__(
        self, frame_size: tuple[int, int], *, forget_s: float = 6.5, max_tracks: int = MAX_TRACKS
    ) -> None:
        """Set up for frames of ``(width, height)`` pixels."""
        self.frame_size = frame_size
        self.forget_s = forget_s
        self.max_tracks = max_tracks
        self._tracks: dict[int, _Shape] = {}

    def __len__(self) -> int:
        """Return the number of tracks with state held."""
        return len(self._tracks)

    def update(self, tracked: Detections, timestamp: float) -> Anchors:
        """Anchors of this frame's tracked detections (rows without a track id: as drawn).

        Every row takes part in finding occluders (a bus hides a car whatever the lines
        count), so pass all of a frame's tracked detections.
        """
        n = len(tracked)
        plain = Anchors.plain(tracked)
        points, reliable, origin = plain.points, plain.reliable, plain.origin
        unknown = np.zeros((n, 2), dtype=np.int8)
        reach = np.full((n, 2), np.inf)
        velocity = np.full((n, 2), np.nan)
        spread = np.full(n, np.nan)
        jumped = np.zeros(n, dtype=bool)
        cuts = find_cuts(tracked.xyxy, self.frame_size)
        for i in (int(k) for k in np.flatnonzero(tracked.tracker_id >= 0)):
            tid = int(tracked.tracker_id[i])
            x1, y1, x2, y2 = (float(v) for v in tracked.xyxy[i])
            box, cut = (x1, y1, x2, y2), cuts.row(i)
            state = self._tracks.get(tid)
            if state is None:
                origin[i] = _outside(
                    box, _edge_cuts(tracked.xyxy[i], self.frame_size)[0], self.frame_size
                )
                state = _Shape(timestamp, box, cut)
                self._tracks[tid] = state
            else:
                touched = bool(cuts.touched[i])
                jumped[i] = _step(state, box, cut, timestamp, free=not (touched or state.touched))
                state.touched = touched
            x, y, ok, way = _place(state, box, cut)
            points[i] = (x, y)
            reliable[i] = ok
            unknown[i] = way
            if way[0] in (-1, 1):  # one side hidden: the centre moves half the hidden part
                reach[i, 0] = (cuts.reach_left[i] if way[0] < 0 else cuts.reach_right[i]) / 2
            if state.steps:
                velocity[i] = state.velocity
            if state.steps >= SPREAD_STEPS:
                spread[i] = state.spread
            if not any(cut):
                _remember(state, x2 - x1, y2 - y1)
            state.box, state.cut, state.last_ts = box, cut, timestamp
        evict(self._tracks, timestamp, self.forget_s, self.max_tracks)
        return Anchors(points, reliable, origin, unknown, velocity, spread, jumped, reach)


def _place(
    state: _Shape, box: tuple[float, float, float, float], cut: tuple[bool, bool, bool, bool]
) -> tuple[float, float, bool, tuple[int, int]]:
    """Anchor ``(x, y)``, whether it is reliable, and the unknown directions."""
    x1, y1, x2, y2 = box
    left, top, right, bottom = cut
    w, h = x2 - x1, y2 - y1
    x, y, ok, ux, uy = (x1 + x2) / 2, y2, True, 0, 0
    if left and right:
        ok, ux = False, EITHER_WAY  # the true centre could be either way
    elif left or right:
        if state.width > w:
            x = x2 - state.width / 2 if left else x1 + state.width / 2
        elif not state.width:
            ok, ux = False, (-1 if left else 1)
    if bottom and top:
        ok, uy = False, EITHER_WAY
    elif bottom:
        if state.height > h:
            y = y1 + state.height
        elif not state.height:
            ok, uy = False, 1
    return x, y, ok, (ux, uy)


def _step(
    state: _Shape,
    box: tuple[float, float, float, float],
    cut: tuple[bool, bool, bool, bool],
    now: float,
    *,
    free: bool = False,
) -> bool:
    """Advance the track's velocity from the box sides not cut now nor before.

    Of two usable opposite sides, the one that kept closer to the track's motion gives
    the step (the other may have moved because the box changed shape). Returns whether
    the whole box jumped: along x or y both sides moved against the track's motion by
    more than ``JUMP_SHARE`` of the box size (at least ``JUMP_MIN_PX``; plus
    ``JUMP_SPEED_SHARE`` of its travel),
    which a box that only changes shape never does: the tracker put the track on
    another object.
    """
    dt = now - state.last_ts
    if dt <= 0:
        return False
    px1, py1, px2, py2 = state.box
    x1, y1, x2, y2 = box
    pl, pt, pr, pb = state.cut
    left, top, right, bottom = cut
    vx, vy = state.velocity
    fresh = state.steps == 0
    sx = _side_step(
        [(x1 - px1) / dt] if not (left or pl) else [],
        [(x2 - px2) / dt] if not (right or pr) else [],
        vx,
        fresh,
        free=free,
        dt=dt,
    )
    sy = _side_step(
        [(y2 - py2) / dt] if not (bottom or pb) else [],
        [(y1 - py1) / dt] if not (top or pt) else [],
        vy,
        fresh,
        free=free,
        dt=dt,
    )
    jumped = False
    if not fresh and len(state.steps_x) + len(state.steps_y) >= 2:
        travel = JUMP_SPEED_SHARE * float(np.hypot(vx, vy)) * dt
        ex = min(abs((x1 - px1) / dt - vx), abs((x2 - px2) / dt - vx)) * dt
        ey = min(abs((y1 - py1) / dt - vy), abs((y2 - py2) / dt - vy)) * dt
        same_way_x = (x1 - px1 - vx * dt) * (x2 - px2 - vx * dt) > 0
        same_way_y = (y1 - py1 - vy * dt) * (y2 - py2 - vy * dt) > 0
        # Only along an axis whose motion is known: a walker whose every step so far had
        # a side hidden (passing someone nearer) has no x velocity yet, not a zero one.
        jumped = (
            bool(state.steps_x)
            and same_way_x
            and ex > max(JUMP_SHARE * (x2 - x1), JUMP_MIN_PX) + travel
        ) or (
            bool(state.steps_y)
            and same_way_y
            and ey > max(JUMP_SHARE * (y2 - y1), JUMP_MIN_PX) + travel
        )
    if jumped:
        state.velocity, state.spread = (0.0, 0.0), 0.0
        state.steps_x.clear()
        state.steps_y.clear()
        return True
    if sx is not None:
        state.steps_x.append((sx, dt))
    if sy is not None:
        state.steps_y.append((sy, dt))
    mx, dx = _median_step(state.steps_x)
    my, dy = _median_step(state.steps_y)
    state.velocity, state.spread = (mx, my), float(np.hypot(dx, dy))
    return False


def _median_step(steps: deque[tuple[float, float]]) -> tuple[float, float]:
    """Median velocity of ``(velocity, dt)`` steps, and the median deviation in pixels.

    (Plain Python: for at most ``STEPS`` values numpy's median costs more than it saves.)
    """
    if not steps:
        return 0.0, 0.0
    m = median(s for s, _ in steps)
    return m, median(abs(s - m) * dt for s, dt in steps)


def _side_step(
    a: list[float],
    b: list[float],
    current: float,
    fresh: bool,
    *,
    free: bool = False,
    dt: float = 0.0,
) -> float | None:
    """The step of the usable sides (None: no side).

    Of two, their mean when the box kept its shape (``free`` of nearer objects, the steps
    within ``SAME_SHAPE_PX``): the jitter of each side cancels out, where picking one
    side favours the velocity the track had (after its motion changed, a walker turning
    or a track moved onto another walker, the estimate lagged by seconds). Else the one
    that kept closer to ``current``.
    """
    steps = a + b
    if not steps:
        return None
    if fresh or len(steps) == 1:
        return sum(steps) / len(steps) if fresh else steps[0]
    if free and abs(steps[0] - steps[1]) * dt <= SAME_SHAPE_PX:
        return (steps[0] + steps[1]) / 2
    return min(steps, key=lambda s: abs(s - current))


def _edge_cuts(xyxy: NDArray[np.floating], frame: tuple[int, int]) -> NDArray[np.bool_]:
    """``(N, 4)`` left, top, right, bottom: which box sides touch the frame edge."""
    boxes = np.asarray(xyxy, dtype=np.float64).reshape(-1, 4)
    fw, fh = frame
    mx, my = max(EDGE_MARGIN_PX, EDGE_SHARE * fw), max(EDGE_MARGIN_PX, EDGE_SHARE * fh)
    out: NDArray[np.bool_] = np.stack(
        [boxes[:, 0] <= mx, boxes[:, 1] <= my, boxes[:, 2] >= fw - mx, boxes[:, 3] >= fh - my],
        axis=1,
    )
    return out


def _outside(
    box: tuple[float, float, float, float], cut: NDArray[np.bool_], frame: tuple[int, int]
) -> tuple[float, float]:
    """A point just beyond the one frame edge a first box touches; NaN if none or several."""
    left, top, right, bottom = (bool(c) for c in cut)
    if left + top + right + bottom != 1:
        return (np.nan, np.nan)
    x1, _, x2, y2 = box
    cx = (x1 + x2) / 2
    if left:
        return (-1.0, y2)
    if right:
        return (frame[0] + 1.0, y2)
    if bottom:
        return (cx, frame[1] + 1.0)
    return (cx, -1.0)


def _remember(state: _Shape, w: float, h: float) -> None:
    """Fold a whole box into the track's whole size."""
    if state.width:
        state.width += SIZE_ALPHA * (w - state.width)
        state.height += SIZE_ALPHA * (h - state.height)
    else:
        state.width, state.height = w, h
