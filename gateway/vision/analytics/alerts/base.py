"""The alert rule interface: what a rule sees of each frame, and how a rule is built.

A rule is built once per camera by its factory (``None`` when the camera's config asks
nothing of it) and then sees every processed frame, after the lines and zones ran.
It returns the alerts of that frame; all state it keeps is bounded.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol, runtime_checkable

import numpy as np
from numpy.typing import NDArray

from gateway.config.vision import CameraConfig
from gateway.vision.analytics.types import Alert, LineCrossing, ZoneTransition
from gateway.vision.detections import Detections


@dataclass(frozen=True, slots=True)
class RuleContext:
    """What a rule factory may use: the camera's config and the frame geometry."""

    camera: CameraConfig
    frame_size: tuple[int, int]
    """``(width, height)`` in pixels."""
    forget_s: float
    """How long the tracker remembers a lost track: per-track state may be dropped after."""
    reference_dir: Path | None = None
    """Where the live gateway keeps reference views (``None`` offline): image rules."""


@dataclass(frozen=True, slots=True)
class AlertFrame:
    """One processed frame as the rules see it."""

    timestamp: float
    tracked: Detections
    """Tracked detections (every row has a track id)."""
    names: list[str]
    """The label of each row of ``tracked``."""
    speeds: NDArray[np.floating] | None
    """km/h per row (NaN unknown); ``None`` without a speed calibration."""
    crossings: Sequence[LineCrossing]
    transitions: Sequence[ZoneTransition]
    inside: Mapping[str, set[int]]
    """Zone id -> the track ids inside it now."""
    occupancy: Mapping[str, Mapping[str, int]]
    """Zone id -> label -> tracks inside now."""
    image: NDArray[np.uint8] | None = None
    """The frame's BGR pixels, when the caller passed them (image rules)."""


class AlertRule(Protocol):
    """One kind of alert for one camera."""

    def check(self, frame: AlertFrame) -> list[Alert]:
        """Return the alerts ``frame`` raises."""
        ...


@runtime_checkable
class ReportsHealth(Protocol):
    """A rule with counters worth showing in the camera's health."""

    def health(self) -> dict[str, float | int]:
        """Numbers for the camera's health entry."""
        ...


RuleFactory = Callable[[RuleContext], AlertRule | None]
