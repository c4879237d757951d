"""Shared geometry: normalised config points to pixels, track labels, per-track state caps."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol, TypeVar

import numpy as np
from numpy.typing import NDArray

from gateway.vision.detections import Detections

F64 = NDArray[np.float64]

# Default bound on per-track entries held by any one analytics tool.
MAX_TRACKS = 1024


def to_pixels(points: Sequence[tuple[float, float]], frame_size: tuple[int, int]) -> F64:
    """Normalised ``[(x, y), ...]`` (0..1) to ``(N, 2)`` pixels for ``frame_size=(w, h)``."""
    width, height = frame_size
    pts: F64 = np.asarray(points, dtype=np.float64).reshape(-1, 2)
    return pts * np.array([width, height], dtype=np.float64)


def diagonal(frame_size: tuple[int, int]) -> float:
    """Length of the frame's diagonal in pixels."""
    return float(np.hypot(*frame_size))


def label_list(detections: Detections, labels: Sequence[str]) -> list[str]:
    """Return the label of every row (the class id as text when outside ``labels``)."""
    n = len(labels)
    return [labels[c] if 0 <= c < n else str(c) for c in detections.class_id.tolist()]


def class_mask(names: list[str], classes: Sequence[str]) -> NDArray[np.bool_]:
    """Rows whose label is in ``classes`` (every row when ``classes`` is empty)."""
    if not classes:
        return np.ones(len(names), dtype=bool)
    wanted = set(classes)
    return np.array([n in wanted for n in names], dtype=bool)


class Stamped(Protocol):
    """Per-track state that remembers when its track was last seen."""

    last_ts: float


S = TypeVar("S", bound=Stamped)


def evict(states: dict[int, S], now: float, forget_s: float, cap: int) -> list[tuple[int, S]]:
    """Remove states unseen for more than ``forget_s`` and, beyond ``cap``, the stalest ones.

    Returns the removed ``(track id, state)`` pairs so callers can close them (e.g. emit an exit).
    """
    # Entries from the "future" (the clock went back) are stale too.
    gone = [k for k, st in states.items() if abs(now - st.last_ts) > forget_s]
    if len(states) - len(gone) > cap:
        dropped = set(gone)
        alive = sorted((st.last_ts, k) for k, st in states.items() if k not in dropped)
        gone += [k for _, k in alive[: len(alive) - cap]]
    return [(k, states.pop(k)) for k in gone]
