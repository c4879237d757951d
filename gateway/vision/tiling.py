"""Tiled inference: small, far objects in a large frame survive the model's downscale.

The frame is cut into a ``rows x cols`` grid of overlapping tiles, each tile is
detected on its own and its boxes are shifted back to frame pixels; optionally the
whole frame (downscaled by the detector as usual) is detected too so objects larger
than a tile are still found whole. :func:`gateway.vision.seams.merge_tiles` merges
them before tracking: parts of an object cut by a seam become one box, and a partial
box never stands next to the whole one.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
from numpy.typing import NDArray

from gateway.config.vision import TilingConfig
from gateway.vision.detections import Detections
from gateway.vision.seams import merge_tiles

Box = tuple[int, int, int, int]
DetectFn = Callable[[NDArray[np.uint8]], Detections]

AUTO_TILE_FACTOR = 2.0  # auto mode: one tile per this many model inputs along each axis


def grid_for(
    cfg: TilingConfig, frame_size: tuple[int, int], input_size: tuple[int, int]
) -> tuple[int, int]:
    """``(rows, cols)`` for a frame of ``(width, height)`` and a model input of ``(h, w)``.

    ``off`` is 1x1, ``grid`` the configured grid, ``auto`` one tile per
    :data:`AUTO_TILE_FACTOR` model inputs along each axis (a 1920x1080 frame with a
    416x416 model gives 2 rows x 3 cols; a frame under twice the input is not tiled).
    """
    if cfg.mode == "off":
        return 1, 1
    if cfg.mode == "grid":
        return cfg.rows, cfg.cols
    fw, fh = frame_size
    ih, iw = input_size
    cols = max(1, math.ceil(fw / (iw * AUTO_TILE_FACTOR) - 1e-9))
    rows = max(1, math.ceil(fh / (ih * AUTO_TILE_FACTOR) - 1e-9))
    return min(rows, 8), min(cols, 8)


def tile_boxes(frame_size: tuple[int, int], rows: int, cols: int, overlap: float) -> list[Box]:
    """Cover a ``(width, height)`` frame with overlapping tiles ``(x1, y1, x2, y2)``.

    Adjacent tiles share ``overlap`` of a tile's width/height; the last tile of a
    row/column ends exactly at the frame edge.
    """
    fw, fh = frame_size

    def spans(length: int, n: int) -> list[tuple[int, int]]:
        if n <= 1:
            return [(0, length)]
        size = length / (n - (n - 1) * overlap)
        step = size * (1 - overlap)
        out = []
        for i in range(n):
            start = round(i * step)
            end = length if i == n - 1 else round(i * step + size)
            out.append((start, end))
        return out

    return [(x1, y1, x2, y2) for y1, y2 in spans(fh, rows) for x1, x2 in spans(fw, cols)]


def offset(dets: Detections, dx: float, dy: float) -> Detections:
    """Shift detections by ``(dx, dy)`` pixels."""
    if not len(dets) or (dx == 0 and dy == 0):
        return dets
    shift = np.array([dx, dy, dx, dy], dtype=np.float32)
    return Detections(dets.xyxy + shift, dets.score, dets.class_id, dets.tracker_id)


def detect_crops(image: NDArray[np.uint8], crops: list[Box], detect: DetectFn) -> list[Detections]:
    """Detect inside each crop; boxes come back in frame pixels."""
    parts = []
    for x1, y1, x2, y2 in crops:
        tile = np.ascontiguousarray(image[y1:y2, x1:x2])
        parts.append(offset(detect(tile), x1, y1))
    return parts


class Tiler:
    """Runs a detector over tiles of a frame and merges the results."""

    def __init__(
        self, cfg: TilingConfig, input_size: tuple[int, int], nms_iou: float = 0.45
    ) -> None:
        """Configure for a model of ``input_size`` ``(h, w)``; ``nms_iou`` merges tile overlaps."""
        self.cfg = cfg
        self.input_size = input_size
        self.nms_iou = nms_iou
        self._grid: dict[
            tuple[int, int], list[Box]
        ] = {}  # frame size -> tiles (one entry per size seen)

    def tiles(self, frame_size: tuple[int, int]) -> list[Box]:
        """Return the tiles for this frame size (empty when tiling is off or 1x1)."""
        cached = self._grid.get(frame_size)
        if cached is None:
            rows, cols = grid_for(self.cfg, frame_size, self.input_size)
            cached = (
                [] if rows * cols == 1 else tile_boxes(frame_size, rows, cols, self.cfg.overlap)
            )
            if len(self._grid) >= 8:  # bounded: a camera changes resolution rarely
                self._grid.clear()
            self._grid[frame_size] = cached
        return cached

    def active(self, frame_size: tuple[int, int]) -> bool:
        """Whether frames of this size are tiled."""
        return bool(self.tiles(frame_size))

    def detect(self, image: NDArray[np.uint8], detect: DetectFn) -> Detections:
        """Detect on every tile (plus the whole frame when configured) and merge them."""
        h, w = image.shape[:2]
        tiles = self.tiles((w, h))
        if not tiles:
            return detect(image)
        parts = detect_crops(image, tiles, detect)
        full = detect(image) if self.cfg.full_frame else None
        return merge_tiles(parts, tiles, (w, h), full, self.nms_iou)
