"""Draw a :class:`World` as a BGR frame with exact per-object ground truth.

The static background (buildings, trees, sidewalks, road markings, a lamp post
in front of the road) is drawn once per renderer. Actors are drawn far-to-near so
nearer vehicles occlude farther ones; an id map drawn with the same primitives
gives each object's visible fraction. Conditions: ``day``, ``dusk`` (dark, blue,
lights on) and ``rain`` (darker, grey, streaks, sensor noise).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, cast

import cv2
import numpy as np
from numpy.typing import NDArray

from simulators.camera.shapes import Prim, actor_prims
from simulators.camera.world import CLASSES, FAR_WALK, NEAR_WALK, ROAD, Actor, World

Condition = Literal["day", "dusk", "rain"]
CONDITIONS: tuple[Condition, ...] = ("day", "dusk", "rain")
Image = NDArray[np.uint8]
LAMP_X = 0.18


@dataclass(frozen=True, slots=True)
class GroundTruth:
    """Objects in one frame: ids, class indices, boxes (pixels, clipped) and visibility.

    ``visible`` is the fraction of the object that can be seen: not hidden by nearer
    objects or the lamp post, and inside the frame. ``visible_xyxy`` is the box around
    its visible pixels (what an ideal detector would report for a half-hidden object:
    a car's roof above a bus, a person's torso at the frame edge); all zeros when
    nothing of it shows.
    """

    ids: NDArray[np.int64]
    class_id: NDArray[np.int64]
    xyxy: NDArray[np.float32]
    visible: NDArray[np.float32]
    visible_xyxy: NDArray[np.float32]

    def __len__(self) -> int:
        return len(self.ids)

    @classmethod
    def empty(cls) -> GroundTruth:
        """No object in the frame."""
        boxes = np.empty((0, 4), np.float32)
        return cls(
            np.empty(0, np.int64), np.empty(0, np.int64), boxes, np.empty(0, np.float32), boxes
        )


class Renderer:
    """Renders one world's frames at ``width x height`` in one condition."""

    def __init__(
        self, width: int, height: int, condition: Condition = "day", seed: int = 0
    ) -> None:
        if condition not in CONDITIONS:
            raise ValueError(
                f"unknown condition {condition!r}; expected one of {', '.join(CONDITIONS)}"
            )
        if width < 64 or height < 64:
            raise ValueError(f"frame size {width}x{height} is too small (at least 64x64)")
        self.width, self.height, self.condition, self.seed = width, height, condition, seed
        self.background = _background(width, height, np.random.default_rng(seed + 7919))
        self._lamp = _lamp(width, height)

    def render(self, world: World) -> tuple[Image, GroundTruth]:
        """Render the world's current state; returns the frame and its ground truth."""
        w, h = self.width, self.height
        img = self.background.copy()
        ids = np.zeros((h, w), dtype=np.uint16)
        actors = sorted(world.actors, key=lambda a: (a.y, a.id))
        dusk = self.condition == "dusk"
        full_px: dict[int, int] = {}
        for actor in actors:
            prims = actor_prims(actor, w, h, dusk)
            _shadow(img, actor.x * w, actor.y * h, actor.size(w / h)[0] * w)
            _draw(img, prims, None)
            own = np.zeros((h, w), dtype=np.uint8)
            _draw(own, prims, 1)
            full_px[actor.id] = int(np.count_nonzero(own))
            ids[own > 0] = actor.id
        _draw(img, self._lamp, None)
        _draw(ids, self._lamp, 0)
        img = _condition(img, self.condition, np.random.default_rng([self.seed, world.frame]))
        return img, _truth(actors, ids, full_px, w, h)


def _truth(
    actors: list[Actor], ids: NDArray[np.uint16], full_px: dict[int, int], w: int, h: int
) -> GroundTruth:
    counts = np.bincount(ids.ravel(), minlength=max(full_px, default=0) + 1)
    rows = []
    for actor in actors:
        x1, y1, x2, y2 = actor.box(w / h)
        box = np.clip([x1 * w, y1 * h, x2 * w, y2 * h], 0, [w, h, w, h])
        if box[2] - box[0] < 1 or box[3] - box[1] < 1:
            continue
        # Visible share of the drawn pixels, times the share of the box inside the frame.
        total = full_px[actor.id]
        inside = (box[2] - box[0]) * (box[3] - box[1]) / ((x2 - x1) * w * (y2 - y1) * h)
        visible = float(counts[actor.id]) / total * inside if total else 0.0
        rows.append((actor.id, CLASSES.index(actor.cls), *box, visible, *_seen(ids, actor.id, box)))
    if not rows:
        return GroundTruth.empty()
    arr = np.array(rows, dtype=np.float64)
    return GroundTruth(
        arr[:, 0].astype(np.int64),
        arr[:, 1].astype(np.int64),
        arr[:, 2:6].astype(np.float32),
        arr[:, 6].astype(np.float32),
        arr[:, 7:11].astype(np.float32),
    )


def _seen(
    ids: NDArray[np.uint16], actor_id: int, box: NDArray[np.float64]
) -> tuple[float, float, float, float]:
    """Box ``x1, y1, x2, y2`` around the pixels of ``actor_id`` left visible inside ``box``."""
    x1, y1 = int(box[0]), int(box[1])
    region = ids[y1 : int(np.ceil(box[3])) + 1, x1 : int(np.ceil(box[2])) + 1] == actor_id
    rows, cols = np.any(region, axis=1), np.any(region, axis=0)
    if not rows.any():
        return 0.0, 0.0, 0.0, 0.0
    r = np.flatnonzero(rows)
    c = np.flatnonzero(cols)
    return float(x1 + c[0]), float(y1 + r[0]), float(x1 + c[-1] + 1), float(y1 + r[-1] + 1)


def _draw(
    img: NDArray[np.uint8] | NDArray[np.uint16], prims: list[Prim], value: int | None
) -> None:
    for kind, geom, colour in prims:
        c = colour if value is None else (value, value, value)
        if kind == "poly":
            cv2.fillPoly(img, [cast("NDArray[np.int32]", geom)], c, lineType=cv2.LINE_8)
        elif kind == "circle":
            cx, cy, r = cast("tuple[int, int, int]", geom)
            if r < 0:
                cv2.circle(img, (cx, cy), -r - 1, c, max(1, -r // 5))
            else:
                cv2.circle(img, (cx, cy), r, c, -1)
        else:
            x1, y1, x2, y2, t = cast("tuple[int, int, int, int, int]", geom)
            cv2.line(img, (x1, y1), (x2, y2), c, t)


def _shadow(img: Image, x: float, y: float, w: float) -> None:
    roi_h = max(2, int(w * 0.06))
    cv2.ellipse(
        img, (int(x), int(y) - 1), (max(1, int(w * 0.48)), roi_h), 0, 0, 180, (35, 35, 38), -1
    )


def _lamp(w: int, h: int) -> list[Prim]:
    x = int(LAMP_X * w)
    pole_w = max(2, w // 90)
    top, base = int(0.08 * h), int(0.985 * h)
    pole = np.array(
        [
            [x - pole_w // 2, top],
            [x + pole_w // 2, top],
            [x + pole_w // 2, base],
            [x - pole_w // 2, base],
        ],
        dtype=np.int32,
    )
    arm = np.array(
        [[x, top], [x + w // 12, top], [x + w // 12, top + pole_w], [x, top + pole_w]],
        dtype=np.int32,
    )
    return [("poly", pole, (70, 75, 80)), ("poly", arm, (70, 75, 80))]


def _band(img: Image, y0: float, y1: float, colour: tuple[int, int, int]) -> None:
    h = img.shape[0]
    img[int(y0 * h) : int(y1 * h)] = colour


def _background(w: int, h: int, rng: np.random.Generator) -> Image:
    img = np.zeros((h, w, 3), dtype=np.uint8)
    sky = np.linspace(235, 190, int(0.2 * h))[:, None] * np.array([1.0, 0.9, 0.75])
    img[: len(sky)] = sky[:, None, :].astype(np.uint8)
    _band(img, 0.2, FAR_WALK[0], (110, 125, 105))
    x = 0
    while x < w:  # buildings
        bw = int(rng.uniform(0.08, 0.2) * w)
        top = int(rng.uniform(0.04, 0.22) * h)
        base = int(FAR_WALK[0] * h) - int(0.02 * h)
        c = tuple(int(v) for v in rng.integers(90, 200, 3))
        cv2.rectangle(img, (x, top), (x + bw, base), c, -1)
        for wy in range(top + 6, base - 8, max(8, h // 30)):
            for wx in range(x + 5, x + bw - 8, max(10, w // 45)):
                cv2.rectangle(
                    img, (wx, wy), (wx + max(3, w // 120), wy + max(3, h // 90)), (90, 80, 70), -1
                )
        x += bw + int(rng.uniform(0, 0.03) * w)
    for _ in range(5):  # trees behind the far sidewalk
        tx, ty = int(rng.uniform(0, w)), int(FAR_WALK[0] * h) - int(0.04 * h)
        cv2.circle(img, (tx, ty - int(0.05 * h)), int(0.05 * h), (50, 110, 60), -1)
    _band(img, FAR_WALK[0] - 0.01, ROAD[0], (165, 170, 175))
    _band(img, ROAD[0], ROAD[1], (88, 88, 90))
    _band(img, ROAD[1], NEAR_WALK[1] + 0.005, (160, 168, 172))
    _band(img, NEAR_WALK[1] + 0.005, 1.0, (70, 120, 80))
    for y in (ROAD[0], ROAD[1]):
        _band(img, y - 0.004, y + 0.004, (200, 200, 200))
    texture = rng.normal(0, 4, (h, w, 1))
    img = np.clip(img + texture, 0, 255).astype(np.uint8)
    yc = int(0.6 * h)  # centre line (double yellow)
    cv2.line(img, (0, yc - 2), (w, yc - 2), (40, 190, 220), max(1, h // 240))
    cv2.line(img, (0, yc + 2), (w, yc + 2), (40, 190, 220), max(1, h // 240))
    for ly in (0.52, 0.68, 0.76):  # dashed lane lines
        y = int(ly * h)
        for dx in range(0, w, w // 10):
            cv2.line(img, (dx, y), (dx + w // 20, y), (215, 215, 215), max(1, h // 200))
    for tx in range(0, w, w // 16):  # sidewalk joints
        cv2.line(
            img,
            (tx, int(ROAD[1] * h) + 3),
            (tx - w // 40, int(NEAR_WALK[1] * h)),
            (135, 140, 145),
            1,
        )
    return img


def _condition(img: Image, condition: Condition, rng: np.random.Generator) -> Image:
    if condition == "day":
        noise = rng.integers(-3, 4, img.shape[:2], dtype=np.int16)[..., None]
        day: Image = np.clip(img.astype(np.int16) + noise, 0, 255).astype(np.uint8)
        return day
    if condition == "dusk":
        out = img.astype(np.float32) * np.array([0.62, 0.5, 0.45], dtype=np.float32)
        bright = img.max(axis=2) > 240  # lights stay bright
        out[bright] = img[bright]
        out += rng.standard_normal(img.shape[:2], dtype=np.float32)[..., None] * 3
        return np.clip(out, 0, 255).astype(np.uint8)
    grey = img.mean(axis=2, keepdims=True, dtype=np.float32)
    out = (0.6 * img.astype(np.float32) + 0.4 * grey.astype(np.float32)) * 0.72
    streaks = np.zeros(img.shape[:2], dtype=np.uint8)
    h, w = img.shape[:2]
    n = (w * h) // 900
    xs, ys = rng.integers(0, w, n), rng.integers(0, h, n)
    length = max(4, h // 25)
    for x, y in zip(xs.tolist(), ys.tolist(), strict=True):
        cv2.line(streaks, (x, y), (x - length // 4, y + length), 255, 1)
    out = out + streaks[..., None].astype(np.float32) * 0.25
    out += rng.standard_normal(img.shape[:2], dtype=np.float32)[..., None] * 7
    blurred: Image = cv2.GaussianBlur(np.clip(out, 0, 255).astype(np.uint8), (3, 3), 0)
    return blurred
