"""Non-maximum suppression over :class:`Detections`, vectorized with numpy.

Used by the detector after decoding and by the tiler to merge detections that
overlapping tiles found twice.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from gateway.vision.detections import Detections


def box_iou(a: NDArray[np.floating], b: NDArray[np.floating]) -> NDArray[np.float32]:
    """Pairwise IoU of ``(N, 4)`` and ``(M, 4)`` xyxy boxes as an ``(N, M)`` matrix."""
    a = np.asarray(a, dtype=np.float32).reshape(-1, 4)
    b = np.asarray(b, dtype=np.float32).reshape(-1, 4)
    top_left = np.maximum(a[:, None, :2], b[None, :, :2])
    bottom_right = np.minimum(a[:, None, 2:], b[None, :, 2:])
    wh = np.clip(bottom_right - top_left, 0.0, None)
    inter = wh[..., 0] * wh[..., 1]
    area_a = np.prod(np.clip(a[:, 2:] - a[:, :2], 0.0, None), axis=1)
    area_b = np.prod(np.clip(b[:, 2:] - b[:, :2], 0.0, None), axis=1)
    union = area_a[:, None] + area_b[None, :] - inter
    with np.errstate(divide="ignore", invalid="ignore"):
        iou = np.where(union > 0, inter / union, 0.0)
    return iou.astype(np.float32, copy=False)


def nms_indices(
    xyxy: NDArray[np.floating],
    score: NDArray[np.floating],
    iou: float,
    class_id: NDArray[np.integer] | None = None,
) -> NDArray[np.int64]:
    """Return the indices of the boxes greedy NMS keeps, best score first.

    A box is suppressed when its IoU with a better-scoring kept box is above ``iou``.
    With ``class_id`` boxes only suppress boxes of their own class (each class is
    shifted into its own coordinate range, so one pass handles every class).
    """
    boxes = np.asarray(xyxy, dtype=np.float64).reshape(-1, 4)
    if len(boxes) == 0:
        return np.empty(0, dtype=np.int64)
    if class_id is not None:
        span = float(np.abs(boxes).max()) * 2.0 + 1.0
        boxes = boxes + (np.asarray(class_id, dtype=np.float64) * span)[:, None]
    order = np.argsort(-np.asarray(score, dtype=np.float32), kind="stable")
    x1, y1, x2, y2 = boxes[:, 0], boxes[:, 1], boxes[:, 2], boxes[:, 3]
    areas = np.clip(x2 - x1, 0.0, None) * np.clip(y2 - y1, 0.0, None)
    keep: list[int] = []
    while order.size:
        best = int(order[0])
        keep.append(best)
        rest = order[1:]
        w = np.clip(np.minimum(x2[best], x2[rest]) - np.maximum(x1[best], x1[rest]), 0.0, None)
        h = np.clip(np.minimum(y2[best], y2[rest]) - np.maximum(y1[best], y1[rest]), 0.0, None)
        inter = w * h
        union = areas[best] + areas[rest] - inter
        overlap = np.divide(inter, union, out=np.zeros_like(inter), where=union > 0)
        order = rest[overlap <= iou]
    return np.asarray(keep, dtype=np.int64)


def nms(dets: Detections, iou: float, class_aware: bool = True) -> Detections:
    """Return the detections greedy NMS keeps, best score first.

    ``class_aware`` (default) only lets a box suppress boxes of its own class;
    otherwise any overlapping box is suppressed regardless of class.
    """
    if len(dets) <= 1:
        return dets
    keep = nms_indices(dets.xyxy, dets.score, iou, dets.class_id if class_aware else None)
    return dets[keep]
