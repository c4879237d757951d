"""Label maps: COCO-80 built in, label files, and the TF Object Detection 90-id map."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from gateway.errors import ModelError

# The 80 COCO classes in the order YOLOX and Ultralytics models emit them.
COCO80: tuple[str, ...] = (
    "person", "bicycle", "car", "motorcycle", "airplane", "bus", "train", "truck", "boat",
    "traffic light", "fire hydrant", "stop sign", "parking meter", "bench", "bird", "cat",
    "dog", "horse", "sheep", "cow", "elephant", "bear", "zebra", "giraffe", "backpack",
    "umbrella", "handbag", "tie", "suitcase", "frisbee", "skis", "snowboard", "sports ball",
    "kite", "baseball bat", "baseball glove", "skateboard", "surfboard", "tennis racket",
    "bottle", "wine glass", "cup", "fork", "knife", "spoon", "bowl", "banana", "apple",
    "sandwich", "orange", "broccoli", "carrot", "hot dog", "pizza", "donut", "cake", "chair",
    "couch", "potted plant", "bed", "dining table", "toilet", "tv", "laptop", "mouse",
    "remote", "keyboard", "cell phone", "microwave", "oven", "toaster", "sink",
    "refrigerator", "book", "clock", "vase", "scissors", "teddy bear", "hair drier",
    "toothbrush",
)  # fmt: skip

# COCO category ids (1..90) that the dataset never uses; the other 80 map to COCO80 in order.
_COCO90_UNUSED = frozenset({12, 26, 29, 30, 45, 66, 68, 69, 71, 83})


def _coco90_to_80() -> NDArray[np.int64]:
    table = np.full(91, -1, dtype=np.int64)
    index = 0
    for coco_id in range(1, 91):
        if coco_id not in _COCO90_UNUSED:
            table[coco_id] = index
            index += 1
    return table


# ``COCO90_TO_80[id]`` is the COCO80 index of a 1-based COCO category id, -1 if unused.
COCO90_TO_80: NDArray[np.int64] = _coco90_to_80()


def load_labels(path: Path) -> list[str]:
    """Read a label file: one class name per line, blank lines ignored."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ModelError(f"labels file not found: {path}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ModelError(f"cannot read labels file {path}: {exc}") from None
    labels = [line.strip() for line in text.splitlines() if line.strip()]
    if not labels:
        raise ModelError(f"labels file {path} is empty")
    return labels


def check_labels(labels: Sequence[str], num_classes: int, source: str) -> list[str]:
    """Return ``labels`` as a list, or raise if their count differs from the model's."""
    if len(labels) != num_classes:
        raise ModelError(
            f"labels from {source} have {len(labels)} names but the model has {num_classes} classes"
        )
    return list(labels)


def default_labels(num_classes: int) -> list[str]:
    """COCO-80 for 80-class models, otherwise ``class0``, ``class1``, ..."""
    if num_classes == len(COCO80):
        return list(COCO80)
    return [f"class{i}" for i in range(num_classes)]
