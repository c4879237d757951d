"""Box geometry, the one place for it: areas, intersections, pairwise IoU, conversions.

Boxes are ``(N, 4)`` arrays: corner boxes ``xyxy`` (``x1, y1, x2, y2``) or centre/size
boxes ``cxcywh``. Used by NMS, the tracker's association, the detector's decoders and
the demo's scoring against the simulator's truth.
"""

from __future__ import annotations

from typing import TypeVar

import numpy as np
from numpy.typing import NDArray

F64 = NDArray[np.float64]
T = TypeVar("T", bound=np.floating)


def areas(xyxy: NDArray[np.floating]) -> F64:
    """``(N,)`` areas of corner boxes (an inverted box has area 0)."""
    b = np.asarray(xyxy, dtype=np.float64).reshape(-1, 4)
    wh = np.clip(b[:, 2:] - b[:, :2], 0.0, None)
    area: F64 = wh[:, 0] * wh[:, 1]
    return area


def intersections(a: NDArray[np.floating], b: NDArray[np.floating]) -> F64:
    """``(N, M)`` intersection areas of corner boxes ``a (N, 4)`` and ``b (M, 4)``."""
    a = np.asarray(a, dtype=np.float64).reshape(-1, 4)
    b = np.asarray(b, dtype=np.float64).reshape(-1, 4)
    w = np.minimum(a[:, None, 2], b[None, :, 2]) - np.maximum(a[:, None, 0], b[None, :, 0])
    h = np.minimum(a[:, None, 3], b[None, :, 3]) - np.maximum(a[:, None, 1], b[None, :, 1])
    out: F64 = np.clip(w, 0.0, None) * np.clip(h, 0.0, None)
    return out


def covered_share(box: NDArray[np.floating], others: NDArray[np.floating]) -> float:
    """Share of one corner box's area covered by the union of ``others (M, 4)``.

    Exact (the union is cut into the cells between the boxes' edges), meant for the few
    boxes around one object.
    """
    b = np.asarray(box, dtype=np.float64).reshape(4)
    area = max(float(b[2] - b[0]), 0.0) * max(float(b[3] - b[1]), 0.0)
    o = np.asarray(others, dtype=np.float64).reshape(-1, 4)
    if area <= 0.0 or not len(o):
        return 0.0
    c = np.column_stack(
        [
            np.maximum(o[:, 0], b[0]),
            np.maximum(o[:, 1], b[1]),
            np.minimum(o[:, 2], b[2]),
            np.minimum(o[:, 3], b[3]),
        ]
    )
    c = c[(c[:, 2] > c[:, 0]) & (c[:, 3] > c[:, 1])]
    if not len(c):
        return 0.0
    xs, ys = np.unique(c[:, [0, 2]]), np.unique(c[:, [1, 3]])
    mx, my = (xs[:-1] + xs[1:]) / 2, (ys[:-1] + ys[1:]) / 2
    inside = (
        (c[:, 0, None] <= mx[None, :])[:, :, None]
        & (mx[None, :] <= c[:, 2, None])[:, :, None]
        & (c[:, 1, None] <= my[None, :])[:, None, :]
        & (my[None, :] <= c[:, 3, None])[:, None, :]
    ).any(axis=0)
    cells = np.diff(xs)[:, None] * np.diff(ys)[None, :]
    return float((cells * inside).sum() / area)


def box_iou(
    a: NDArray[np.floating],
    b: NDArray[np.floating],
    area_a: F64 | None = None,
    area_b: F64 | None = None,
) -> F64:
    """``(N, M)`` intersection over union of corner boxes ``a (N, 4)`` and ``b (M, 4)``.

    Pairs whose union is empty have IoU 0. ``area_a`` / ``area_b`` may pass areas
    already computed (NMS computes them once for all its rounds).
    """
    a = np.asarray(a, dtype=np.float64).reshape(-1, 4)
    b = np.asarray(b, dtype=np.float64).reshape(-1, 4)
    inter = intersections(a, b)
    area_a = areas(a) if area_a is None else area_a
    area_b = areas(b) if area_b is None else area_b
    union = area_a[:, None] + area_b[None, :] - inter
    iou: F64 = np.divide(inter, union, out=np.zeros_like(inter), where=union > 0)
    return iou


def xyxy_to_cxcywh(boxes: NDArray[np.floating]) -> F64:
    """``(N, 4)`` corner boxes to centre/size boxes."""
    b = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    wh = b[:, 2:] - b[:, :2]
    return np.hstack([b[:, :2] + wh * 0.5, wh])


def cxcywh_to_xyxy(boxes: NDArray[T], min_size: float = 0.0) -> NDArray[T]:
    """``(N, 4)`` centre/size boxes to corner boxes, in the input's dtype.

    Sizes below ``min_size`` are raised to it (the tracker keeps predicted boxes at
    least one pixel wide).
    """
    wh = boxes[:, 2:4] if min_size <= 0 else np.maximum(boxes[:, 2:4], min_size)
    half = wh * 0.5
    return np.concatenate([boxes[:, :2] - half, boxes[:, :2] + half], axis=1).astype(
        boxes.dtype, copy=False
    )
