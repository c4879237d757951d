"""The one detections type: a struct of parallel numpy arrays.

Every stage (detector, tiler, tracker, analytics) passes :class:`Detections`;
no lists of dicts or positional tuples between stages.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import NDArray

from gateway.vision.boxes import areas

FloatArray = NDArray[np.float32]
IntArray = NDArray[np.int64]

NO_TRACK = -1


@dataclass(frozen=True, slots=True)
class Detections:
    """``N`` detections as parallel arrays.

    Attributes:
        xyxy: ``(N, 4)`` float32 boxes ``x1, y1, x2, y2`` in source-image pixels.
        score: ``(N,)`` float32 confidence in ``0..1``.
        class_id: ``(N,)`` int64 class index into the model's label map.
        tracker_id: ``(N,)`` int64 track id, :data:`NO_TRACK` before tracking.
    """

    xyxy: FloatArray
    score: FloatArray
    class_id: IntArray
    tracker_id: IntArray = field(default_factory=lambda: np.empty(0, dtype=np.int64))

    def __post_init__(self) -> None:
        n = len(self.score)
        if self.xyxy.shape != (n, 4):
            raise ValueError(f"xyxy must have shape ({n}, 4), got {self.xyxy.shape}")
        if self.class_id.shape != (n,):
            raise ValueError(f"class_id must have shape ({n},), got {self.class_id.shape}")
        if len(self.tracker_id) == 0 and n:
            object.__setattr__(self, "tracker_id", np.full(n, NO_TRACK, dtype=np.int64))
        if self.tracker_id.shape != (n,):
            raise ValueError(f"tracker_id must have shape ({n},), got {self.tracker_id.shape}")

    @classmethod
    def empty(cls) -> Detections:
        """No detections."""
        return cls(
            xyxy=np.empty((0, 4), dtype=np.float32),
            score=np.empty(0, dtype=np.float32),
            class_id=np.empty(0, dtype=np.int64),
        )

    @classmethod
    def from_arrays(
        cls,
        xyxy: Any,
        score: Any,
        class_id: Any,
        tracker_id: Any | None = None,
    ) -> Detections:
        """Build from array-likes, converting dtypes."""
        boxes = np.asarray(xyxy, dtype=np.float32).reshape(-1, 4)
        n = len(boxes)
        tids = (
            np.full(n, NO_TRACK, dtype=np.int64)
            if tracker_id is None
            else np.asarray(tracker_id, dtype=np.int64).reshape(-1)
        )
        return cls(
            xyxy=boxes,
            score=np.asarray(score, dtype=np.float32).reshape(-1),
            class_id=np.asarray(class_id, dtype=np.int64).reshape(-1),
            tracker_id=tids,
        )

    @classmethod
    def concat(cls, parts: Sequence[Detections]) -> Detections:
        """Join several sets of detections."""
        if not parts:
            return cls.empty()
        return cls(
            xyxy=np.concatenate([p.xyxy for p in parts]).astype(np.float32, copy=False),
            score=np.concatenate([p.score for p in parts]).astype(np.float32, copy=False),
            class_id=np.concatenate([p.class_id for p in parts]).astype(np.int64, copy=False),
            tracker_id=np.concatenate([p.tracker_id for p in parts]).astype(np.int64, copy=False),
        )

    def __len__(self) -> int:
        return len(self.score)

    def __getitem__(
        self, index: NDArray[np.bool_] | NDArray[np.integer[Any]] | slice
    ) -> Detections:
        """Select by boolean mask, index array or slice."""
        return Detections(
            xyxy=self.xyxy[index].reshape(-1, 4),
            score=self.score[index].reshape(-1),
            class_id=self.class_id[index].reshape(-1),
            tracker_id=self.tracker_id[index].reshape(-1),
        )

    def with_tracker_ids(self, tracker_id: Any) -> Detections:
        """A copy carrying the given track ids."""
        return Detections(
            self.xyxy, self.score, self.class_id, np.asarray(tracker_id, dtype=np.int64)
        )

    def anchors(self) -> FloatArray:
        """``(N, 2)`` bottom-centre points of the boxes (where an object touches the road)."""
        x = (self.xyxy[:, 0] + self.xyxy[:, 2]) * 0.5
        return np.stack([x, self.xyxy[:, 3]], axis=1).astype(np.float32, copy=False)

    def area(self) -> FloatArray:
        """``(N,)`` box areas in square pixels."""
        area: FloatArray = areas(self.xyxy).astype(np.float32)
        return area

    def to_records(self, labels: Sequence[str]) -> list[dict[str, Any]]:
        """Plain dicts for JSON output (boxes rounded to 0.1 px)."""
        out = []
        for i in range(len(self)):
            cid = int(self.class_id[i])
            rec: dict[str, Any] = {
                "label": labels[cid] if 0 <= cid < len(labels) else str(cid),
                "class_id": cid,
                "score": round(float(self.score[i]), 4),
                "box": [round(float(v), 1) for v in self.xyxy[i]],
            }
            if self.tracker_id[i] != NO_TRACK:
                rec["track_id"] = int(self.tracker_id[i])
            out.append(rec)
        return out
