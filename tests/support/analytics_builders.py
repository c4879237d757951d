"""Builders for synthetic tracked detections used by the analytics tests."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from gateway.vision.detections import Detections

FRAME = (1000, 1000)  # width, height: normalised 0.5 is pixel 500
LABELS = ["person", "bicycle", "car", "motorcycle", "bus", "truck"]
CLS = {name: i for i, name in enumerate(LABELS)}


def at(x: float, y: float, w: float = 40.0, h: float = 60.0) -> list[float]:
    """A box whose bottom-centre anchor is at normalised ``(x, y)`` of :data:`FRAME`."""
    px, py = x * FRAME[0], y * FRAME[1]
    return [px - w / 2, py - h, px + w / 2, py]


def frame(*objs: tuple[int, float, float, str]) -> Detections:
    """Tracked detections from ``(track_id, x, y, label)`` with normalised anchors."""
    if not objs:
        return Detections.empty()
    return Detections.from_arrays(
        [at(x, y) for _, x, y, _ in objs],
        [0.9] * len(objs),
        [CLS[label] for *_, label in objs],
        [tid for tid, *_ in objs],
    )


def path(
    start: tuple[float, float], end: tuple[float, float], steps: int
) -> list[tuple[float, float]]:
    """``steps + 1`` evenly spaced normalised points from ``start`` to ``end``."""
    (x0, y0), (x1, y1) = start, end
    return [(x0 + (x1 - x0) * k / steps, y0 + (y1 - y0) * k / steps) for k in range(steps + 1)]


def track_frames(
    tid: int, points: Sequence[tuple[float, float]], label: str = "car"
) -> list[Detections]:
    """One detection per frame for a single track following ``points``."""
    return [frame((tid, x, y, label)) for x, y in points]


def merge(*tracks: Iterable[Detections]) -> list[Detections]:
    """Frame-wise union of several per-frame sequences (shorter ones just end)."""
    seqs = [list(t) for t in tracks]
    n = max(len(s) for s in seqs)
    return [Detections.concat([s[i] for s in seqs if i < len(s)]) for i in range(n)]
