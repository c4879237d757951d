"""Where a tracked object touches the ground, also when its box is cut.

The anchor of an object is the bottom-centre of its box. A box cut by the frame edge
(an object entering or leaving at the side) or by an occluder (a car behind a bus, a
person behind a parked car, a half-body box from the detector) moves that point by
up to half the object's size in one frame, which looks like motion and can fake a line
crossing. :class:`AnchorEstimator` keeps, per track, the size of its recent whole boxes
and places the anchor from the sides of the box that are not cut:

- a box touching the left (right) frame edge: ``x`` is its right (left) side minus
  (plus) half the track's whole width; touching the bottom edge: ``y`` is its top plus
  the whole height;
- a box away from the edges that suddenly loses more than ``STEP_SHRINK`` of its size
  (an occluder; perspective changes sizes gradually): until it is back to ``SHRINK`` of
  the whole size, the side that kept to the track's motion is trusted and the other one
  is replaced from the whole size;
- a cut box of a track never seen whole has no such size: its anchor is marked
  unreliable (the line counter takes no side from it).

A track whose first box touches a frame edge entered the frame there; its ``origin``
is a point just outside that edge (the counter uses it as the side it came from).
Per-track state is bounded (``forget_s`` unseen, ``max_tracks``).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from numpy.typing import NDArray

from gateway.vision.analytics.geometry import MAX_TRACKS, evict
from gateway.vision.detections import Detections

# A box side within this share of the frame width (height) of the frame edge, and at
# least EDGE_MARGIN_PX, is cut by it (detectors rarely reach the last pixel).
EDGE_SHARE = 0.01
EDGE_MARGIN_PX = 2.0
# A box that loses more than STEP_SHRINK of its width (height) from one sighting to the
# next is cut by an occluder (perspective changes a box's size only gradually), until it
# is back to SHRINK of the track's whole size, or for at most OCCLUDED_MAX_S.
STEP_SHRINK = 0.15
SHRINK = 0.75
OCCLUDED_MAX_S = 4.0
# Weight of a new whole box in the track's reference size.
SIZE_ALPHA = 0.3

F64 = NDArray[np.float64]


@dataclass(frozen=True, slots=True)
class Anchors:
    """Anchors of one frame's tracked detections, row-aligned with them.

    Attributes:
        points: ``(N, 2)`` ground points in pixels.
        reliable: ``(N,)`` False where the box is cut and the track was never seen whole.
        unknown: ``(N, 2)`` for those rows, the direction in which the true point may lie
            beyond ``points`` along x (-1 left, +1 right) and y (+1 down), 0 where known:
            a point is still on a definite side of a line when moving it that way cannot
            bring it back over the line.
        origin: ``(N, 2)`` a point just outside the frame edge a new track entered by,
            NaN for other rows (only on the track's first sighting).
    """

    points: F64
    reliable: NDArray[np.bool_]
    origin: F64
    unknown: NDArray[np.int8] = field(default_factory=lambda: np.zeros((0, 2), dtype=np.int8))

    def __post_init__(self) -> None:
        if len(self.unknown) != len(self.points):
            object.__setattr__(self, "unknown", np.zeros((len(self.points), 2), dtype=np.int8))

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
    box: tuple[float, float, float, float]  # last box
    shift: tuple[float, float]  # last anchor step per second (x, y)
    anchor: tuple[float, float]
    width: float = 0.0  # whole size, 0 until a whole box was seen
    height: float = 0.0
    occluded_since: float | None = None  # the box shrank suddenly then: partly hidden


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
        """Anchors of this frame's tracked detections (rows without a track id: as drawn)."""
        plain = Anchors.plain(tracked)
        points, reliable, origin = plain.points, plain.reliable, plain.origin
        unknown = np.zeros((len(tracked), 2), dtype=np.int8)
        fw, fh = self.frame_size
        mx, my = max(EDGE_MARGIN_PX, EDGE_SHARE * fw), max(EDGE_MARGIN_PX, EDGE_SHARE * fh)
        for i in np.flatnonzero(tracked.tracker_id >= 0):
            tid = int(tracked.tracker_id[i])
            x1, y1, x2, y2 = (float(v) for v in tracked.xyxy[i])
            box = (x1, y1, x2, y2)
            cut = (x1 <= mx, y1 <= my, x2 >= fw - mx, y2 >= fh - my)
            state = self._tracks.get(tid)
            if state is None:
                origin[i] = _outside(box, cut, (fw, fh))
                state = _Shape(timestamp, box, (0.0, 0.0), (float(points[i, 0]), y2))
                self._tracks[tid] = state
            x, y, ok = _place(state, box, cut, timestamp)
            points[i] = (x, y)
            reliable[i] = ok
            if not ok:
                left, _, right, bottom = cut
                unknown[i, 0] = -1 if left and state.width <= x2 - x1 else 0
                unknown[i, 0] += 1 if right and state.width <= x2 - x1 else 0
                unknown[i, 1] = 1 if bottom and state.height <= y2 - y1 else 0
            _remember(state, box, cut, (x, y), timestamp, reliable=ok)
        evict(self._tracks, timestamp, self.forget_s, self.max_tracks)
        return Anchors(points, reliable, origin, unknown)


def _outside(
    box: tuple[float, float, float, float],
    cut: tuple[bool, bool, bool, bool],
    frame: tuple[int, int],
) -> tuple[float, float]:
    """A point just beyond the one frame edge a first box touches; NaN if none or several."""
    left, top, right, bottom = cut
    if sum(cut) != 1:
        return (np.nan, np.nan)
    x1, _, x2, y2 = box
    cx = (x1 + x2) / 2
    if left:
        return (-1.0, y2)
    if right:
        return (frame[0] + 1.0, y2)
    if bottom:
        return (cx, frame[1] + 1.0)
    return (cx, -1.0) if top else (np.nan, np.nan)


def _place(
    state: _Shape,
    box: tuple[float, float, float, float],
    cut: tuple[bool, bool, bool, bool],
    now: float,
) -> tuple[float, float, bool]:
    """The anchor ``(x, y)`` of ``box`` for this track, and whether it is reliable."""
    x1, y1, x2, y2 = box
    left, top, right, bottom = cut
    w, h = x2 - x1, y2 - y1
    x, y, ok = (x1 + x2) / 2, y2, True
    dt = max(0.0, now - state.last_ts)
    px1, py1, px2, py2 = state.box
    dx, dy = state.shift[0] * dt, state.shift[1] * dt
    if left != right:
        if state.width > w:
            x = x2 - state.width / 2 if left else x1 + state.width / 2
        else:
            ok = False  # never seen whole: the cut side could be anywhere
    elif not left and state.occluded_since is not None and w < state.width:
        # An occluder hides one side: trust the side that kept to the track's motion.
        if abs(x1 - (px1 + dx)) <= abs(x2 - (px2 + dx)):
            x = x1 + state.width / 2
        else:
            x = x2 - state.width / 2
    if bottom and not top:
        if state.height > h:
            y = y1 + state.height
        else:
            ok = False
    elif (
        not (top or bottom)
        and state.occluded_since is not None
        and h < state.height
        and abs(y1 - (py1 + dy)) < abs(y2 - (py2 + dy))
    ):
        y = y1 + state.height  # the bottom is hidden (e.g. behind a car in front)
    return x, y, ok


def _remember(
    state: _Shape,
    box: tuple[float, float, float, float],
    cut: tuple[bool, bool, bool, bool],
    anchor: tuple[float, float],
    now: float,
    *,
    reliable: bool,
) -> None:
    """Update the track's whole size (from uncut boxes), last box and motion."""
    x1, y1, x2, y2 = box
    w, h = x2 - x1, y2 - y1
    px1, py1, px2, py2 = state.box
    pw, ph = px2 - px1, py2 - py1
    whole = not any(cut)
    if whole and state.width:
        if state.occluded_since is None:
            if w < (1 - STEP_SHRINK) * pw or h < (1 - STEP_SHRINK) * ph:
                state.occluded_since = now  # a side jumped inwards: something hides it
        elif (w >= SHRINK * state.width and h >= SHRINK * state.height) or (
            now - state.occluded_since > OCCLUDED_MAX_S
        ):
            state.occluded_since = None  # whole again (or it really is this size now)
            state.width, state.height = w, h
        whole = state.occluded_since is None
    if whole:
        if state.width:
            state.width += SIZE_ALPHA * (w - state.width)
            state.height += SIZE_ALPHA * (h - state.height)
        else:
            state.width, state.height = w, h
    dt = now - state.last_ts
    if reliable and dt > 0:
        step = ((anchor[0] - state.anchor[0]) / dt, (anchor[1] - state.anchor[1]) / dt)
        state.shift = (0.5 * (state.shift[0] + step[0]), 0.5 * (state.shift[1] + step[1]))
    if reliable:
        state.anchor = anchor
    state.box, state.last_ts = box, now
