"""Detectors made from the simulator's ground truth: ideal, or with a real detector's errors.

:class:`TruthDetector` satisfies the pipeline's detector interface
(:class:`gateway.vision.protocols.Detector`), so scenarios test tracking, counting and
flow measures (the gateway's real code after detection) against the world's truth.
It reads the ground truth of the frame just rendered:

- ideal (:meth:`TruthDetector.of_reader`): the box around each object's visible pixels
  (cut by the frame edge and by nearer objects, as a real detector's box is) when
  enough of it shows; nothing is missed or moved.
- with errors (:meth:`TruthDetector.noisy`, for scenes no shipped model knows, such
  as the top-down intersection): each corner of the object's box jittered (Gaussian,
  ``jitter_px``) and clipped to the frame, objects less than ``min_visible`` visible
  left out, and a share ``miss`` of the rest missed at random, from a seeded generator,
  so the detection errors are known and reproducible.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
from numpy.typing import NDArray

from gateway.vision.boxes import areas
from gateway.vision.detections import Detections
from simulators.camera.render import GroundTruth
from simulators.camera.source import SimulatorReader
from simulators.camera.world import CLASSES

# The ideal detector reports an object when at least this share of it is visible ...
MIN_VISIBLE = 0.2
# ... and its visible box is at least this many pixels wide and tall.
MIN_SIDE_PX = 4.0
# Tiled, a tile sees an object when at least this share of its box lies inside the tile.
MIN_IN_CROP = 0.15

Box = tuple[int, int, int, int]


@dataclass(frozen=True, slots=True)
class DetectorErrors:
    """A real detector's errors: corner jitter (pixels, Gaussian) and a share missed."""

    jitter_px: float = 1.0
    miss: float = 0.03
    seed: int = 0


class TruthDetector:
    """Detections from ``truth()`` (the current frame's ground truth), maybe with errors."""

    def __init__(
        self,
        truth: Callable[[], GroundTruth | None],
        size: tuple[int, int],
        *,
        box: Literal["visible", "full"] = "visible",
        min_visible: float = MIN_VISIBLE,
        min_side_px: float = MIN_SIDE_PX,
        errors: DetectorErrors | None = None,
        score: float = 0.9,
        frame: Callable[[], NDArray[np.uint8] | None] | None = None,
        crops: Sequence[Box] = (),
    ) -> None:
        """``size`` is the ``(h, w)`` reported as the model input.

        ``box`` chooses the truth's box: around the visible pixels, or the whole object.
        With ``errors`` the boxes are jittered and clipped to the frame, and some missed.
        With ``crops`` (the tiles of a tiled pipeline) and ``frame`` (the current frame),
        an image that is one of those crops of the frame (found by its pixels) gets the
        part of each object inside it, as a detector run on that tile would: boxes
        clipped to the crop, in its coordinates, when at least ``MIN_IN_CROP`` of the
        object's box lies inside.
        """
        self.labels = list(CLASSES)
        self.score = score
        self.box = box
        self.min_visible = min_visible
        self.min_side_px = min_side_px
        self.errors = errors
        self.last_inference_ms = 0.0  # no model runs
        self._truth = truth
        self._size = size
        self._frame = frame
        self.crops = list(crops)
        self._rng = np.random.default_rng(errors.seed if errors is not None else 0)

    @classmethod
    def of_reader(
        cls, reader: SimulatorReader, score: float = 0.9, crops: Sequence[Box] = ()
    ) -> TruthDetector:
        """The ideal detector of ``reader`` (which renders the frames passed to detect).

        ``crops``: the tiles of a tiled pipeline (see the constructor).
        """
        return cls(
            lambda: reader.truth,
            (reader.cfg.height, reader.cfg.width),
            score=score,
            frame=lambda: reader.image,
            crops=crops,
        )

    @classmethod
    def noisy(
        cls,
        truth: Callable[[], GroundTruth | None],
        *,
        size: tuple[int, int] = (640, 640),
        jitter_px: float = 1.0,
        miss: float = 0.03,
        min_visible: float = 0.3,
        seed: int = 0,
    ) -> TruthDetector:
        """Whole-object boxes with a real detector's errors (seeded)."""
        return cls(
            truth,
            size,
            box="full",
            min_visible=min_visible,
            min_side_px=1.0,
            errors=DetectorErrors(jitter_px=jitter_px, miss=miss, seed=seed),
        )

    @property
    def input_size(self) -> tuple[int, int]:
        """Nominal input ``(h, w)`` (no resizing)."""
        return self._size

    def detect(self, image_bgr: NDArray[np.uint8]) -> Detections:
        """The current frame's objects as detections."""
        truth = self._truth()
        if truth is None or not len(truth):
            return Detections.empty()
        keep = truth.visible >= self.min_visible
        errors = self.errors
        if errors is not None:
            keep &= self._rng.random(len(truth)) >= errors.miss
        source = truth.visible_xyxy if self.box == "visible" else truth.xyxy
        boxes = source[keep].astype(np.float64)
        crop = self._crop(image_bgr)
        if crop is not None:
            x1, y1, x2, y2 = crop
            whole = areas(truth.xyxy[keep])
            boxes = np.clip(boxes, [x1, y1, x1, y1], [x2, y2, x2, y2])
            inside = areas(boxes) >= MIN_IN_CROP * np.maximum(whole, 1e-9)
            boxes = boxes[inside] - np.array([x1, y1, x1, y1])
            keep[np.flatnonzero(keep)[~inside]] = False
        if errors is not None:
            boxes += self._rng.normal(0.0, errors.jitter_px, boxes.shape)
            h, w = image_bgr.shape[:2]
            boxes = np.clip(boxes, 0, [w, h, w, h])
        ok = (boxes[:, 2] - boxes[:, 0] >= self.min_side_px) & (
            boxes[:, 3] - boxes[:, 1] >= self.min_side_px
        )
        n = int(ok.sum())
        if not n:
            return Detections.empty()
        return Detections.from_arrays(boxes[ok], np.full(n, self.score), truth.class_id[keep][ok])

    def _crop(self, image: NDArray[np.uint8]) -> Box | None:
        """Which of ``crops`` of the current frame ``image`` is (None: the whole frame)."""
        frame = self._frame() if self._frame is not None else None
        if frame is None or not self.crops or image.shape == frame.shape:
            return None
        for x1, y1, x2, y2 in self.crops:
            part = frame[y1:y2, x1:x2]
            if part.shape == image.shape and np.array_equal(part, image):
                return (x1, y1, x2, y2)
        raise ValueError(f"image of shape {image.shape} is none of the crops {self.crops}")
