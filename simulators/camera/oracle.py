"""An ideal detector for the simulator: the visible part of every object, exactly.

:class:`TruthDetector` reports, for the frame its reader rendered last, the box around
each object's visible pixels (cut by the frame edge and by nearer objects, as a real
detector's box is) when enough of it shows. It satisfies the pipeline's detector
interface, so scenarios test tracking and counting without a model's misses.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from gateway.vision.detections import Detections
from simulators.camera.source import SimulatorReader
from simulators.camera.world import CLASSES

# An object is reported when at least this share of it is visible ...
MIN_VISIBLE = 0.2
# ... and its visible box is at least this many pixels wide and tall.
MIN_SIDE_PX = 4.0


class TruthDetector:
    """Detections from the ground truth of ``reader``'s latest frame."""

    def __init__(self, reader: SimulatorReader, score: float = 0.9) -> None:
        """Read the truth of ``reader`` (which must render the frames passed to :meth:`detect`)."""
        self.reader = reader
        self.score = score
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
        n = int(keep.sum())
        return Detections.from_arrays(box[keep], np.full(n, self.score), truth.class_id[keep])
