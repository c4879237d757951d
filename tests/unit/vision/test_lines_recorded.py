"""Tracker + line counter on recorded raw detections of real footage (no detector run).

``tests/data/detections/vtest_2x2_f520-560.jsonl``: YOLOX-nano's raw detections (conf
0.35, tiled 2x2 and merged across the seams) of frames 520-560 of ``vtest.avi``
(``/usr/share/doc/opencv-doc/examples/data/vtest.avi``, Debian's opencv-doc 4.6.0,
Apache-2.0 AND BSD-3-Clause), written by ``gateway count vtest.avi --model yolox_nano.onnx
--line 0.40,0.95,0.40,0.10 --classes person --tiles 2x2 --detections FILE`` and cut to
those frames. Replayed through the tracker and the analytics engine from frame 520, the
line counter makes the same crossings there as the whole clip's run does.

A couple walks right to left across the grass, boxed as one for a while: the man crosses
at f536, the woman beside him at f541 (``tests/data/crossings/vtest.jsonl``, made by
looking at the frames). Her track is first detected whole right of the line, then
reported with its box cut on the left by the nearer man's, and she crosses while cut.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from gateway.config.vision import CameraConfig
from gateway.vision.analytics.engine import AnalyticsEngine
from gateway.vision.analytics.score import CrossingRecord, read_records, score
from gateway.vision.analytics.sight import read_detections
from gateway.vision.analytics.types import LineCrossing
from gateway.vision.detections import Detections
from gateway.vision.tracker import make_tracker

DATA = Path(__file__).resolve().parents[2] / "data"


def test_tiled_vtest_couple_both_counted() -> None:
    frames = read_detections(DATA / "detections" / "vtest_2x2_f520-560.jsonl")
    camera = CameraConfig.model_validate(
        {
            "id": "count",
            "source": {"type": "file", "path": "vtest.avi"},
            "lines": [
                {"id": "line1", "points": [[0.40, 0.95], [0.40, 0.10]], "classes": ["person"]}
            ],
        }
    )
    tracker = make_tracker(camera.tracker)
    engine = AnalyticsEngine(camera, ["person"], (768, 576))
    counted = []
    for index in sorted(frames):
        f = frames[index]
        dets = Detections.empty()
        if f.xyxy:
            dets = Detections.from_arrays(
                np.array(f.xyxy), np.array(f.scores), np.zeros(len(f.xyxy), dtype=np.int64)
            )
        tracked = tracker.update(dets, f.t)
        for e in engine.update(tracked, f.t, births=tracker.births):
            if isinstance(e, LineCrossing):
                t = e.timestamp if e.crossed_at is None else e.crossed_at
                counted.append(CrossingRecord("line1", e.direction, e.label, t, index))
    truth = [r for r in read_records(DATA / "crossings" / "vtest.jsonl") if 52.5 <= r.t <= 55.5]
    assert [r.frame for r in truth] == [536, 541]
    result = score(counted, truth, 0.5)
    assert not result.false_counts and not result.misses, result.table()
