"""Training and evaluation frames from the road simulator, letterboxed for the demo model.

The model input is float32 RGB 0..1, NCHW, 192 x 320, the frame scaled to fit and
padded with grey 114. Training varies the scale and where the padding goes so the
model does not depend on one letterbox convention.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from simulators.camera.render import CONDITIONS, Renderer
from simulators.camera.world import World, WorldConfig

INPUT_H, INPUT_W = 192, 320
FRAME_W, FRAME_H = 640, 360
MIN_VISIBLE = 0.35  # objects less visible than this are "ignore" regions


@dataclass
class Sample:
    """One letterboxed frame and its boxes (input pixels)."""

    image: np.ndarray  # (INPUT_H, INPUT_W, 3) uint8 RGB
    boxes: np.ndarray  # (N, 4) float32 x1, y1, x2, y2
    classes: np.ndarray  # (N,) int64
    ignore: np.ndarray  # (N,) bool: too occluded to demand a detection


def letterbox(img: np.ndarray, scale: float, top: int, left: int) -> np.ndarray:
    """Scale a BGR frame and paste it onto a grey 114 RGB canvas at (top, left)."""
    h, w = img.shape[:2]
    nw, nh = round(w * scale), round(h * scale)
    canvas = np.full((INPUT_H, INPUT_W, 3), 114, dtype=np.uint8)
    resized = cv2.resize(img, (nw, nh), interpolation=cv2.INTER_AREA)
    canvas[top : top + nh, left : left + nw] = resized[:, :, ::-1]
    return canvas


def clip_frames(  # noqa: PLR0917
    seed: int, condition: str, n: int, spacing: int, density: float, warmup_s: float
):
    """Yield ``n`` (BGR frame, ground truth) pairs from one simulated clip."""
    world = World(WorldConfig(seed=seed, density=density, warmup_s=warmup_s))
    renderer = Renderer(FRAME_W, FRAME_H, condition, seed=seed)  # type: ignore[arg-type]
    for _ in range(n):
        for _ in range(spacing):
            world.step()
        yield renderer.render(world)


def make_samples(
    seed: int, count: int, conditions: tuple[str, ...] = CONDITIONS, augment: bool = True
) -> list[Sample]:
    """Render ``count`` samples from clips seeded from ``seed``."""
    rng = np.random.default_rng(seed)
    out: list[Sample] = []
    clip = 0
    while len(out) < count:
        cond = (
            conditions[clip % len(conditions)]
            if not augment
            else (str(rng.choice(conditions, p=_weights(conditions))))
        )
        density = float(rng.uniform(0.6, 1.8)) if augment else 1.0
        frames = clip_frames(
            seed * 1000 + clip,
            cond,
            16,
            int(rng.integers(8, 20)),
            density,
            float(rng.uniform(8, 30)),
        )
        for img, gt in frames:
            scale = float(rng.uniform(0.42, 0.5)) if augment else 0.5
            nw, nh = round(FRAME_W * scale), round(FRAME_H * scale)
            top = int(rng.integers(0, INPUT_H - nh + 1)) if augment else (INPUT_H - nh) // 2
            left = int(rng.integers(0, INPUT_W - nw + 1)) if augment else (INPUT_W - nw) // 2
            canvas = letterbox(img, scale, top, left)
            boxes = gt.xyxy * scale + np.array([left, top, left, top], dtype=np.float32)
            if augment and rng.random() < 0.5:
                canvas = canvas[:, ::-1].copy()
                boxes = boxes[:, [2, 1, 0, 3]] * np.array([-1, 1, -1, 1], np.float32) + np.array(
                    [INPUT_W, 0, INPUT_W, 0], np.float32
                )
            out.append(
                Sample(
                    canvas, boxes.astype(np.float32), gt.class_id.copy(), gt.visible < MIN_VISIBLE
                )
            )
            if len(out) >= count:
                break
        clip += 1
    return out


def _weights(conditions: tuple[str, ...]) -> list[float]:
    w = [2.0 if c == "day" else 1.0 for c in conditions]
    return [x / sum(w) for x in w]
