"""Motion gating: find moving regions cheaply so inference runs only where it matters.

The approach of Frigate's motion detector: the frame is downscaled and turned grey,
compared with a running-average background, the difference is thresholded and
dilated, and the contours of what remains are the moving boxes. The pipeline uses
them to skip inference on still frames (``skip``) or to run it only on crops
around the moving regions (``regions``); every ``keyframe_interval`` frames the
full frame is inferred regardless.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
from numpy.typing import NDArray

from gateway.config.vision import MotionConfig

WORK_HEIGHT = 180  # rows of the downscaled grey image the detector works on
ALPHA = 0.05  # weight of the newest frame in the running-average background


@dataclass(frozen=True, slots=True)
class MotionResult:
    """What one frame's motion check found.

    Attributes:
        boxes: ``(M, 4)`` float32 moving boxes ``x1, y1, x2, y2`` in frame pixels.
        fraction: share of the frame's pixels that changed.
        keyframe: this frame must be inferred whatever the motion.
    """

    boxes: NDArray[np.float32]
    fraction: float
    keyframe: bool

    @property
    def moving(self) -> bool:
        """Whether anything moved."""
        return len(self.boxes) > 0


class MotionDetector:
    """Running-average background subtraction on a downscaled grey frame."""

    def __init__(self, cfg: MotionConfig) -> None:
        self.cfg = cfg
        self._background: NDArray[np.float32] | None = None
        self._since_keyframe = 0
        self._kernel = np.ones((3, 3), np.uint8)

    def reset(self) -> None:
        """Forget the background (after a reconnect or a scene change)."""
        self._background = None
        self._since_keyframe = 0

    def detect(self, image: NDArray[np.uint8]) -> MotionResult:
        """Update the background with ``image`` (BGR) and return its moving boxes."""
        h, w = image.shape[:2]
        scale = min(1.0, WORK_HEIGHT / h)
        small = cv2.resize(
            image,
            (max(1, round(w * scale)), max(1, round(h * scale))),
            interpolation=cv2.INTER_AREA,
        )
        grey = cv2.GaussianBlur(cv2.cvtColor(small, cv2.COLOR_BGR2GRAY), (5, 5), 0).astype(
            np.float32
        )
        keyframe = (
            self._background is None or self._since_keyframe + 1 >= self.cfg.keyframe_interval
        )
        self._since_keyframe = 0 if keyframe else self._since_keyframe + 1
        if self._background is None or self._background.shape != grey.shape:
            self._background = grey
            return MotionResult(np.empty((0, 4), np.float32), 1.0, True)
        diff = cv2.absdiff(grey, self._background)
        cv2.accumulateWeighted(grey, self._background, ALPHA)
        mask = cv2.dilate(
            np.where(diff > self.cfg.threshold, 255, 0).astype(np.uint8), self._kernel, iterations=2
        )
        fraction = float(np.count_nonzero(mask)) / mask.size
        contours, _ = cv2.findContours(mask, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
        min_area = self.cfg.min_area * mask.size
        boxes = [cv2.boundingRect(c) for c in contours if cv2.contourArea(c) >= min_area]
        if not boxes:
            return MotionResult(np.empty((0, 4), np.float32), fraction, keyframe)
        arr = np.array([[x, y, x + bw, y + bh] for x, y, bw, bh in boxes], dtype=np.float32) / scale
        arr[:, [0, 2]] = arr[:, [0, 2]].clip(0, w)
        arr[:, [1, 3]] = arr[:, [1, 3]].clip(0, h)
        return MotionResult(arr, fraction, keyframe)


def merge_regions(
    boxes: NDArray[np.float32],
    frame_size: tuple[int, int],
    min_size: tuple[int, int],
    margin: float = 0.25,
) -> list[tuple[int, int, int, int]]:
    """Crops to infer around moving boxes: grown, at least ``min_size``, overlaps merged.

    Args:
        boxes: ``(M, 4)`` moving boxes in frame pixels.
        frame_size: ``(width, height)`` of the frame.
        min_size: ``(width, height)`` a crop is grown to at least (the model input size:
            a smaller crop would only be upscaled).
        margin: growth on each side, as a fraction of the box size.

    Returns:
        Integer crops ``(x1, y1, x2, y2)`` inside the frame, pairwise disjoint.
    """
    fw, fh = frame_size
    mw, mh = min(min_size[0], fw), min(min_size[1], fh)
    crops: list[list[float]] = []
    for bx1, by1, bx2, by2 in boxes.tolist():
        dx, dy = (bx2 - bx1) * margin, (by2 - by1) * margin
        crops.append(_fit([bx1 - dx, by1 - dy, bx2 + dx, by2 + dy], mw, mh, fw, fh))
    merged = True
    while merged:  # union overlapping crops until none overlap (at most M passes)
        merged = False
        out: list[list[float]] = []
        for crop in crops:
            for other in out:
                if (
                    crop[0] < other[2]
                    and other[0] < crop[2]
                    and crop[1] < other[3]
                    and other[1] < crop[3]
                ):
                    other[:] = [
                        min(crop[0], other[0]),
                        min(crop[1], other[1]),
                        max(crop[2], other[2]),
                        max(crop[3], other[3]),
                    ]
                    merged = True
                    break
            else:
                out.append(crop)
        crops = out
    return [(round(a), round(b), round(c), round(d)) for a, b, c, d in crops]


def _fit(box: list[float], mw: float, mh: float, fw: float, fh: float) -> list[float]:
    """Grow ``box`` about its centre to at least ``mw x mh`` and shift it inside the frame."""
    x1, y1, x2, y2 = box
    if x2 - x1 < mw:
        cx = (x1 + x2) / 2
        x1, x2 = cx - mw / 2, cx + mw / 2
    if y2 - y1 < mh:
        cy = (y1 + y2) / 2
        y1, y2 = cy - mh / 2, cy + mh / 2
    if x1 < 0:
        x1, x2 = 0.0, x2 - x1
    if y1 < 0:
        y1, y2 = 0.0, y2 - y1
    if x2 > fw:
        x1, x2 = max(0.0, x1 - (x2 - fw)), float(fw)
    if y2 > fh:
        y1, y2 = max(0.0, y1 - (y2 - fh)), float(fh)
    return [x1, y1, x2, y2]
