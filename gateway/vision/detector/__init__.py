"""ONNX object detection with pluggable output layouts (YOLOX, Ultralytics YOLO, TF SSD).

Usage::

    detector = load_detector(DetectorConfig(model="yolox_nano.onnx"))
    dets = detector.detect(image_bgr)  # source-pixel boxes, thresholded, filtered, NMS'd
"""

from __future__ import annotations

from gateway.vision.detector.layouts import LAYOUTS
from gateway.vision.detector.onnx import OnnxDetector, load_detector
from gateway.vision.protocols import Detector

__all__ = ["LAYOUTS", "Detector", "OnnxDetector", "load_detector"]
