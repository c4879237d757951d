"""What the rules engine is told about the cameras it watches.

The records the engine produces (causes, actuations, rule health) are in
:mod:`gateway.actuation`, where the events mapping reads them.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class CameraStatus:
    """What the rules need to know of a camera: is it streaming, how old is its last frame."""

    state: str
    last_frame_age_s: float | None

    def ok(self, max_frame_age_s: float) -> bool:
        """Streaming with a frame younger than ``max_frame_age_s``."""
        age = self.last_frame_age_s
        return self.state == "streaming" and age is not None and age <= max_frame_age_s
