"""Motion gating: still scenes stay still, moving things are boxed, regions are merged."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from gateway.config.vision import MotionConfig
from gateway.vision.motion import MotionDetector, merge_regions
from gateway.vision.offline import read_frames


def first_frame(path: Path) -> np.ndarray:
    return read_frames(path, 1)[0]


def noisy(image: np.ndarray, rng: np.random.Generator, sigma: float = 4.0) -> np.ndarray:
    noise = rng.normal(0, sigma, image.shape)
    return np.clip(image.astype(np.float32) + noise, 0, 255).astype(np.uint8)


def test_still_scene_with_sensor_noise_has_no_motion(traffic_mp4: Path) -> None:
    detector = MotionDetector(MotionConfig(enabled=True, keyframe_interval=25))
    base = first_frame(traffic_mp4)
    rng = np.random.default_rng(0)
    results = [detector.detect(noisy(base, rng)) for _ in range(100)]
    assert not any(r.moving for r in results)
    keyframes = [i for i, r in enumerate(results) if r.keyframe]
    assert keyframes == [0, 25, 50, 75]  # the first frame, then every 25 regardless


def test_moving_square_is_boxed() -> None:
    detector = MotionDetector(MotionConfig(enabled=True, keyframe_interval=1000))
    background = np.full((360, 640, 3), 90, np.uint8)
    detector.detect(background)
    for step in range(1, 6):
        frame = background.copy()
        x = 100 + step * 30
        cv2.rectangle(frame, (x, 150), (x + 60, 210), (240, 240, 240), -1)
        result = detector.detect(frame)
    assert result.moving
    assert len(result.boxes) >= 1
    x1, y1, x2, y2 = result.boxes[0]
    # the box covers the square's current place (x = 250..310, y = 150..210)
    assert x1 <= 252
    assert x2 >= 308
    assert y1 <= 152
    assert y2 >= 208
    assert x2 - x1 < 640 / 2  # and not the whole frame


def test_real_traffic_clip_moves(traffic_mp4: Path) -> None:
    detector = MotionDetector(MotionConfig(enabled=True, keyframe_interval=1000))
    cap = cv2.VideoCapture(str(traffic_mp4))
    moving = 0
    for _ in range(60):
        ok, image = cap.read()
        assert ok
        moving += detector.detect(image).moving
    cap.release()
    assert moving >= 50  # vehicles are on the road in nearly every frame


def test_reset_forgets_the_background() -> None:
    detector = MotionDetector(MotionConfig(enabled=True))
    detector.detect(np.zeros((100, 100, 3), np.uint8))
    detector.reset()
    result = detector.detect(np.full((100, 100, 3), 255, np.uint8))
    assert result.keyframe
    assert not result.moving


@pytest.mark.parametrize(
    ("boxes", "expected"),
    [
        ([], []),
        ([[10, 10, 20, 20]], [(0, 0, 100, 100)]),  # grown to the minimum size, kept inside
        ([[950, 700, 960, 720]], [(860, 620, 960, 720)]),  # shifted inside at the far corner
        ([[100, 100, 150, 150], [160, 100, 210, 150]], [(75, 75, 235, 175)]),  # overlaps merge
        ([[0, 0, 30, 30], [800, 600, 830, 630]], [(0, 0, 100, 100), (765, 565, 865, 665)]),
    ],
)
def test_merge_regions(boxes: list[list[float]], expected: list[tuple[int, int, int, int]]) -> None:
    arr = np.array(boxes, dtype=np.float32).reshape(-1, 4)
    crops = merge_regions(arr, (960, 720), (100, 100), margin=0.25)
    assert crops == expected
