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
        steady_s: the frame's time on a clock that never steps, for durations (track
            ages, dwell, stopped-vehicle timers, speeds, aggregate intervals). Live
            captures set the monotonic capture time, so an NTP step of the wall clock
            (a unit without an RTC) moves event timestamps but no duration. ``None``
            when ``timestamp`` itself is steady (frames stamped with media time).
    """

    image: NDArray[np.uint8]
    index: int
    timestamp: float
    pts_s: float
    mono: float = field(default_factory=time.monotonic)
    steady_s: float | None = None

    @property
    def steady(self) -> float:
        """The time analytics measure durations with (see ``steady_s``)."""
        return self.timestamp if self.steady_s is None else self.steady_s

    @property
    def width(self) -> int:
        """Frame width in pixels."""
        return int(self.image.shape[1])

    @property
    def height(self) -> int:
        """Frame height in pixels."""
        return int(self.image.shape[0])
