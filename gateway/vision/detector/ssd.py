"""TensorFlow Object Detection API SSD: post-processed boxes, scores and 1-based classes."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from numpy.typing import NDArray

from gateway.vision.detector.base import Decoded, Decoder
from gateway.vision.detector.preprocess import Preprocessor, Stretch
from gateway.vision.detector.signature import Signature
from gateway.vision.labels import COCO80, COCO90_TO_80

_NEEDED = ("detection_boxes", "detection_scores", "detection_classes")


class SsdDecoder(Decoder):
    """Decode ``detection_boxes`` (ymin, xmin, ymax, xmax, normalized), scores, classes.

    Classes are COCO category ids (1 = person) and are mapped to COCO-80 indices;
    ids outside that map are dropped. Input: uint8 RGB ``[1, H, W, 3]``, plain resize.
    """

    name = "ssd"
    expects = (
        "ssd: uint8 [1,H,W,3] input, outputs detection_boxes/detection_scores/"
        "detection_classes (+ num_detections)"
    )

    def __init__(self, signature: Signature) -> None:
        super().__init__(signature)
        by_name = {o.short_name: o.name for o in signature.outputs}
        self.output_names = [by_name[n] for n in _NEEDED]
        if "num_detections" in by_name:
            self.output_names.append(by_name["num_detections"])
        self.num_classes = len(COCO80)
        height, width = signature.input_hw
        # Normalized (ymin, xmin, ymax, xmax) -> input-pixel (x1, y1, x2, y2).
        self._order = [1, 0, 3, 2]
        self._scale = np.array([width, height, width, height], dtype=np.float32)

    @classmethod
    def reject(cls, signature: Signature) -> str | None:
        """Needs a uint8 NHWC input and the three named detection outputs."""
        if not signature.nhwc_uint8:
            return "the input is not uint8 [1,H,W,3]"
        names = {o.short_name for o in signature.outputs}
        missing = [n for n in _NEEDED if n not in names]
        if missing:
            return f"missing outputs {', '.join(missing)}"
        return None

    def make_preprocessor(self) -> Preprocessor:
        """Plain resize, RGB uint8."""
        return Stretch(self.signature.input_hw)

    def decode(self, outputs: Sequence[NDArray[np.float32]], conf: float) -> Decoded:
        """Keep the first ``num_detections`` rows above ``conf`` with a known class."""
        boxes, scores, classes = outputs[0][0], outputs[1][0], outputs[2][0]
        count = len(scores)
        if len(outputs) > 3:
            count = min(count, int(np.asarray(outputs[3]).reshape(-1)[0]))
        score = scores[:count]
        candidates = np.flatnonzero(score >= conf)
        if candidates.size == 0:
            return Decoded.empty()
        coco_id = classes[candidates].astype(np.int64)
        in_map = (coco_id >= 0) & (coco_id < len(COCO90_TO_80))
        class_id = np.where(in_map, COCO90_TO_80[np.clip(coco_id, 0, len(COCO90_TO_80) - 1)], -1)
        known = class_id >= 0
        candidates = candidates[known]
        xyxy = boxes[candidates][:, self._order] * self._scale
        return Decoded(
            xyxy.astype(np.float32, copy=False),
            score[candidates].astype(np.float32, copy=False),
            class_id[known],
        )
