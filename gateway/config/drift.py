"""Camera-shift detection: the ``[cameras.drift]`` section (see ``docs/analytics.md``)."""

from __future__ import annotations

from pydantic import Field

from gateway.config.common import StrictModel


class DriftConfig(StrictModel):
    """Compare the view with the reference keyframe taken at set-up; alert when it moved."""

    enabled: bool = Field(default=True, description="Check the view (live gateway only).")
    interval_s: float = Field(default=10.0, gt=0, le=3600, description="Seconds between checks.")
    max_shift_px: float = Field(
        default=8.0,
        gt=0,
        le=1000,
        description="Alert when a line, zone or calibration point has moved this many pixels.",
    )
    max_rotation_deg: float = Field(
        default=1.0, gt=0, le=90, description="Alert when the view has turned this much."
    )
    confirm: int = Field(
        default=3, ge=1, le=100, description="Consecutive checks that must agree before an alert."
    )
    work_width: int = Field(
        default=320, ge=96, le=1920, description="Frames are compared at this width (pixels)."
    )
    reference_frames: int = Field(
        default=5, ge=1, le=50, description="Frames whose median is the reference (no traffic)."
    )
    reference_every_s: float = Field(
        default=1.0, gt=0, le=600, description="Spacing of the reference frames."
    )
    reference_epoch: int = Field(
        default=0,
        ge=0,
        description="Change it (e.g. with set_config) to take a new reference of the current view.",
    )
