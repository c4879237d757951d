"""The camera mount: shift and rotate the simulated view (wind, a knock, a loose bracket).

A :class:`Mount` gives, for a simulated time, the image-space similarity (rotation
about the frame centre and a translation, in pixels) by which the view has moved since
set-up: nothing until ``at_s``, then a linear ramp to the full move over ``ramp_s``.
The top-down renderer composes it into its ground-to-image homography (so the ground
truth moves with the picture); :func:`warp` applies it to any finished frame.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np
from numpy.typing import NDArray

F64 = NDArray[np.float64]


@dataclass(frozen=True, slots=True)
class Mount:
    """A move of the view: ``shift_px`` (right, down), ``rotate_deg`` (clockwise on screen)."""

    shift_px: tuple[float, float] = (0.0, 0.0)
    rotate_deg: float = 0.0
    at_s: float = 0.0
    ramp_s: float = 0.0

    def fraction(self, t: float) -> float:
        """How much of the move has happened at simulated time ``t`` (0..1)."""
        if t < self.at_s:
            return 0.0
        if self.ramp_s <= 0:
            return 1.0
        return min(1.0, (t - self.at_s) / self.ramp_s)

    def matrix(self, t: float, size: tuple[int, int]) -> F64:
        """The 3x3 image-space transform at ``t`` for a ``(width, height)`` frame."""
        f = self.fraction(t)
        theta = math.radians(self.rotate_deg * f)
        cx, cy = size[0] / 2, size[1] / 2
        c, s = math.cos(theta), math.sin(theta)
        dx, dy = self.shift_px[0] * f, self.shift_px[1] * f
        # Rotate about the centre (y down: positive angle turns clockwise on screen), then shift.
        return np.array(
            [
                [c, -s, cx - c * cx + s * cy + dx],
                [s, c, cy - s * cx - c * cy + dy],
                [0.0, 0.0, 1.0],
            ]
        )

    @property
    def still(self) -> bool:
        """Whether this mount never moves."""
        return self.shift_px == (0.0, 0.0) and self.rotate_deg == 0.0


FIXED = Mount()


def warp(image: NDArray[np.uint8], matrix: F64) -> NDArray[np.uint8]:
    """Apply an image-space transform to a frame (edges replicated, like a real lens)."""
    h, w = image.shape[:2]
    out = cv2.warpAffine(
        image, matrix[:2], (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE
    )
    return np.asarray(out, dtype=np.uint8)
