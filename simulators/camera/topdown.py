"""Draw the :class:`~simulators.camera.intersection.Intersection` as a mast camera sees it.

The camera looks down on the junction from a high mast, slightly tilted (a homography
from the ground plane in metres to the image): the far edge of the view is narrower
than the near one. Vehicles are drawn as their footprints (the view is nearly straight
down), so a vehicle's box is the bounding box of its footprint on the image. The ground
(asphalt, markings, crossings, kerbs, buildings, trees) is drawn once on a map and
warped into the view; a :class:`~simulators.camera.mount.Mount` moves the view (its
transform is composed into the homography, so the truth moves with the picture).

Conditions: ``day``; ``dusk`` (darker, bluer, headlights); ``rain`` (darker, greyer,
streaks, noise, slight blur); ``light`` scales the brightness in between, so a day can
fade into dusk.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np
from numpy.typing import NDArray

from simulators.camera.intersection import ARMS, BOX, LANE_W, OUT, Intersection, Vehicle
from simulators.camera.mount import FIXED, Mount
from simulators.camera.render import GroundTruth
from simulators.camera.world import CLASSES

F64 = NDArray[np.float64]
Image = NDArray[np.uint8]
HALF = 45.0  # the view spans about +-45 m around the centre
MAP_PX_M = 8.0  # resolution of the ground map
MAP_HALF = 60.0
Condition = str  # "day" | "dusk" | "rain"


def ground_to_image(width: int, height: int, tilt: float = 0.18) -> F64:
    """Ground metres -> pixels: +-HALF m fills the frame, the far (north) edge ``tilt`` narrower."""
    src = np.array([[-HALF, HALF], [HALF, HALF], [HALF, -HALF], [-HALF, -HALF]], np.float32)
    inset = tilt * width / 2
    dst = np.array([[inset, 0], [width - inset, 0], [width, height], [0, height]], np.float32)
    matrix: F64 = cv2.getPerspectiveTransform(src, dst).astype(np.float64)
    return matrix


def project(matrix: F64, points: NDArray[np.floating]) -> F64:
    """Map ``(N, 2)`` points through a homography."""
    pts = np.asarray(points, dtype=np.float64).reshape(-1, 2)
    homog = np.hstack([pts, np.ones((len(pts), 1))]) @ matrix.T
    out: F64 = homog[:, :2] / homog[:, 2:3]
    return out


def _map_to_ground() -> F64:
    """Map pixels -> ground metres (y up)."""
    s = 1.0 / MAP_PX_M
    return np.array([[s, 0, -MAP_HALF], [0, -s, MAP_HALF], [0, 0, 1]], dtype=np.float64)


def _ground_map(rng: np.random.Generator) -> Image:
    size = int(2 * MAP_HALF * MAP_PX_M)
    grass = np.full((size, size, 3), (70, 130, 85), dtype=np.float64)
    img: Image = np.clip(grass + rng.normal(0, 9, (size, size, 1)), 0, 255).astype(np.uint8)

    def px(x: float, y: float) -> tuple[int, int]:
        return int((x + MAP_HALF) * MAP_PX_M), int((MAP_HALF - y) * MAP_PX_M)

    # Blocks at the corners: pavements, buildings with roof detail, parking, trees.
    for sx in (-1, 1):
        for sy in (-1, 1):
            x0, y0 = sx * (LANE_W + 4.0), sy * (LANE_W + 4.0)
            cv2.rectangle(img, px(x0, y0), px(sx * MAP_HALF, sy * MAP_HALF), (165, 170, 172), -1)
            for _ in range(4):
                bx = sx * float(rng.uniform(LANE_W + 8, MAP_HALF - 12))
                by = sy * float(rng.uniform(LANE_W + 8, MAP_HALF - 12))
                bw, bh = float(rng.uniform(6, 14)), float(rng.uniform(6, 14))
                colour = tuple(int(c) for c in rng.integers(60, 200, 3))
                cv2.rectangle(img, px(bx, by), px(bx + bw, by + bh), colour, -1)
                cv2.rectangle(
                    img, px(bx + 1, by + 1), px(bx + bw - 1, by + bh - 1), (40, 40, 40), 2
                )
                cv2.line(img, px(bx, by), px(bx + bw, by + bh), (50, 50, 50), 1)
            for _ in range(6):
                tx = sx * float(rng.uniform(LANE_W + 6, MAP_HALF))
                ty = sy * float(rng.uniform(LANE_W + 6, MAP_HALF))
                r = int(rng.uniform(1.5, 3.0) * MAP_PX_M)
                cv2.circle(img, px(tx, ty), r, (40, 95, 50), -1)
                cv2.circle(img, px(tx, ty), r // 2, (55, 120, 60), -1)
    road = (82, 84, 86)
    w = LANE_W
    cv2.rectangle(img, px(-MAP_HALF, w), px(MAP_HALF, -w), road, -1)
    cv2.rectangle(img, px(-w, MAP_HALF), px(w, -MAP_HALF), road, -1)
    for arm in ARMS:  # centre lines, edge lines, stop lines, zebra crossings
        dx, dy = OUT[arm]
        nx, ny = -dy, dx
        for s0 in np.arange(BOX + 1, MAP_HALF, 3.0):
            a, b = (dx * s0, dy * s0), (dx * (s0 + 1.5), dy * (s0 + 1.5))
            cv2.line(img, px(*a), px(*b), (40, 190, 220), 2)
        for side in (-1, 1):
            a = (dx * BOX + nx * side * w * 0.97, dy * BOX + ny * side * w * 0.97)
            b = (dx * MAP_HALF + nx * side * w * 0.97, dy * MAP_HALF + ny * side * w * 0.97)
            cv2.line(img, px(*a), px(*b), (220, 220, 220), 2)
        inbound = -1  # the inbound lane is on the arm's left when looking outward
        a = (dx * BOX, dy * BOX)
        b = (dx * BOX + nx * inbound * w, dy * BOX + ny * inbound * w)
        cv2.line(img, px(*a), px(*b), (235, 235, 235), 4)
        for k in np.arange(-w + 0.3, w, 1.0):
            c0 = (dx * (BOX + 1.0) + nx * k, dy * (BOX + 1.0) + ny * k)
            c1 = (dx * (BOX + 3.5) + nx * (k + 0.5), dy * (BOX + 3.5) + ny * (k + 0.5))
            cv2.rectangle(img, px(*c0), px(*c1), (225, 225, 225), -1)
    return np.asarray(cv2.GaussianBlur(img, (3, 3), 0), dtype=np.uint8)


@dataclass(slots=True)
class _View:
    matrix: F64
    background: Image


class TopDownRenderer:
    """Renders an intersection at ``width x height`` in one condition, with a mount."""

    def __init__(
        self,
        width: int = 640,
        height: int = 640,
        condition: Condition = "day",
        seed: int = 0,
        *,
        mount: Mount = FIXED,
        light: float | Callable[[float], float] | None = None,
    ) -> None:
        """``light`` (0.3..1, or a function of simulated time) overrides the brightness.

        The conditions' own levels are day 1.0, rain 0.7 and dusk 0.45.
        """
        if condition not in ("day", "dusk", "rain"):
            raise ValueError(f"unknown condition {condition!r}; expected day, dusk or rain")
        self.width, self.height, self.condition, self.seed = width, height, condition, seed
        self.mount = mount
        self.light = light
        self.camera = ground_to_image(width, height)
        self._map = _ground_map(np.random.default_rng(seed + 104729))
        self._view: _View | None = None

    def matrix(self, t: float) -> F64:
        """Ground metres -> pixels at simulated time ``t`` (the mount's move included)."""
        moved: F64 = self.mount.matrix(t, (self.width, self.height)) @ self.camera
        return moved

    def _background(self, matrix: F64) -> Image:
        if self._view is None or not np.array_equal(self._view.matrix, matrix):
            warp = matrix @ _map_to_ground()
            bg = np.asarray(
                cv2.warpPerspective(self._map, warp, (self.width, self.height)), dtype=np.uint8
            )
            self._view = _View(matrix.copy(), bg)
        return self._view.background

    def render(self, world: Intersection) -> tuple[Image, GroundTruth]:
        """Render the current state: the frame and its ground truth."""
        matrix = self.matrix(world.t)
        img = self._background(matrix).copy()
        ids = np.zeros((self.height, self.width), dtype=np.uint16)
        rows = []
        dusk = self.condition == "dusk"
        for v in sorted(world.vehicles, key=lambda v: (v.length, v.id)):  # big ones on top
            poly = project(matrix, v.footprint())
            if not _on_screen(poly, self.width, self.height):
                continue
            _draw_vehicle(img, v, matrix, poly, dusk)
            cv2.fillPoly(ids, [np.round(poly).astype(np.int32)], int(v.id))
            rows.append((v, poly))
        light = self.light(world.t) if callable(self.light) else self.light
        rng = np.random.default_rng([self.seed, world.frame])
        final = _condition(img, self.condition, light, rng)
        return final, _truth(rows, ids, self.width, self.height)


def _on_screen(poly: F64, w: int, h: int) -> bool:
    x1, y1 = poly.min(axis=0)
    x2, y2 = poly.max(axis=0)
    return bool(x2 > 0 and y2 > 0 and x1 < w and y1 < h)


def _draw_vehicle(img: Image, v: Vehicle, matrix: F64, poly: F64, dusk: bool) -> None:
    shadow = project(matrix, v.footprint() + np.array([0.35, -0.35]))
    cv2.fillPoly(img, [np.round(shadow).astype(np.int32)], (35, 35, 38))
    cv2.fillPoly(img, [np.round(poly).astype(np.int32)], v.colour)
    cv2.polylines(img, [np.round(poly).astype(np.int32)], True, (20, 20, 20), 1)
    # Roof and windscreen: an inset rectangle and a dark band towards the front.
    x, y, h = v.pose()
    c, s = np.cos(h), np.sin(h)
    rot = np.array([[c, -s], [s, c]])
    hl, hw = v.length / 2, v.width / 2
    roof = np.array(
        [
            [-hl * 0.55, hw * 0.7],
            [hl * 0.3, hw * 0.7],
            [hl * 0.3, -hw * 0.7],
            [-hl * 0.55, -hw * 0.7],
        ]
    )
    glass = np.array(
        [
            [hl * 0.3, hw * 0.75],
            [hl * 0.55, hw * 0.8],
            [hl * 0.55, -hw * 0.8],
            [hl * 0.3, -hw * 0.75],
        ]
    )
    shade = tuple(int(min(255, ch * 0.8 + 20)) for ch in v.colour)
    for part, colour in ((roof, shade), (glass, (70, 55, 45))):
        pts = project(matrix, part @ rot.T + np.array([x, y]))
        cv2.fillPoly(img, [np.round(pts).astype(np.int32)], colour)
    if dusk:
        for side in (-0.7, 0.7):
            lamp = project(matrix, np.array([[hl, hw * side]]) @ rot.T + np.array([x, y]))[0]
            cv2.circle(img, (int(lamp[0]), int(lamp[1])), 2, (220, 250, 255), -1)


def _truth(rows: list[tuple[Vehicle, F64]], ids: NDArray[np.uint16], w: int, h: int) -> GroundTruth:
    out_ids, cls, boxes, visible, seen = [], [], [], [], []
    for v, poly in rows:
        full = float(cv2.contourArea(poly.astype(np.float32))) or 1.0
        x1, y1 = poly.min(axis=0)
        x2, y2 = poly.max(axis=0)
        box = np.clip([x1, y1, x2, y2], 0, [w, h, w, h])
        if box[2] - box[0] < 1 or box[3] - box[1] < 1:
            continue
        x0, y0 = int(box[0]), int(box[1])
        roi = ids[y0 : int(np.ceil(box[3])) + 1, x0 : int(np.ceil(box[2])) + 1] == v.id
        ys, xs = np.nonzero(roi)
        out_ids.append(v.id)
        cls.append(CLASSES.index(v.cls))
        boxes.append(box)
        visible.append(min(1.0, len(xs) / full))
        seen.append(
            [x0 + xs.min(), y0 + ys.min(), x0 + xs.max() + 1, y0 + ys.max() + 1]
            if len(xs)
            else [0, 0, 0, 0]
        )
    if not out_ids:
        return GroundTruth.empty()
    return GroundTruth(
        np.array(out_ids, np.int64),
        np.array(cls, np.int64),
        np.array(boxes, np.float32).reshape(-1, 4),
        np.array(visible, np.float32),
        np.array(seen, np.float32).reshape(-1, 4),
    )


@functools.cache
def _noise_bank(h: int, w: int) -> tuple[NDArray[np.float32], ...]:
    """A few frames of sensor noise (sigma 3), rolled at random per frame: cheap and varied."""
    rng = np.random.default_rng(h * 7919 + w)
    return tuple(rng.normal(0.0, 3.0, (h, w)).astype(np.float32) for _ in range(4))


def _condition(
    img: Image, condition: Condition, light: float | None, rng: np.random.Generator
) -> Image:
    level = light if light is not None else {"day": 1.0, "dusk": 0.45, "rain": 0.7}[condition]
    h, w = img.shape[:2]
    out: NDArray[Any] = img
    if level < 1.0 or condition == "rain":
        k = max(0.0, (1.0 - level) / 0.55)
        gains = np.array([1.0, 1.0 - 0.15 * k, 1.0 - 0.25 * k]) * level  # darker, bluer
        mix = np.diag(gains)
        if condition == "rain":  # greyer
            mix = (0.6 * np.eye(3) + 0.4 / 3) * gains[:, None]
        bright = cv2.cvtColor(img, cv2.COLOR_BGR2GRAY) > 245  # lights stay bright
        out = cv2.transform(img, mix.astype(np.float32))
        out[bright] = img[bright]
    sigma = 7 if condition == "rain" else 3
    bank = _noise_bank(h, w)
    k = int(rng.integers(len(bank)))
    dy, dx = int(rng.integers(h)), int(rng.integers(w))
    noise = np.roll(bank[k], (dy, dx), axis=(0, 1)) * (sigma / 3.0)
    out = cv2.add(out.astype(np.float32), cv2.merge([noise] * 3))
    if condition == "rain":
        streaks = np.zeros((h, w), dtype=np.uint8)
        n = (w * h) // 900
        xs, ys = rng.integers(0, w, n), rng.integers(0, h, n)
        length = max(4, h // 25)
        for x, y in zip(xs.tolist(), ys.tolist(), strict=True):
            cv2.line(streaks, (x, y), (x - length // 4, y + length), 255, 1)
        out = cv2.add(out, cv2.merge([streaks.astype(np.float32) * 0.25] * 3))
        rained = cv2.GaussianBlur(np.clip(out, 0, 255).astype(np.uint8), (3, 3), 0)
        return np.asarray(rained, dtype=np.uint8)
    final: Image = np.clip(out, 0, 255).astype(np.uint8)
    return final
