"""A frame as it leaves a camera source."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np
from numpy.typing import NDArray


@dataclass(frozen=True, slots=True)
class Frame:
    """One decoded BGR image with its capture time and position in the stream.

    Attributes:
        image: ``(H, W, 3)`` uint8 BGR pixels.
        index: capture counter of the source (gaps mean frames were skipped).
        timestamp: wall-clock capture time, seconds since the epoch (UTC).
        pts_s: media time of the frame within its stream, seconds (for files and
            simulators the exact frame time; for live sources the monotonic capture time).
        mono: ``time.monotonic()`` when the frame was captured (latency measurements).
    """

    image: NDArray[np.uint8]
    index: int
    timestamp: float
    pts_s: float
    mono: float = field(default_factory=time.monotonic)

    @property
    def width(self) -> int:
        """Frame width in pixels."""
        return int(self.image.shape[1])

    @property
    def height(self) -> int:
        """Frame height in pixels."""
        return int(self.image.shape[0])
