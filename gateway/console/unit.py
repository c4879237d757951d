"""What the console needs of the running gateway, passed in (it never reaches into ``App``)."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from gateway.config.settings import GatewaySettings
from gateway.config.vision import CameraConfig
from gateway.health import CameraHealth
from gateway.runtime.commands import AuditRecord
from gateway.runtime.live_settings import ApplyResult, SettingsChange
from gateway.sensors.types import Reading
from gateway.sources.frame import Frame
from gateway.vision.analytics.engine import Counts
from gateway.vision.detections import Detections


class ConsoleCamera(Protocol):
    """One running camera as the console sees it."""

    @property
    def camera(self) -> CameraConfig:
        """The camera's running config."""

    @property
    def labels(self) -> Sequence[str]:
        """Class names by class id."""

    def latest(self) -> tuple[Frame, Detections] | None:
        """The latest processed frame and its tracked detections."""

    def health(self) -> CameraHealth:
        """Capture and pipeline health."""

    def counts(self) -> Counts | None:
        """Line crossings since the pipeline started."""

    def occupancy(self) -> dict[str, dict[str, int]] | None:
        """Tracks inside each zone now."""

    def restart(self) -> None:
        """Reconnect the camera from scratch."""


@dataclass(frozen=True, slots=True)
class ConsoleUnit:
    """The gateway's parts the console shows and changes.

    ``cameras`` is the gateway's live mapping (a saved edit replaces a camera's runner
    in it); ``health`` returns the ``data`` of a health event built now; ``apply_settings``
    is the gateway's one way to change settings (the MQTT ``set_config`` uses it too);
    ``audit`` records a change like an obeyed command.
    """

    name: str
    settings: Callable[[], GatewaySettings]
    cameras: Mapping[str, ConsoleCamera]
    health: Callable[[], Mapping[str, Any]]
    readings: Callable[[], Mapping[str, Reading]]
    apply_settings: Callable[[SettingsChange], ApplyResult]
    audit: Callable[[AuditRecord], None]
    config_path: Path | None
