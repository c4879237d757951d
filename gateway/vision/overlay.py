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
SIDE_OFFSET = 18  # pixels from the line to its L and R marks
SIDE_AT = 0.3  # where along the line (from point 1) the marks sit


def _px(point: Sequence[float], w: int, h: int) -> tuple[int, int]:
    return round(point[0] * (w - 1)), round(point[1] * (h - 1))


def _label(image: NDArray[np.uint8], text: str, at: tuple[int, int], scale: float) -> None:
    """``text`` centred on ``at`` (kept inside the frame), outlined so it reads on any scene."""
    h, w = image.shape[:2]
    (tw, th), _ = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, scale, 1)
    x = min(max(at[0] - tw // 2, 2), w - tw - 2)
    y = min(max(at[1] + th // 2, th + 2), h - 3)
    cv2.putText(image, text, (x, y), cv2.FONT_HERSHEY_SIMPLEX, scale, (0, 0, 0), 3)
    cv2.putText(image, text, (x, y), cv2.FONT_HERSHEY_SIMPLEX, scale, LINE_COLOUR, 1)


def _draw_line(
    image: NDArray[np.uint8], p1: tuple[int, int], p2: tuple[int, int], line_id: str
) -> None:
    """A counting line as an arrow from point 1 to point 2, its sides marked L and R.

    Seen from point 1 looking at point 2 (the arrow), an object going from the L side to
    the R side crosses ``left_to_right``. In image coordinates (y down) the left-hand
    side is along the normal ``(dy, -dx)`` of the direction ``(dx, dy)``.
    """
    length = max(1.0, float(np.hypot(p2[0] - p1[0], p2[1] - p1[1])))
    cv2.arrowedLine(image, p1, p2, LINE_COLOUR, 2, tipLength=min(0.25, 18.0 / length))
    cv2.circle(image, p1, 4, LINE_COLOUR, -1)  # point 1 is filled: directions are seen from it
    ux, uy = (p2[0] - p1[0]) / length, (p2[1] - p1[1]) / length
    t = SIDE_AT  # along the line from point 1: crossing lines rarely share this point
    mid = (p1[0] + t * (p2[0] - p1[0]), p1[1] + t * (p2[1] - p1[1]))
    for text, sign in (("L", 1.0), ("R", -1.0)):
        at = (round(mid[0] + sign * uy * SIDE_OFFSET), round(mid[1] - sign * ux * SIDE_OFFSET))
        _label(image, text, at, 0.6)
    _label(image, line_id, (round(p1[0] - ux * 14), round(p1[1] - uy * 14)), 0.5)


def draw_overlay(
    image: NDArray[np.uint8],
    detections: Detections | None = None,
    labels: Sequence[str] = (),
    camera: CameraConfig | None = None,
) -> NDArray[np.uint8]:
    """Draw boxes (label, score, track id), counting lines and zones on a copy of ``image``.

    Each line is an arrow from point 1 to point 2 with its left (L) and right (R) sides
    marked: an object going from L to R crosses ``left_to_right``.
    """
    out = image.copy()
    h, w = out.shape[:2]
    if camera is not None:
        for zone in camera.zones:
            pts = np.array([_px(p, w, h) for p in zone.points], dtype=np.int32)
            cv2.polylines(out, [pts], isClosed=True, color=ZONE_COLOUR, thickness=2)
            cv2.putText(out, zone.id, tuple(pts[0]), cv2.FONT_HERSHEY_SIMPLEX, 0.5, ZONE_COLOUR, 1)
        for line in camera.lines:
            _draw_line(out, _px(line.points[0], w, h), _px(line.points[1], w, h), line.id)
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
