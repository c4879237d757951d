"""What the gateway needs of its running parts: one camera pipeline, one sensor reader.

:class:`~gateway.vision.runner.CameraRunner` and
:class:`~gateway.serialports.reader.SensorReader` satisfy these; so can a fake in a test.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from gateway.config.vision import CameraConfig
from gateway.health import CameraHealth, SensorHealth
from gateway.sources.frame import Frame
from gateway.vision.analytics.engine import Counts
from gateway.vision.detections import Detections


class RunningCamera(Protocol):
    """Capture and pipeline of one camera."""

    @property
    def camera(self) -> CameraConfig:
        """The camera's config."""

    def start(self) -> None:
        """Start capturing and processing."""

    def stop(self, timeout: float | None = None) -> None:
        """Stop and wait for the threads."""

    def restart(self) -> None:
        """Reconnect the camera from scratch."""

    def latest_frame(self) -> Frame | None:
        """The most recently processed frame."""

    def health(self) -> CameraHealth:
        """Capture and pipeline health."""

    def counts(self) -> Counts | None:
        """Line counts so far (line -> direction -> label -> n); ``None`` without analytics."""

    def occupancy(self) -> dict[str, dict[str, int]] | None:
        """Tracks inside each zone now (zone -> label -> n); ``None`` without analytics."""

    def latest(self) -> tuple[Frame, Detections] | None:
        """The most recently processed frame and its tracked detections."""

    @property
    def labels(self) -> Sequence[str]:
        """The detector's class names (index = class id)."""


class RunningSensor(Protocol):
    """One serial sensor reader."""

    def start(self) -> None:
        """Start reading."""

    def stop(self, timeout: float = 5.0) -> None:
        """Stop and wait for the thread."""

    def health(self) -> SensorHealth:
        """Counters of the port and its decoder."""
