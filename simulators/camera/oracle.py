"""An ideal detector for the simulator: the visible part of every object, exactly.

:class:`TruthDetector` reports, for the frame its reader rendered last, the box around
each object's visible pixels (cut by the frame edge and by nearer objects, as a real
detector's box is) when enough of it shows. It satisfies the pipeline's detector
interface, so scenarios test tracking and counting without a model's misses.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from numpy.typing import NDArray

from gateway.vision.boxes import areas
from gateway.vision.detections import Detections
from simulators.camera.source import SimulatorReader
from simulators.camera.world import CLASSES

# An object is reported when at least this share of it is visible ...
MIN_VISIBLE = 0.2
# ... and its visible box is at least this many pixels wide and tall.
MIN_SIDE_PX = 4.0
# A tile sees an object when at least this share of its box lies inside the tile.
MIN_IN_CROP = 0.15

Box = tuple[int, int, int, int]


class TruthDetector:
    """Detections from the ground truth of ``reader``'s latest frame.

    With ``crops`` (the tiles of a tiled pipeline) an image that is one of those crops
    of the frame (found by its pixels) gets the part of each object inside it, as a
    detector run on that tile would: boxes clipped to the crop, in its coordinates,
    when at least ``MIN_IN_CROP`` of the object's box lies inside.
    """

    def __init__(
        self, reader: SimulatorReader, score: float = 0.9, crops: Sequence[Box] = ()
    ) -> None:
        """Read the truth of ``reader`` (which must render the frames passed to :meth:`detect`)."""
        self.reader = reader
        self.score = score
        self.crops = list(crops)
        self.labels = list(CLASSES)
        self.last_inference_ms = 0.0

    @property
    def input_size(self) -> tuple[int, int]:
        """``(h, w)``: the simulator's frame size (no resizing)."""
        return self.reader.cfg.height, self.reader.cfg.width

    def detect(self, image_bgr: NDArray[np.uint8]) -> Detections:
        """The visible boxes of the objects in the reader's latest frame."""
        truth = self.reader.truth
        if truth is None or not len(truth):
            return Detections.empty()
        box = truth.visible_xyxy
        keep = (
            (truth.visible >= MIN_VISIBLE)
            & (box[:, 2] - box[:, 0] >= MIN_SIDE_PX)
            & (box[:, 3] - box[:, 1] >= MIN_SIDE_PX)
        )
        crop = self._crop(image_bgr)
        if crop is not None:
            x1, y1, x2, y2 = crop
            whole = truth.xyxy.astype(np.float64)
            box = np.clip(box.astype(np.float64), [x1, y1, x1, y1], [x2, y2, x2, y2])
            inside = areas(box) >= MIN_IN_CROP * np.maximum(areas(whole), 1e-9)
            keep &= (
                inside
                & (box[:, 2] - box[:, 0] >= MIN_SIDE_PX)
                & (box[:, 3] - box[:, 1] >= MIN_SIDE_PX)
            )
            box = box - np.array([x1, y1, x1, y1])
        n = int(keep.sum())
        return Detections.from_arrays(box[keep], np.full(n, self.score), truth.class_id[keep])

    def _crop(self, image: NDArray[np.uint8]) -> Box | None:
        """Which of ``crops`` of the latest frame ``image`` is (None: the whole frame)."""
        frame = self.reader.image
        if frame is None or image.shape == frame.shape:
            return None
        for x1, y1, x2, y2 in self.crops:
            part = frame[y1:y2, x1:x2]
            if part.shape == image.shape and np.array_equal(part, image):
                return (x1, y1, x2, y2)
        raise ValueError(f"image of shape {image.shape} is none of the crops {self.crops}")
