"""The detector interface: what the pipeline, the runner and the offline tools need.

:class:`~gateway.vision.detector.OnnxDetector` implements it; so do the simulator's
truth detectors (``simulators/camera``). It lives apart from the ONNX package so that
importing it does not load onnxruntime.
"""

from __future__ import annotations

from typing import Protocol

import numpy as np
from numpy.typing import NDArray

from gateway.vision.detections import Detections


class Detector(Protocol):
    """A detector: class names, model input size, and ``detect``."""

    labels: list[str]

    @property
    def input_size(self) -> tuple[int, int]:
        """Model input ``(h, w)``."""

    @property
    def last_inference_ms(self) -> float:
        """Duration of the latest model run."""

    def detect(self, image_bgr: NDArray[np.uint8]) -> Detections:
        """Return detections in source pixels, thresholded, class-filtered, after NMS."""
