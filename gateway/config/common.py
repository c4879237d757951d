"""Building blocks shared by every config section."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

# A coordinate normalised to the frame: 0 is the left/top edge, 1 the right/bottom.
Norm = Annotated[float, Field(ge=0.0, le=1.0)]
# An identifier that is safe inside an MQTT topic level and an InfluxDB tag.
Ident = Annotated[str, Field(pattern=r"^[A-Za-z0-9_.-]{1,64}$")]


class StrictModel(BaseModel):
    """Base of every config section: unknown keys are errors."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)


# A coordinate this large is a pixel position, not a mistyped fraction (1.5 is the latter).
PIXELS_FROM = 2.0
# Common camera frame sizes, smallest first: the guess for points given in pixels.
FRAME_SIZES: tuple[tuple[int, int], ...] = (
    (640, 360), (640, 480), (1280, 720), (1920, 1080), (2560, 1440), (3840, 2160),
)  # fmt: skip


def pixel_hint(points: object) -> str | None:
    """The one error for shapes given in pixels instead of fractions, or ``None``.

    ``points`` is the raw ``[[x, y], ...]`` value; when a coordinate is above 1 (and
    none is negative) they are pixels: the message says coordinates are fractions and
    shows the points divided by the smallest common frame size that holds them.
    """
    if not isinstance(points, Sequence) or isinstance(points, str):
        return None
    pairs: list[tuple[float, float]] = []
    for point in points:
        if not isinstance(point, Sequence) or len(point) != 2:
            return None
        if not all(isinstance(v, int | float) and not isinstance(v, bool) for v in point):
            return None
        pairs.append((float(point[0]), float(point[1])))
    if not pairs or min(min(p) for p in pairs) < 0 or max(max(p) for p in pairs) < PIXELS_FROM:
        return None
    mx, my = max(p[0] for p in pairs), max(p[1] for p in pairs)
    w, h = next(((w, h) for w, h in FRAME_SIZES if w >= mx and h >= my), (round(mx), round(my)))
    given = ", ".join(f"({x:g}, {y:g})" for x, y in pairs)
    converted = ", ".join(f"({x / w:.3g}, {y / h:.3g})" for x, y in pairs)
    return (
        f"coordinates are fractions of the frame from 0 to 1 (x of its width, y of its height), "
        f"not pixels: {given} on a {w}x{h} frame are {converted} (divide by the camera's "
        "real size; gateway camera snapshot shows it)"
    )
