"""Ultralytics-style YOLO heads: v5 ``[1, N, 5 + C]`` and v8/v11 ``[1, 4 + C, N]``."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from numpy.typing import NDArray

from gateway.vision.boxes import cxcywh_to_xyxy
from gateway.vision.detector.base import Decoded, Decoder, score_rows
from gateway.vision.detector.preprocess import Letterbox, Preprocessor
from gateway.vision.detector.signature import Signature


class YoloDecoder(Decoder):
    """Decode Ultralytics exports; boxes are ``cx, cy, w, h`` in input pixels.

    v5 rows are ``cx, cy, w, h, objectness, C class scores`` (score = obj * class);
    v8/v11 are transposed, ``4 + C`` rows by N columns, with no objectness.
    The orientation is read from the output shape: more rows than columns is v5.
    Input: RGB, 0..1, letterboxed centred with pad 114.
    """

    name = "yolo"
    expects = "yolo: float32 [1,3,H,W] input, first output [1,N,5+C] (v5) or [1,4+C,N] (v8)"

    def __init__(self, signature: Signature) -> None:
        super().__init__(signature)
        self.output_names = [signature.outputs[0].name]
        _, rows, cols = signature.outputs[0].shape
        assert isinstance(rows, int)
        assert isinstance(cols, int)
        self.transposed = rows < cols
        self.num_classes = rows - 4 if self.transposed else cols - 5

    @classmethod
    def reject(cls, signature: Signature) -> str | None:
        """Needs an NCHW float input and a 3-D first output with room for a class."""
        if not signature.nchw_float:
            return "the input is not float32 [1,3,H,W]"
        shape = signature.outputs[0].shape
        if len(shape) != 3 or shape[0] != 1:
            return "the first output is not [1,N,5+C] or [1,4+C,N]"
        rows, cols = shape[1], shape[2]
        assert isinstance(rows, int)  # output shapes are concrete after warm-up
        assert isinstance(cols, int)
        if (rows < cols and rows < 5) or (rows >= cols and cols < 6):
            return "the first output has no room for class scores"
        return None

    def make_preprocessor(self) -> Preprocessor:
        """Letterbox centred, RGB, 0..1."""
        return Letterbox(self.signature.input_hw, rgb=True, scale=1.0 / 255.0, center=True)

    def decode(self, outputs: Sequence[NDArray[np.float32]], conf: float) -> Decoded:
        """Score-filter first, then convert the survivors' boxes."""
        out = outputs[0][0]
        if self.transposed:
            classes = out[4:]
            candidates = np.flatnonzero(classes.max(axis=0) >= conf)
            if candidates.size == 0:
                return Decoded.empty()
            score, class_id = score_rows(classes[:, candidates].T, None)
            boxes = out[:4, candidates].T
            keep = score >= conf
        else:
            candidates = np.flatnonzero(out[:, 4] >= conf)
            if candidates.size == 0:
                return Decoded.empty()
            rows = out[candidates]
            score, class_id = score_rows(rows[:, 5:], rows[:, 4])
            boxes = rows[:, :4]
            keep = score >= conf
        xyxy = cxcywh_to_xyxy(np.ascontiguousarray(boxes[keep], dtype=np.float32))
        return Decoded(xyxy, score[keep], class_id[keep])
