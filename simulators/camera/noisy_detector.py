"""A detector made from the simulator's ground truth with a real detector's errors.

For scenes no shipped model knows (the top-down intersection). Unlike the ideal
:class:`simulators.camera.oracle.TruthDetector`, which reports every visible object
exactly, :class:`NoisyTruthDetector` satisfies the pipeline's detector interface
(:class:`gateway.vision.protocols.Detector`). It reads the exact boxes of the frame
just rendered and returns them as a real detector's output would look: each corner
jittered (Gaussian, ``jitter_px``), objects less than ``min_visible`` visible left out,
and a share ``miss`` of the rest missed at random. Everything after detection (tracker,
lines, zones, flow measures) is the gateway's real code, so a scenario measures those
against the world's truth with detection errors that are known and reproducible.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from numpy.typing import NDArray

from gateway.vision.detections import Detections
from simulators.camera.render import GroundTruth
from simulators.camera.world import CLASSES


class NoisyTruthDetector:
    """Detections from ``truth()`` (the current frame's ground truth) with noise."""

    def __init__(
        self,
        truth: Callable[[], GroundTruth | None],
        *,
        size: tuple[int, int] = (640, 640),
        jitter_px: float = 1.0,
        miss: float = 0.03,
        min_visible: float = 0.3,
        seed: int = 0,
    ) -> None:
        """``size`` is the ``(h, w)`` reported as the model input."""
        self.labels = list(CLASSES)
        self._truth = truth
        self._size = size
        self.jitter_px = jitter_px
        self.miss = miss
        self.min_visible = min_visible
        self._rng = np.random.default_rng(seed)

    @property
    def input_size(self) -> tuple[int, int]:
        """Nominal input ``(h, w)``."""
        return self._size

    @property
    def last_inference_ms(self) -> float:
        """No model runs."""
        return 0.0

    def detect(self, image_bgr: NDArray[np.uint8]) -> Detections:
        """Return the current frame's objects as detections."""
        truth = self._truth()
        if truth is None or not len(truth):
            return Detections.empty()
        keep = truth.visible >= self.min_visible
        keep &= self._rng.random(len(truth)) >= self.miss
        boxes = truth.xyxy[keep].astype(np.float64)
        boxes += self._rng.normal(0.0, self.jitter_px, boxes.shape)
        h, w = image_bgr.shape[:2]
        boxes = np.clip(boxes, 0, [w, h, w, h])
        ok = (boxes[:, 2] - boxes[:, 0] >= 1) & (boxes[:, 3] - boxes[:, 1] >= 1)
        n = int(ok.sum())
        if not n:
            return Detections.empty()
        return Detections.from_arrays(
            boxes[ok], np.full(n, 0.9), truth.class_id[keep][ok], np.full(n, -1)
        )
