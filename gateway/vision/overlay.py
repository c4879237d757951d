"""An overlay of detections, counting lines and zones on a frame ("what the unit sees")."""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np
from numpy.typing import NDArray

from gateway.config.vision import CameraConfig
from gateway.vision.detections import NO_TRACK, Detections

LINE_COLOUR = (0, 255, 255)  # BGR yellow
ZONE_COLOUR = (255, 160, 0)  # BGR light blue
BOX_COLOUR = (0, 200, 0)


def _px(point: Sequence[float], w: int, h: int) -> tuple[int, int]:
    return round(point[0] * (w - 1)), round(point[1] * (h - 1))


def draw_overlay(
    image: NDArray[np.uint8],
    detections: Detections | None = None,
    labels: Sequence[str] = (),
    camera: CameraConfig | None = None,
) -> NDArray[np.uint8]:
    """Draw boxes (label, score, track id), counting lines and zones on a copy of ``image``."""
    out = image.copy()
    h, w = out.shape[:2]
    if camera is not None:
        for zone in camera.zones:
            pts = np.array([_px(p, w, h) for p in zone.points], dtype=np.int32)
            cv2.polylines(out, [pts], isClosed=True, color=ZONE_COLOUR, thickness=2)
            cv2.putText(out, zone.id, tuple(pts[0]), cv2.FONT_HERSHEY_SIMPLEX, 0.5, ZONE_COLOUR, 1)
        for line in camera.lines:
            p1, p2 = _px(line.points[0], w, h), _px(line.points[1], w, h)
            cv2.line(out, p1, p2, LINE_COLOUR, 2)
            cv2.circle(
                out, p1, 4, LINE_COLOUR, -1
            )  # point 1 is filled: directions are seen from it
            text_at = (min(max(p1[0] + 6, 2), w - 60), min(max(p1[1] - 6, 14), h - 4))
            cv2.putText(out, line.id, text_at, cv2.FONT_HERSHEY_SIMPLEX, 0.5, LINE_COLOUR, 1)
    if detections is not None:
        for i in range(len(detections)):
            x1, y1, x2, y2 = (round(float(v)) for v in detections.xyxy[i])
            cid = int(detections.class_id[i])
            text = labels[cid] if 0 <= cid < len(labels) else str(cid)
            text += f" {float(detections.score[i]):.2f}"
            if detections.tracker_id[i] != NO_TRACK:
                text += f" #{int(detections.tracker_id[i])}"
            cv2.rectangle(out, (x1, y1), (x2, y2), BOX_COLOUR, 2)
            cv2.putText(
                out, text, (x1, max(10, y1 - 4)), cv2.FONT_HERSHEY_SIMPLEX, 0.45, BOX_COLOUR, 1
            )
    return out
