"""Greedy NMS over Detections, table-driven."""

from __future__ import annotations

import numpy as np
import pytest

from gateway.vision.boxes import box_iou, covered_share
from gateway.vision.detections import Detections
from gateway.vision.nms import nms, nms_indices

CAR, PERSON = 2, 0


def dets(*objs: tuple[list[float], float, int]) -> Detections:
    """Detections from ``(box, score, class_id)`` tuples."""
    if not objs:
        return Detections.empty()
    return Detections.from_arrays([o[0] for o in objs], [o[1] for o in objs], [o[2] for o in objs])


A = [0.0, 0.0, 10.0, 10.0]
A_SHIFTED = [1.0, 0.0, 11.0, 10.0]  # IoU with A = 90 / 110 = 0.818
A_HALF = [5.0, 0.0, 15.0, 10.0]  # IoU with A = 50 / 150 = 0.333
FAR = [100.0, 100.0, 120.0, 130.0]


@pytest.mark.parametrize(
    ("a", "b", "expected"),
    [
        (A, A, 1.0),
        (A, A_SHIFTED, 90 / 110),
        (A, A_HALF, 50 / 150),
        (A, FAR, 0.0),
        (A, [10.0, 0.0, 20.0, 10.0], 0.0),  # touching edges
        (A, [0.0, 0.0, 0.0, 0.0], 0.0),  # degenerate box: no division by zero
    ],
)
def test_box_iou(a: list[float], b: list[float], expected: float) -> None:
    assert box_iou(np.array([a]), np.array([b]))[0, 0] == pytest.approx(expected, abs=1e-6)


@pytest.mark.parametrize(
    ("others", "expected"),
    [
        ([], 0.0),
        ([[0, 0, 10, 10]], 1.0),
        ([[5, 0, 20, 10]], 0.5),
        # Two halves that overlap each other: the union, not the sum.
        ([[0, 0, 6, 10], [4, 0, 10, 10]], 1.0),
        ([[0, 0, 6, 5], [4, 0, 10, 5], [0, 5, 5, 10]], 0.75),
        ([[20, 20, 30, 30], [0, 0, 0, 10]], 0.0),  # apart, and an empty box
        ([[-5, -5, 15, 15]], 1.0),  # larger than the box
    ],
)
def test_covered_share(others: list[list[float]], expected: float) -> None:
    """The share of one box covered by the union of others, exactly."""
    box = np.array([0, 0, 10, 10], dtype=np.float32)
    got = covered_share(box, np.array(others, dtype=np.float32).reshape(-1, 4))
    assert got == pytest.approx(expected)


def test_covered_share_matches_sampling() -> None:
    """Random unions against counting covered points on a fine grid."""
    rng = np.random.default_rng(3)
    xs = (np.arange(200) + 0.5) / 2
    gx, gy = np.meshgrid(xs, xs)
    for _ in range(20):
        box = np.array([10, 20, 80, 90], dtype=np.float64)
        lo = rng.uniform(0, 90, (4, 2))
        others = np.column_stack([lo, lo + rng.uniform(5, 40, (4, 2))])
        inside_box = (gx >= 10) & (gx < 80) & (gy >= 20) & (gy < 90)
        hit = np.zeros_like(inside_box)
        for x1, y1, x2, y2 in others:
            hit |= (gx >= x1) & (gx < x2) & (gy >= y1) & (gy < y2)
        want = (hit & inside_box).sum() / inside_box.sum()
        assert covered_share(box, others) == pytest.approx(want, abs=0.02)


def test_box_iou_is_pairwise_matrix() -> None:
    iou = box_iou(np.array([A, FAR]), np.array([A, A_HALF, FAR]))
    assert iou.shape == (2, 3)
    np.testing.assert_allclose(iou, [[1.0, 1 / 3, 0.0], [0.0, 0.0, 1.0]], atol=1e-6)


# (detections, iou threshold, class_aware, expected kept (box, score, class) in order)
CASES = [
    pytest.param([], 0.5, True, [], id="empty"),
    pytest.param([(A, 0.9, CAR)], 0.5, True, [(A, 0.9, CAR)], id="single"),
    pytest.param(
        [(A_SHIFTED, 0.8, CAR), (A, 0.9, CAR)],
        0.5,
        True,
        [(A, 0.9, CAR)],
        id="duplicate-same-class-suppressed-best-kept",
    ),
    pytest.param(
        [(A, 0.9, CAR), (A_SHIFTED, 0.8, PERSON)],
        0.5,
        True,
        [(A, 0.9, CAR), (A_SHIFTED, 0.8, PERSON)],
        id="class-aware-keeps-other-class",
    ),
    pytest.param(
        [(A, 0.9, CAR), (A_SHIFTED, 0.8, PERSON)],
        0.5,
        False,
        [(A, 0.9, CAR)],
        id="class-agnostic-suppresses-other-class",
    ),
    pytest.param(
        [(A, 0.9, CAR), (A_HALF, 0.8, CAR)],
        0.5,
        True,
        [(A, 0.9, CAR), (A_HALF, 0.8, CAR)],
        id="overlap-below-threshold-kept",
    ),
    pytest.param(
        [(A, 0.9, CAR), (A_HALF, 0.8, CAR)],
        0.3,
        True,
        [(A, 0.9, CAR)],
        id="overlap-above-lower-threshold-suppressed",
    ),
    pytest.param(
        [(A_HALF, 0.7, CAR), (A, 0.9, CAR), (FAR, 0.95, CAR), (A_SHIFTED, 0.8, CAR)],
        0.5,
        True,
        [(FAR, 0.95, CAR), (A, 0.9, CAR), (A_HALF, 0.7, CAR)],
        id="sorted-by-score-chain",
    ),
    pytest.param(
        [(A, 0.9, CAR), (A, 0.9, CAR)],
        0.5,
        True,
        [(A, 0.9, CAR)],
        id="exact-tie-first-kept",
    ),
]


@pytest.mark.parametrize(("objs", "iou", "class_aware", "expected"), CASES)
def test_nms(
    objs: list[tuple[list[float], float, int]],
    iou: float,
    class_aware: bool,
    expected: list[tuple[list[float], float, int]],
) -> None:
    out = nms(dets(*objs), iou, class_aware=class_aware)
    assert len(out) == len(expected)
    for i, (box, score, class_id) in enumerate(expected):
        np.testing.assert_allclose(out.xyxy[i], box)
        assert out.score[i] == pytest.approx(score)
        assert out.class_id[i] == class_id


def test_nms_keeps_tracker_ids_of_survivors() -> None:
    d = dets((A, 0.9, CAR), (A_SHIFTED, 0.8, CAR), (FAR, 0.7, CAR)).with_tracker_ids([4, 5, 6])
    assert nms(d, 0.5).tracker_id.tolist() == [4, 6]


def test_class_offset_does_not_merge_far_classes_with_negative_coords() -> None:
    # Boxes partly outside the frame (negative coordinates, as tiles can produce).
    boxes = np.array([[-50.0, -50.0, 10.0, 10.0], [-49.0, -50.0, 11.0, 10.0]])
    keep = nms_indices(boxes, np.array([0.9, 0.8]), 0.5, np.array([0, 79]))
    assert keep.tolist() == [0, 1]
    assert nms_indices(boxes, np.array([0.9, 0.8]), 0.5, np.array([3, 3])).tolist() == [0]


def test_nms_many_random_boxes_matches_reference_loop() -> None:
    rng = np.random.default_rng(7)
    xy = rng.uniform(0, 200, size=(300, 2))
    wh = rng.uniform(5, 60, size=(300, 2))
    boxes = np.concatenate([xy, xy + wh], axis=1).astype(np.float32)
    scores = rng.uniform(0, 1, size=300).astype(np.float32)
    classes = rng.integers(0, 3, size=300)
    # Straightforward O(n^2) reference: visit by score, keep if no kept same-class box overlaps.
    kept: list[int] = []
    for i in np.argsort(-scores, kind="stable"):
        if all(
            classes[k] != classes[i] or box_iou(boxes[[k]], boxes[[i]])[0, 0] <= 0.45 for k in kept
        ):
            kept.append(int(i))
    assert nms_indices(boxes, scores, 0.45, classes).tolist() == kept
