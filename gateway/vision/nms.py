"""Non-maximum suppression over :class:`Detections`, vectorized with numpy.

Used by the detector after decoding and by the tiler to merge detections that
overlapping tiles found twice.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from gateway.vision.boxes import areas, box_iou
from gateway.vision.detections import Detections


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
    area = areas(boxes)
    keep: list[int] = []
    while order.size:
        best = int(order[0])
        keep.append(best)
        rest = order[1:]
        overlap = box_iou(boxes[best], boxes[rest], area[best : best + 1], area[rest])[0]
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
