"""Tiled detections merged across seams: no object twice, no part standing for it.

Synthetic tiles first (exact boxes), then the scripted simulator scenarios through the
whole pipeline tiled 2x2 (the ``mid`` line lies on the vertical seam), then a real
dense street photo with YOLOX-nano.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from gateway.config.vision import DetectorConfig, TilingConfig
from gateway.demo.accuracy import run_scenario
from gateway.vision.analytics.score import score
from gateway.vision.boxes import areas, box_iou, intersections
from gateway.vision.detections import Detections
from gateway.vision.detector import load_detector
from gateway.vision.nms import nms
from gateway.vision.seams import merge_tiles, seam_cuts
from gateway.vision.tiling import Tiler, detect_crops
from simulators.camera.scenarios import SCENARIOS

FRAME = (200, 200)
# 2x2 tiles overlapping by 40 px: seams at x 80..120 and y 80..120.
TILES = [(0, 0, 120, 120), (80, 0, 200, 120), (0, 80, 120, 200), (80, 80, 200, 200)]
PERSON, CAR = 0, 2

Box = tuple[float, float, float, float]


def seen(obj: Box, tile: int) -> Box | None:
    """What tile ``tile`` reports of an object box: its part inside, if any."""
    tx1, ty1, tx2, ty2 = TILES[tile]
    x1, y1, x2, y2 = max(obj[0], tx1), max(obj[1], ty1), min(obj[2], tx2), min(obj[3], ty2)
    return (x1, y1, x2, y2) if x2 - x1 > 2 and y2 - y1 > 2 else None


def tile_parts(objects: list[tuple[Box, int]]) -> list[Detections]:
    parts = []
    for k in range(len(TILES)):
        rows = [(b, c) for obj, c in objects if (b := seen(obj, k)) is not None]
        parts.append(
            Detections.from_arrays([b for b, _ in rows], [0.8] * len(rows), [c for _, c in rows])
            if rows
            else Detections.empty()
        )
    return parts


def dets(*rows: tuple[Box, int]) -> Detections:
    return Detections.from_arrays([b for b, _ in rows], [0.7] * len(rows), [c for _, c in rows])


def same_boxes(got: Detections, want: list[Box]) -> bool:
    if len(got) != len(want):
        return False
    iou = box_iou(got.xyxy, np.array(want, dtype=np.float32))
    return bool((iou.max(axis=0) >= 0.95).all())


def test_seam_cuts_only_inner_tile_edges() -> None:
    boxes = np.array([[0, 10, 50, 60], [70, 10, 120, 60], [70, 100, 120, 120]], np.float32)
    cuts = seam_cuts(boxes, TILES[0], FRAME)
    # the frame's own edges (left, top) are not seams
    assert cuts.tolist() == [[0, 0, 0, 0], [0, 0, 1, 0], [0, 0, 1, 1]]


@pytest.mark.parametrize(
    ("objects", "why"),
    [
        ([((60, 20, 150, 70), CAR)], "a car across the vertical seam: two halves, one car"),
        ([((30, 40, 60, 160), PERSON)], "a person across the horizontal seam"),
        ([((60, 50, 150, 160), CAR)], "across both seams: four parts, one car"),
        ([((85, 20, 115, 70), PERSON)], "inside the overlap: both tiles see it whole"),
        ([((90, 20, 140, 70), PERSON)], "ends inside the overlap: a part and a whole box"),
        (
            [((60, 30, 150, 80), CAR), ((70, 10, 160, 50), CAR)],
            "a car behind another (higher up) across the seam: two cars",
        ),
        (
            [((40, 20, 95, 70), PERSON), ((100, 22, 160, 72), PERSON)],
            "two people side by side at the seam: two people",
        ),
    ],
)
def test_parts_across_seams_become_one_box_per_object(
    objects: list[tuple[Box, int]], why: str
) -> None:
    merged = merge_tiles(tile_parts(objects), TILES, FRAME, None, 0.45)
    assert same_boxes(merged, [b for b, _ in objects]), (why, merged.xyxy.tolist())


@pytest.mark.parametrize(
    ("full", "objects", "want"),
    [
        # The whole frame saw the object whole; the tiles only its halves: the whole box.
        (
            [((60, 20, 150, 70), CAR)],
            [((60, 20, 150, 70), CAR)],
            [(60, 20, 150, 70)],
        ),
        # A torso box from a tile inside the whole-frame person: one person.
        ([((20, 10, 60, 110), PERSON)], [((25, 12, 55, 60), PERSON)], [(20, 10, 60, 110)]),
        # The whole frame boxed two walkers as one; the tiles saw them apart.
        (
            [((10, 10, 75, 100), PERSON)],
            [((10, 10, 40, 100), PERSON), ((42, 12, 75, 100), PERSON)],
            [(10, 10, 40, 100), (42, 12, 75, 100)],
        ),
        # Something the tiles missed stays.
        ([((150, 150, 190, 190), CAR)], [], [(150, 150, 190, 190)]),
    ],
)
def test_whole_frame_pass_reconciled(
    full: list[tuple[Box, int]], objects: list[tuple[Box, int]], want: list[Box]
) -> None:
    merged = merge_tiles(tile_parts(objects), TILES, FRAME, dets(*full), 0.45)
    assert same_boxes(merged, want), merged.xyxy.tolist()


@pytest.mark.slow
@pytest.mark.parametrize("full_frame", [True, False])
@pytest.mark.parametrize("name", sorted(SCENARIOS))
def test_scenarios_tiled_on_the_line_count_exactly(name: str, full_frame: bool) -> None:
    """2x2 tiles put a seam on the ``mid`` line; each tile sees only its part of objects.

    Merged by NMS alone, objects crossing there were counted twice (already_past,
    bus_occlusion, edges); merged across seams, every crossing counts once.
    """
    tiling = TilingConfig(mode="grid", rows=2, cols=2, full_frame=full_frame)
    run = run_scenario(name, "truth", tiling=tiling)
    result = score(run.counted, run.truth)
    assert not result.false_counts, result.table()
    assert not result.misses, result.table()


def same_depth_duplicates(d: Detections) -> int:
    """Pairs of one class where one box lies 70 % inside the other, bottoms level.

    (A person far behind another lies inside their box too, but stands higher up.)
    """
    n = 0
    for cid in set(d.class_id.tolist()):
        s = d[d.class_id == cid].xyxy.astype(np.float64)
        share = intersections(s, s) / np.maximum(areas(s), 1e-9)[:, None]
        np.fill_diagonal(share, 0)
        for i, j in zip(*np.nonzero(share >= 0.7), strict=True):
            n += int(abs(s[i, 3] - s[j, 3]) <= 0.1 * (s[j, 3] - s[j, 1]))
    return n


@pytest.mark.parametrize("grid", [(2, 2), (3, 3)])
def test_street_photo_tiled_has_no_seam_duplicates(
    yolox_nano: Path, street_jpg: Path, grid: tuple[int, int]
) -> None:
    """street.jpg (1330x1330) tiled: the far pedestrians show up, nobody twice.

    Merged by NMS alone, 2x2 gave 25 boxes for this scene (19 "people", where the whole
    frame sees 9): torso boxes above the horizontal seam, halves of the people on the
    vertical one, 4 of them nested in another box at one depth.
    """
    detector = load_detector(DetectorConfig(model=str(yolox_nano)))
    image = cv2.imread(str(street_jpg))
    h, w = image.shape[:2]
    plain = detector.detect(image)
    tiler = Tiler(TilingConfig(mode="grid", rows=grid[0], cols=grid[1]), detector.input_size)
    tiled = tiler.detect(image, detector.detect)
    people = int((tiled.class_id == PERSON).sum())
    assert people >= int((plain.class_id == PERSON).sum()) + 1
    assert same_depth_duplicates(tiled) == 0
    # Merged by NMS alone (as before), the same detections hold duplicates.
    parts = detect_crops(image, tiler.tiles((w, h)), detector.detect)
    by_nms = nms(Detections.concat([*parts, plain]), 0.45, class_aware=True)
    assert same_depth_duplicates(by_nms) > 0
    assert len(by_nms) > len(tiled)
