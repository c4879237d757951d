"""Anchors of cut boxes: frame edges, nearer objects, jumps, velocity from uncut sides."""

from __future__ import annotations

import numpy as np
import pytest

from gateway.vision.analytics.anchors import (
    EITHER_WAY,
    STEPS,
    AnchorEstimator,
    Anchors,
    find_cuts,
)
from gateway.vision.detections import Detections

FRAME = (640, 360)
DT = 0.1


def dets(*rows: tuple[int, float, float, float, float]) -> Detections:
    """Tracked detections from ``(track id, x1, y1, x2, y2)``."""
    if not rows:
        return Detections.empty()
    return Detections.from_arrays(
        [r[1:] for r in rows], [0.9] * len(rows), [2] * len(rows), [r[0] for r in rows]
    )


def run(frames: list[Detections]) -> list[Anchors]:
    est = AnchorEstimator(FRAME)
    return [est.update(d, k * DT) for k, d in enumerate(frames)]


@pytest.mark.parametrize(
    ("boxes", "expected"),
    [
        # (left, top, right, bottom) of box 0
        ([(100, 100, 160, 140)], (False, False, False, False)),
        ([(0, 100, 60, 140)], (True, False, False, False)),  # frame edge
        ([(600, 100, 640, 140)], (False, False, True, False)),
        ([(100, 320, 160, 359)], (False, False, False, True)),
        ([(100, 0, 160, 50)], (False, True, False, False)),
        # A nearer bus (bottom lower) covers the car's right side and bottom-centre.
        ([(100, 100, 160, 140), (140, 80, 300, 170)], (False, False, True, False)),
        # Its bottom-centre behind the bus too: not taken for a cut bottom (a queue of
        # cars seen from behind would all lose their ground point).
        ([(100, 100, 160, 140), (120, 80, 300, 170)], (False, False, True, False)),
        # The same box farther away (bottom higher) hides nothing of the car.
        ([(100, 100, 160, 140), (140, 60, 300, 120)], (False, False, False, False)),
        # Flush with the nearer box's side (an ideal detector's visible part) is cut too.
        ([(100, 100, 140, 140), (140, 80, 300, 170)], (False, False, True, False)),
        # Side by side at one depth: nobody hides anybody.
        ([(100, 100, 160, 140), (150, 100, 210, 141)], (False, False, False, False)),
    ],
)
def test_find_cuts(
    boxes: list[tuple[float, float, float, float]], expected: tuple[bool, bool, bool, bool]
) -> None:
    cuts = find_cuts(np.array(boxes, dtype=np.float32), FRAME)
    assert cuts.row(0) == expected


def test_box_cut_by_the_frame_edge_is_placed_from_its_uncut_side() -> None:
    """A car leaving at the right edge: its anchor moves on at its speed, not half as fast."""
    frames = [dets((1, 500 + 10 * k, 100, 580 + 10 * k, 140)) for k in range(6)]
    frames += [dets((1, 500 + 10 * k, 100, 640, 140)) for k in range(6, 10)]
    anchors = run(frames)
    xs = [a.points[0, 0] for a in anchors]
    assert xs == pytest.approx([540 + 10 * k for k in range(10)], abs=1.0)
    assert all(a.reliable[0] for a in anchors)


def test_cut_box_of_a_track_never_seen_whole_is_unreliable_with_its_unknown_side() -> None:
    """A car entering at the left edge: the true centre is further left, off the frame."""
    anchors = run([dets((1, 0, 100, 20 + 10 * k, 140)) for k in range(3)])
    for a in anchors:
        assert not a.reliable[0]
        assert tuple(a.unknown[0]) == (-1, 0)
    assert tuple(anchors[0].origin[0]) == (-1.0, 140.0)  # it entered from the left
    assert np.isnan(anchors[1].origin[0]).all()


def test_box_cut_on_both_sides_is_unreliable_either_way() -> None:
    """A person between two nearer people: the centre could be on either side."""
    frame = dets((1, 100, 100, 120, 140), (2, 60, 90, 110, 160), (3, 110, 90, 160, 160))
    (a,) = run([frame])
    assert not a.reliable[0]
    assert a.unknown[0, 0] == EITHER_WAY


def test_a_side_hidden_by_a_nearer_box_reaches_at_most_to_its_far_side() -> None:
    """Hidden on the right by a nearer person's box, a person's true right side lies at
    most at that box's right side (beyond it, it would be seen): the centre at most half
    the hidden part further. The frame edge bounds nothing; an uncut side reaches 0."""
    boxes = np.array(
        [(100, 100, 140, 200), (120, 90, 180, 220), (0, 100, 30, 200), (300, 100, 340, 200)],
        dtype=np.float32,
    )
    cuts = find_cuts(boxes, FRAME)
    assert cuts.row(0) == (False, False, True, False)
    assert cuts.reach_right[0] == pytest.approx(180 + 2 - 140)  # + the flush tolerance
    assert cuts.reach_left[0] == 0
    assert cuts.reach_left[2] == np.inf  # the frame edge: the object may be any size
    assert (cuts.reach_left[3], cuts.reach_right[3]) == (0, 0)
    (a,) = run([dets((1, *boxes[0]), (2, *boxes[1]))])
    assert not a.reliable[0]
    assert tuple(a.unknown[0]) == (1, 0)
    assert a.reach[0, 0] == pytest.approx((180 + 2 - 140) / 2)
    assert a.reach[0, 1] == np.inf  # y is known (unknown 0): no bound is needed there


def test_no_jump_along_an_axis_whose_motion_is_not_known_yet() -> None:
    """Two walkers pass each other at 3.3 fps (the ``edges`` scene): each step of the far
    one had a side hidden behind the nearer one, so its x velocity is unknown, not zero;
    its next whole box, 11 px on, is a step, not the tracker jumping to another object
    (which restarted its side and lost its crossing)."""
    est = AnchorEstimator(FRAME)
    seq = [
        (0.6, (0, 265, 18, 320), (32, 285, 52, 344)),
        (0.9, (10, 265, 28, 320), (22, 285, 40, 344)),
        (1.2, (21, 265, 39, 320), (10, 285, 29, 344)),
        (1.5, (32, 265, 49, 320), (0, 285, 18, 344)),
    ]
    jumped = []
    for t, far, near in seq:
        a = est.update(Detections.from_arrays([far, near], [0.9, 0.9], [0, 0], [1, 4]), t)
        jumped.append(bool(a.jumped[0]))
    assert jumped == [False, False, False, False]


def test_car_sliding_behind_a_bus_keeps_its_true_ground_point_and_speed() -> None:
    """Seen whole, then its front slides behind a slower nearer bus: placed from its rear."""
    frames = []
    for k in range(12):
        car = (1, 20 + 12 * k, 100, 100 + 12 * k, 140)
        bus_x = 150 + 6 * k
        x2 = min(car[3], bus_x)
        frames.append(dets((1, car[1], 100, x2, 140), (2, bus_x, 80, bus_x + 200, 180)))
    anchors = run(frames)
    for k, a in enumerate(anchors):
        assert a.points[0, 0] == pytest.approx(60 + 12 * k, abs=1.0)
        assert a.reliable[0]
    assert anchors[-1].velocity[0, 0] == pytest.approx(120.0, abs=1.0)  # px/s, not 60-90
    assert anchors[-1].spread[0] == pytest.approx(0.0, abs=0.5)


def test_shape_change_without_an_occluder_is_not_taken_for_a_cut() -> None:
    """A half-body box (nothing nearer covers the legs) is not corrected, not flagged."""
    frames = [dets((1, 100, 100, 130, 180))] * 3 + [dets((1, 100, 100, 130, 140))]
    a = run(frames)[-1]
    assert a.reliable[0]
    assert tuple(a.points[0]) == (115.0, 140.0)
    assert not a.jumped[0]


@pytest.mark.parametrize(
    ("step", "jumped"),
    [
        ((0, 0, 0, 0), False),  # still
        ((3, 0, 3, 0), False),  # jitter
        ((20, 0, 20, 0), True),  # the whole box moved a box width: another object
        ((0, 0, 20, 0), False),  # one side moved: the box changed shape
        ((-20, 0, 0, 0), False),
        ((0, 40, 0, 40), True),
    ],
)
def test_jump_of_the_whole_box_against_the_track_motion(
    step: tuple[float, float, float, float], jumped: bool
) -> None:
    """A person standing still; on the last frame the box moves by ``step``."""
    still = [dets((1, 300, 200, 320, 260))] * 5
    x1, y1, x2, y2 = (a + b for a, b in zip((300, 200, 320, 260), step, strict=True))
    anchors = run([*still, dets((1, x1, y1, x2, y2))])
    assert bool(anchors[-1].jumped[0]) is jumped
    assert not any(a.jumped[0] for a in anchors[:-1])


def test_moving_track_does_not_jump_at_its_own_speed() -> None:
    """A fast car moving 40 px a frame: its own motion predicts every step."""
    anchors = run([dets((1, 40 * k, 100, 40 * k + 60, 140)) for k in range(1, 10)])
    assert not any(a.jumped[0] for a in anchors)
    assert anchors[-1].velocity[0, 0] == pytest.approx(400.0)


def test_velocity_ignores_a_box_that_jumps_for_one_step() -> None:
    """The median of the last steps: one box on something else does not drag it along."""
    frames = [dets((1, 100 + 10 * k, 100, 160 + 10 * k, 140)) for k in range(8)]
    frames.append(dets((1, 170, 100, 300, 140)))  # one wide box (two objects as one)
    a = run(frames)[-1]
    assert a.velocity[0, 0] == pytest.approx(100.0, abs=1.0)


def test_spread_of_a_jostled_track_is_large() -> None:
    rng = np.random.default_rng(3)
    frames = []
    for k in range(10):
        dx = 10 * k + rng.uniform(-8, 8)
        frames.append(dets((1, 100 + dx, 100, 130 + dx, 180)))
    steady = run([dets((1, 100 + 10 * k, 100, 130 + 10 * k, 180)) for k in range(10)])
    assert run(frames)[-1].spread[0] > 4 * steady[-1].spread[0] + 1.0


def test_state_is_bounded() -> None:
    """Forgotten after ``forget_s`` unseen; never more than ``max_tracks`` tracks."""
    est = AnchorEstimator(FRAME, forget_s=1.0, max_tracks=5)
    for k in range(50):
        est.update(dets((k, 10, 10, 40, 60)), k * DT)
        assert len(est) <= 5
    est.update(Detections.empty(), 50 * DT + 1.5)
    assert len(est) == 0
    assert STEPS <= 16  # per-track step history is a small fixed ring


def test_velocity_follows_a_change_of_motion_through_side_jitter() -> None:
    """A box that kept its shape, its sides jittering a pixel either way: the velocity is
    the mean step of its two sides, so it follows a change of motion within a few steps.
    (Picking the side closer to the old velocity each step held it near the old one: on
    the demo road, seed 3 at 57.6 s, a far walker's track that had been on a walker going
    the other way left with half its speed, and its re-identification 2.5 s later, past
    the line, failed.)"""
    left = [0, 1, 0, -1, 1, 0, -1, 0, 1, -1, 0, 1, -1, 0, 0, 1, -1, 1, 0, -1]
    right = [1, 0, -1, 0, 0, 1, 0, -1, -1, 1, 1, 0, 0, -1, 1, 0, 0, -1, 1, 0]
    frames, x = [], 300.0
    for k in range(20):
        x += 1.0 if k < 10 else -1.0  # 10 px/s right, then 10 px/s left
        frames.append(dets((1, x - 5 + left[k], 120.0, x + 5 + right[k], 150.0)))
    vx = [float(a.velocity[0, 0]) for a in run(frames)]
    assert vx[9] == pytest.approx(10.0, abs=2.5)
    assert vx[15:] == pytest.approx([-10.0] * 5, abs=2.5)
