"""Tiled inference: grid choice, tile geometry, merging, and what it finds on a real dense scene."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from gateway.config.vision import DetectorConfig, TilingConfig
from gateway.vision.boxes import box_iou
from gateway.vision.detections import Detections
from gateway.vision.detector import load_detector
from gateway.vision.tiling import Tiler, grid_for, offset, tile_boxes


@pytest.mark.parametrize(
    ("cfg", "frame", "expected"),
    [
        (TilingConfig(mode="off", rows=3, cols=3), (1920, 1080), (1, 1)),
        (TilingConfig(mode="grid", rows=3, cols=2), (640, 480), (3, 2)),
        (TilingConfig(mode="auto"), (1920, 1080), (2, 3)),
        (TilingConfig(mode="auto"), (3840, 2160), (3, 5)),
        (TilingConfig(mode="auto"), (480, 360), (1, 1)),
        (TilingConfig(mode="auto"), (832, 832), (1, 1)),
        (TilingConfig(mode="auto"), (833, 400), (1, 2)),
        (TilingConfig(mode="auto"), (20000, 20000), (8, 8)),
    ],
)
def test_grid_for(cfg: TilingConfig, frame: tuple[int, int], expected: tuple[int, int]) -> None:
    assert grid_for(cfg, frame, (416, 416)) == expected


@pytest.mark.parametrize(
    ("size", "rows", "cols", "overlap"),
    [
        ((1920, 1080), 2, 3, 0.15),
        ((1333, 777), 3, 3, 0.2),
        ((640, 480), 1, 2, 0.0),
        ((500, 500), 4, 1, 0.3),
    ],
)
def test_tiles_cover_the_frame_with_overlap(
    size: tuple[int, int], rows: int, cols: int, overlap: float
) -> None:
    tiles = tile_boxes(size, rows, cols, overlap)
    assert len(tiles) == rows * cols
    covered = np.zeros((size[1], size[0]), dtype=bool)
    for x1, y1, x2, y2 in tiles:
        assert 0 <= x1 < x2 <= size[0]
        assert 0 <= y1 < y2 <= size[1]
        covered[y1:y2, x1:x2] = True
    assert covered.all()
    if cols > 1:
        a, b = tiles[0], tiles[1]
        width = a[2] - a[0]
        assert (a[2] - b[0]) == pytest.approx(width * overlap, abs=1.5)
    assert max(t[2] for t in tiles) == size[0]
    assert max(t[3] for t in tiles) == size[1]


def test_offset_moves_boxes_back_to_frame_pixels() -> None:
    dets = Detections.from_arrays([[1, 2, 3, 4]], [0.9], [2])
    moved = offset(dets, 100, 50)
    assert moved.xyxy.tolist() == [[101, 52, 103, 54]]
    assert moved.class_id.tolist() == [2]


def test_tiler_off_is_a_single_detect_call() -> None:
    calls: list[tuple[int, ...]] = []

    def detect(image: np.ndarray) -> Detections:
        calls.append(image.shape)
        return Detections.empty()

    Tiler(TilingConfig(mode="off"), (416, 416)).detect(np.zeros((1080, 1920, 3), np.uint8), detect)
    assert calls == [(1080, 1920, 3)]


def test_tiler_cache_is_bounded() -> None:
    tiler = Tiler(TilingConfig(mode="auto"), (416, 416))
    for w in range(900, 1000):
        tiler.tiles((w, 900))
    assert len(tiler._grid) <= 8


def test_tiling_finds_more_on_a_dense_high_resolution_scene(
    yolox_nano: Path, street_jpg: Path
) -> None:
    # street.jpg is 1330x1330: the untiled model sees it at 416x416 and misses the far
    # pedestrians; 2x2 tiles (auto for this size) give them 3x the pixels. (Merged by NMS
    # alone this found 12 more boxes, most of them halves of people cut by the seams:
    # see tests/unit/vision/test_seams.py. Merged across seams, one more far pedestrian.)
    detector = load_detector(DetectorConfig(model=str(yolox_nano)))
    image = cv2.imread(str(street_jpg))
    plain = Tiler(TilingConfig(mode="off"), detector.input_size).detect(image, detector.detect)
    tiler = Tiler(TilingConfig(mode="auto"), detector.input_size)
    assert len(tiler.tiles((image.shape[1], image.shape[0]))) == 4
    tiled = tiler.detect(image, detector.detect)
    people = [int((d.class_id == 0).sum()) for d in (plain, tiled)]
    assert people[1] >= people[0] + 1
    h, w = image.shape[:2]
    assert (tiled.xyxy[:, [0, 2]] <= w + 1).all()
    assert (tiled.xyxy[:, [1, 3]] <= h + 1).all()
    # merged: no two boxes of one class overlap above the NMS threshold
    for cid in set(tiled.class_id.tolist()):
        same = tiled[tiled.class_id == cid]
        iou = box_iou(same.xyxy, same.xyxy)
        np.fill_diagonal(iou, 0)
        assert (iou <= 0.45 + 1e-6).all()
