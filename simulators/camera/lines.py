"""Counting-line geometry for the ground-truth log.

Directions follow the analytics convention: seen from point 1 looking at
point 2, an object going from the left-hand side to the right-hand side crosses
``left_to_right``. In image coordinates (y down) the left-hand side is where
the cross product ``(p2 - p1) x (q - p1)`` is negative.
"""

from __future__ import annotations

from dataclasses import dataclass

Point = tuple[float, float]


@dataclass(frozen=True, slots=True)
class Line:
    """A counting line from ``p1`` to ``p2`` in normalised frame coordinates."""

    id: str
    p1: Point
    p2: Point


def side(line: Line, q: Point) -> float:
    """Signed side of ``q``: negative on the left of ``p1 -> p2``, positive on the right."""
    (x1, y1), (x2, y2) = line.p1, line.p2
    return (x2 - x1) * (q[1] - y1) - (y2 - y1) * (q[0] - x1)


def crossing_direction(line: Line, old: Point, new: Point) -> str | None:
    """Return the direction in which the move ``old -> new`` crosses the segment, or None."""
    before, after = side(line, old) > 0, side(line, new) > 0
    if before == after:
        return None
    # Where along p1 -> p2 the move crosses the infinite line; must be within the segment.
    (x1, y1), (x2, y2) = line.p1, line.p2
    dx, dy = new[0] - old[0], new[1] - old[1]
    denom = (x2 - x1) * dy - (y2 - y1) * dx
    if denom == 0:
        return None
    u = ((old[0] - x1) * dy - (old[1] - y1) * dx) / denom
    if not 0.0 <= u <= 1.0:
        return None
    return "left_to_right" if after else "right_to_left"
