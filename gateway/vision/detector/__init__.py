"""ONNX object detection with pluggable output layouts (YOLOX, Ultralytics YOLO, TF SSD).

Usage::

    detector = load_detector(DetectorConfig(model="yolox_nano.onnx"))
    dets = detector.detect(image_bgr)  # source-pixel boxes, thresholded, filtered, NMS'd
"""

from __future__ import annotations

from typing import Protocol

import numpy as np
from numpy.typing import NDArray

from gateway.vision.detections import Detections
from gateway.vision.detector.layouts import LAYOUTS
from gateway.vision.detector.onnx import OnnxDetector, load_detector


class Detector(Protocol):
    """What the pipeline needs from a detector."""

    labels: list[str]
    input_size: tuple[int, int]
    model_type: str
    last_inference_ms: float

    def detect(self, image_bgr: NDArray[np.uint8]) -> Detections:
        """Return detections in source pixels, thresholded, class-filtered and NMS'd."""
        ...


__all__ = ["LAYOUTS", "Detector", "OnnxDetector", "load_detector"]
