"""Multi-object tracking: give each detected object a stable id across frames.

Trackers are chosen by the ``type`` of :class:`~gateway.config.vision.TrackerConfig`
from the explicit registry :data:`TRACKERS`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Protocol

from gateway.config.vision import TrackerConfig
from gateway.errors import ConfigError
from gateway.vision.detections import Detections
from gateway.vision.tracker.bytetrack import ByteTracker


class Tracker(Protocol):
    """What every tracker does."""

    def update(self, detections: Detections, timestamp: float) -> Detections:
        """Return the detections of confirmed tracks matched at ``timestamp``, ids set.

        Call with :meth:`Detections.empty` on skipped frames so that tracks age.
        """
        ...

    def reset(self) -> None:
        """Forget every track."""
        ...

    @property
    def births(self) -> Mapping[int, tuple[tuple[float, float, float, float], float]]:
        """Tracks confirmed by the latest update: their first box and its timestamp.

        Keyed by track id; the box is ``x1, y1, x2, y2`` (where the object was first
        detected, before the track was confirmed and reported).
        """
        ...


TRACKERS: dict[str, Callable[[TrackerConfig], Tracker]] = {"bytetrack": ByteTracker}


def make_tracker(cfg: TrackerConfig | None = None) -> Tracker:
    """Build the tracker named by ``cfg.type`` (ByteTrack with defaults when ``cfg`` is None)."""
    cfg = cfg or TrackerConfig()
    try:
        factory = TRACKERS[cfg.type]
    except KeyError:
        raise ConfigError(
            f"tracker.type: unknown tracker {cfg.type!r} (known: {', '.join(sorted(TRACKERS))})"
        ) from None
    return factory(cfg)


__all__ = ["TRACKERS", "ByteTracker", "Tracker", "make_tracker"]
