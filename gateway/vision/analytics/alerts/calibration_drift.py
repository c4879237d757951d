"""``calibration_drift``: the camera has moved since its reference view was taken.

An image rule: it needs the frame's pixels (:attr:`AlertFrame.image`) and a place for
the reference view (:attr:`RuleContext.reference_dir`, which only the live gateway
gives), and is built only with ``[cameras.drift] enabled``. The comparison itself is
:class:`gateway.vision.drift.DriftDetector`; re-arming is described there.
"""

from __future__ import annotations

from gateway.vision.analytics.alerts.base import AlertFrame, RuleContext
from gateway.vision.analytics.types import Alert
from gateway.vision.drift import DriftDetector
from gateway.vision.reference import ReferenceStore


class CalibrationDrift:
    """Camera-shift detection for one camera."""

    def __init__(self, detector: DriftDetector) -> None:
        self.detector = detector

    @classmethod
    def build(cls, ctx: RuleContext) -> CalibrationDrift | None:
        """A rule when drift detection is enabled and the reference views have a home."""
        if ctx.reference_dir is None or not ctx.camera.drift.enabled:
            return None
        store = ReferenceStore(ctx.reference_dir, ctx.camera.id)
        return cls(DriftDetector(ctx.camera, store, ctx.frame_size))

    def check(self, frame: AlertFrame) -> list[Alert]:
        """Compare the view when a check (or a reference frame) is due."""
        if frame.image is None:
            return []
        return self.detector.update(frame.image, frame.timestamp)

    def health(self) -> dict[str, float | int]:
        """The detector's counters and latest shift."""
        return self.detector.stats.as_dict()
