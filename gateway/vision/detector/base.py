"""The decoder interface every output layout implements."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from typing import ClassVar

import numpy as np
from numpy.typing import NDArray

from gateway.vision.detector.preprocess import Preprocessor
from gateway.vision.detector.signature import Signature


@dataclass(frozen=True, slots=True)
class Decoded:
    """Raw detections in model-input pixels, already above the score threshold."""

    xyxy: NDArray[np.float32]
    score: NDArray[np.float32]
    class_id: NDArray[np.int64]

    @classmethod
    def empty(cls) -> Decoded:
        """Nothing above the threshold."""
        return cls(
            np.empty((0, 4), dtype=np.float32),
            np.empty(0, dtype=np.float32),
            np.empty(0, dtype=np.int64),
        )


class Decoder(ABC):
    """Turns one output layout into :class:`Decoded` boxes; one subclass per layout.

    Subclasses are small: a :meth:`reject` check against a model's signature, the
    preprocessor the layout expects, and a vectorized :meth:`decode`.
    """

    name: ClassVar[str]
    # One line shown in "unsupported model" errors.
    expects: ClassVar[str]

    def __init__(self, signature: Signature) -> None:
        self.signature = signature
        self.num_classes = 0
        # The output tensors to fetch, in the order :meth:`decode` receives them.
        self.output_names: list[str] = [o.name for o in signature.outputs]

    @classmethod
    @abstractmethod
    def reject(cls, signature: Signature) -> str | None:
        """``None`` when this layout can decode ``signature``, else the reason it cannot."""

    @abstractmethod
    def make_preprocessor(self) -> Preprocessor:
        """Make the preprocessor (with its preallocated tensor) this layout's models expect."""

    @abstractmethod
    def decode(self, outputs: Sequence[NDArray[np.float32]], conf: float) -> Decoded:
        """Boxes with score >= ``conf``, in model-input pixels."""


def score_rows(
    rows: NDArray[np.float32], objectness: NDArray[np.float32] | None
) -> tuple[NDArray[np.float32], NDArray[np.int64]]:
    """Best class and its score (times objectness when given) of ``(K, C)`` class scores."""
    class_id = rows.argmax(axis=1)
    score = np.take_along_axis(rows, class_id[:, None], axis=1)[:, 0]
    if objectness is not None:
        score = score * objectness
    return score.astype(np.float32, copy=False), class_id.astype(np.int64, copy=False)
