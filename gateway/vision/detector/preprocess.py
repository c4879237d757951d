"""Image to input tensor, into buffers allocated once per detector.

Two preprocessors: :class:`Letterbox` (aspect-preserving resize and pad, NCHW
float32, for YOLO-family models) and :class:`Stretch` (plain resize, NHWC uint8,
for TensorFlow SSD models). Each returns the :class:`Transform` that maps boxes
from model-input pixels back to source pixels.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

import cv2
import numpy as np
from numpy.typing import NDArray

PAD_VALUE = 114


@dataclass(frozen=True, slots=True)
class Transform:
    """Source pixel ``x`` sits at model-input pixel ``x * scale_x + pad_x`` (same for y)."""

    scale_x: float
    scale_y: float
    pad_x: float
    pad_y: float

    def to_source(self, boxes: NDArray[np.float32], width: int, height: int) -> NDArray[np.float32]:
        """Map ``(N, 4)`` xyxy model-input boxes to source pixels, clipped to the image."""
        offset = np.array([self.pad_x, self.pad_y, self.pad_x, self.pad_y], dtype=np.float32)
        scale = np.array([self.scale_x, self.scale_y, self.scale_x, self.scale_y], dtype=np.float32)
        out = (boxes - offset) / scale
        np.clip(out[:, 0::2], 0.0, float(width), out=out[:, 0::2])
        np.clip(out[:, 1::2], 0.0, float(height), out=out[:, 1::2])
        return out.astype(np.float32, copy=False)


class Preprocessor(Protocol):
    """Fills :attr:`tensor` from a BGR image."""

    tensor: NDArray[Any]

    def __call__(self, image_bgr: NDArray[np.uint8]) -> Transform:
        """Write ``image_bgr`` into :attr:`tensor` and return the coordinate transform."""
        ...


class Letterbox:
    """Aspect-preserving resize into a padded canvas, then HWC uint8 -> NCHW float32.

    Args:
        input_hw: model input ``(height, width)``.
        rgb: feed RGB (Ultralytics) instead of BGR (YOLOX).
        scale: multiply pixel values by this (``1/255`` for 0..1 inputs).
        center: centre the image in the canvas (Ultralytics) or put it top-left (YOLOX).
    """

    def __init__(self, input_hw: tuple[int, int], rgb: bool, scale: float, center: bool) -> None:
        self.input_hw = input_hw
        self.rgb = rgb
        self.scale = np.float32(scale)
        self.center = center
        height, width = input_hw
        self.tensor: NDArray[np.float32] = np.zeros((1, 3, height, width), dtype=np.float32)
        self._canvas = np.full((height, width, 3), PAD_VALUE, dtype=np.uint8)
        self._layout: tuple[tuple[int, int], Transform, int, int, int, int] | None = None

    def _plan(self, src_hw: tuple[int, int]) -> tuple[Transform, int, int, int, int]:
        if self._layout is not None and self._layout[0] == src_hw:
            return self._layout[1:]
        height, width = self.input_hw
        src_h, src_w = src_hw
        ratio = min(height / src_h, width / src_w)
        new_h = min(height, max(1, round(src_h * ratio)))
        new_w = min(width, max(1, round(src_w * ratio)))
        top, left = ((height - new_h) // 2, (width - new_w) // 2) if self.center else (0, 0)
        self._canvas.fill(PAD_VALUE)
        transform = Transform(new_w / src_w, new_h / src_h, float(left), float(top))
        self._layout = (src_hw, transform, top, left, new_h, new_w)
        return transform, top, left, new_h, new_w

    def __call__(self, image_bgr: NDArray[np.uint8]) -> Transform:
        """Letterbox ``image_bgr`` into :attr:`tensor`."""
        transform, top, left, new_h, new_w = self._plan((image_bgr.shape[0], image_bgr.shape[1]))
        size = (new_w, new_h)
        if new_w == self.input_hw[1] and (new_h, new_w) != image_bgr.shape[:2]:
            # Full-width rows of the canvas are contiguous: resize straight into them.
            rows = self._canvas[top : top + new_h]
            cv2.resize(image_bgr, size, dst=rows, interpolation=cv2.INTER_LINEAR)
        else:
            resized: NDArray[Any] = image_bgr
            if (new_h, new_w) != image_bgr.shape[:2]:
                resized = cv2.resize(image_bgr, size, interpolation=cv2.INTER_LINEAR)
            self._canvas[top : top + new_h, left : left + new_w] = resized
        chw = (self._canvas[:, :, ::-1] if self.rgb else self._canvas).transpose(2, 0, 1)
        if self.scale == 1.0:
            np.copyto(self.tensor[0], chw, casting="unsafe")
        else:
            np.multiply(chw, self.scale, out=self.tensor[0], casting="unsafe")
        return transform


class Stretch:
    """Plain resize to the input size, BGR -> RGB, NHWC uint8."""

    def __init__(self, input_hw: tuple[int, int]) -> None:
        self.input_hw = input_hw
        height, width = input_hw
        self.tensor: NDArray[np.uint8] = np.zeros((1, height, width, 3), dtype=np.uint8)

    def __call__(self, image_bgr: NDArray[np.uint8]) -> Transform:
        """Resize ``image_bgr`` into :attr:`tensor`."""
        height, width = self.input_hw
        src_h, src_w = image_bgr.shape[:2]
        resized: NDArray[Any] = image_bgr
        if (src_h, src_w) != (height, width):
            resized = cv2.resize(image_bgr, (width, height), interpolation=cv2.INTER_LINEAR)
        cv2.cvtColor(resized, cv2.COLOR_BGR2RGB, dst=self.tensor[0])
        return Transform(width / src_w, height / src_h, 0.0, 0.0)
