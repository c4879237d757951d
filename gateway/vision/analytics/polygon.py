"""A polygon prepared once for many point and box tests per frame (flow measures).

The same even-odd rule as :func:`gateway.vision.analytics.zones.points_in_polygon`, with
the edges precomputed and a bounding-box test first, so a frame with nothing near the
polygon costs two comparisons.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

F64 = NDArray[np.float64]
# Points of a box tested against a polygon: corners, edge midpoints and centre.
_BOX_POINTS = np.array([(fx, fy) for fx in (0.0, 0.5, 1.0) for fy in (0.0, 0.5, 1.0)])


class Polygon:
    """Pixel polygon ``(M, 2)`` with its edges and bounding box."""

    def __init__(self, points: NDArray[np.floating]) -> None:
        """Prepare the polygon."""
        poly = np.asarray(points, dtype=np.float64).reshape(-1, 2)
        self.points = poly
        self.x1, self.y1 = poly[:, 0], poly[:, 1]
        self.x2, self.y2 = np.roll(self.x1, -1), np.roll(self.y1, -1)
        self.dy = np.where(self.y2 == self.y1, 1.0, self.y2 - self.y1)
        self.lo = poly.min(axis=0)
        self.hi = poly.max(axis=0)

    def contains(self, points: NDArray[np.floating]) -> NDArray[np.bool_]:
        """Even-odd test of ``(N, 2)`` points."""
        pts = np.asarray(points, dtype=np.float64).reshape(-1, 2)
        out = np.zeros(len(pts), dtype=bool)
        near = np.flatnonzero(np.all((pts >= self.lo) & (pts <= self.hi), axis=1))
        if not len(near):
            return out
        x, y = pts[near, 0:1], pts[near, 1:2]
        straddles = (self.y1 > y) != (self.y2 > y)
        x_cross = self.x1 + (y - self.y1) * (self.x2 - self.x1) / self.dy
        out[near] = ((straddles & (x < x_cross)).sum(axis=1) % 2) == 1
        return out

    def overlaps_boxes(self, xyxy: NDArray[np.floating]) -> NDArray[np.bool_]:
        """Rows whose box overlaps the polygon (box points inside it, or a vertex in the box)."""
        boxes = np.asarray(xyxy, dtype=np.float64).reshape(-1, 4)
        out = np.zeros(len(boxes), dtype=bool)
        near = np.flatnonzero(
            (boxes[:, 0] <= self.hi[0])
            & (boxes[:, 2] >= self.lo[0])
            & (boxes[:, 1] <= self.hi[1])
            & (boxes[:, 3] >= self.lo[1])
        )
        if not len(near):
            return out
        b = boxes[near]
        x1, y1, x2, y2 = (b[:, k : k + 1] for k in range(4))
        px = x1 + (x2 - x1) * _BOX_POINTS[:, 0]
        py = y1 + (y2 - y1) * _BOX_POINTS[:, 1]
        hit = self.contains(np.stack([px.ravel(), py.ravel()], axis=1)).reshape(len(b), -1)
        vx, vy = self.points[:, 0], self.points[:, 1]
        vertex_in = ((vx >= x1) & (vx <= x2) & (vy >= y1) & (vy <= y2)).any(axis=1)
        out[near] = hit.any(axis=1) | vertex_in
        return out
