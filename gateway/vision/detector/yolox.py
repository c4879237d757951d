"""YOLOX raw head: ``[1, N, 5 + C]`` grid offsets, objectness and class scores."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from numpy.typing import NDArray

from gateway.vision.detector.base import Decoded, Decoder, score_rows
from gateway.vision.detector.preprocess import Letterbox, Preprocessor
from gateway.vision.detector.signature import Signature

STRIDES = (8, 16, 32)


def anchor_points(input_hw: tuple[int, int]) -> tuple[NDArray[np.float32], NDArray[np.float32]]:
    """Grid cells ``(N, 2)`` (x, y) and their strides ``(N, 1)``, row-major per stride."""
    cells = []
    strides = []
    for stride in STRIDES:
        rows, cols = input_hw[0] // stride, input_hw[1] // stride
        ys, xs = np.meshgrid(np.arange(rows), np.arange(cols), indexing="ij")
        cells.append(np.stack([xs.ravel(), ys.ravel()], axis=1))
        strides.append(np.full((rows * cols, 1), stride))
    return (
        np.concatenate(cells).astype(np.float32),
        np.concatenate(strides).astype(np.float32),
    )


class YoloxDecoder(Decoder):
    """Decode YOLOX: ``xy = (v + cell) * stride``, ``wh = exp(v) * stride``.

    Input: BGR, 0..255 (not normalized), letterboxed top-left with pad 114.
    Objectness and class scores are already sigmoid; score = objectness * class score.
    """

    name = "yolox"
    expects = "yolox: float32 [1,3,H,W] input, one [1,N,5+C] output, N = anchor points"

    def __init__(self, signature: Signature) -> None:
        super().__init__(signature)
        self.output_names = [signature.outputs[0].name]
        shape = signature.outputs[0].shape
        assert isinstance(shape[2], int)
        self.num_classes = shape[2] - 5
        self._cells, self._strides = anchor_points(signature.input_hw)

    @classmethod
    def reject(cls, signature: Signature) -> str | None:
        """YOLOX needs an NCHW float input and ``[1, N, 5 + C]`` with N grid points."""
        if not signature.nchw_float:
            return "the input is not float32 [1,3,H,W]"
        if len(signature.outputs) != 1:
            return f"expected one output, got {len(signature.outputs)}"
        shape = signature.outputs[0].shape
        if len(shape) != 3 or shape[0] != 1 or not isinstance(shape[2], int) or shape[2] < 6:
            return "the output is not [1,N,5+C]"
        expected = len(anchor_points(signature.input_hw)[0])
        if shape[1] != expected:
            return (
                f"the output has {shape[1]} rows, not the {expected} grid points of strides 8/16/32"
            )
        return None

    def make_preprocessor(self) -> Preprocessor:
        """Letterbox top-left, BGR, 0..255."""
        return Letterbox(self.signature.input_hw, rgb=False, scale=1.0, center=False)

    def decode(self, outputs: Sequence[NDArray[np.float32]], conf: float) -> Decoded:
        """Filter on objectness first (score <= objectness), then decode the survivors."""
        out = outputs[0][0]
        candidates = np.flatnonzero(out[:, 4] >= conf)
        if candidates.size == 0:
            return Decoded.empty()
        rows = out[candidates]
        score, class_id = score_rows(rows[:, 5:], rows[:, 4])
        keep = score >= conf
        rows, candidates = rows[keep], candidates[keep]
        stride = self._strides[candidates]
        xy = (rows[:, :2] + self._cells[candidates]) * stride
        half = np.exp(rows[:, 2:4]) * stride * 0.5
        xyxy = np.concatenate([xy - half, xy + half], axis=1).astype(np.float32, copy=False)
        return Decoded(xyxy, score[keep], class_id[keep])
