"""Tracker + counting line on real footage (``../shared/data/traffic_480p.mp4``) with YOLOX-nano.

Ground truth, made by looking at the frames (every 2nd to 6th frame, with the line
drawn): on the line from (0, 0.6) to (0.9, 0.6), i.e. y = 216 px across the road,
five cars drive away from the camera (up the image: ``right_to_left`` for a line drawn
left to right) around frames 7, 70, 93, 114 and 148, and four vehicles come toward it
(``left_to_right``): cars around frames 48, 98 and 149 and a motorcycle around frame
108. YOLOX-nano never detects that motorcycle (its best motorcycle score there is
about 0.2), so the expected counts are 5 and 3 cars. Vehicles entering at the right
edge of the frame do so above the line and cross nothing. The burned-in "Exit (n)"
overlay of another product is not used.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import pytest

from gateway.config.vision import CameraConfig, DetectorConfig
from gateway.vision.analytics.engine import AnalyticsEngine
from gateway.vision.analytics.types import LineCrossing
from gateway.vision.detections import Detections
from gateway.vision.detector import load_detector
from gateway.vision.tracker import make_tracker

FPS = 10.0
EXPECTED = {"line": {"right_to_left": {"car": 5}, "left_to_right": {"car": 3}}}


@pytest.fixture(scope="module")
def traffic_detections(
    yolox_nano: Path, coco_labels: Path, traffic_mp4: Path
) -> tuple[list[Detections], list[str]]:
    """YOLOX-nano detections (score >= 0.1) of every frame, computed once."""
    detector = load_detector(DetectorConfig(model=str(yolox_nano), labels=coco_labels, conf=0.1))
    capture = cv2.VideoCapture(str(traffic_mp4))
    frames: list[Detections] = []
    try:
        while True:
            ok, image = capture.read()
            if not ok:
                break
            frames.append(detector.detect(image))
    finally:
        capture.release()
    assert len(frames) == 304
    return frames, list(detector.labels)


@pytest.mark.parametrize("conf", [0.1, 0.35])
@pytest.mark.parametrize("stride", [1, 2])
def test_counts_on_real_traffic(
    traffic_detections: tuple[list[Detections], list[str]], conf: float, stride: int
) -> None:
    """Every vehicle counted once, also when the detector runs on every other frame only."""
    frames, labels = traffic_detections
    camera = CameraConfig.model_validate(
        {
            "id": "cam",
            "source": {"type": "file", "path": "traffic.mp4"},
            "lines": [{"id": "line", "points": [[0.0, 0.6], [0.9, 0.6]]}],
        }
    )
    tracker = make_tracker(camera.tracker)
    engine = AnalyticsEngine(camera, labels, (480, 360))
    crossings: list[LineCrossing] = []
    for i, dets in enumerate(frames):
        ts = i / FPS
        step = dets[dets.score >= conf] if i % stride == 0 else Detections.empty()
        tracked = tracker.update(step, ts)
        events = engine.update(tracked, ts, births=tracker.births)  # as the pipeline does
        crossings += [e for e in events if isinstance(e, LineCrossing)]
    assert engine.counts() == EXPECTED
    assert len({c.track_id for c in crossings}) == len(crossings)
    frames_away = sorted(
        round(c.timestamp * FPS) for c in crossings if c.direction == "right_to_left"
    )
    for got, want in zip(frames_away, [7, 70, 93, 114, 148], strict=True):
        assert abs(got - want) <= 3
