"""CameraPipeline and CameraRunner on real footage with the real model, tracker and analytics."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest

import gateway.vision.runner as runner_module
from gateway.config.vision import CameraConfig, DetectorConfig
from gateway.sources.frame import Frame
from gateway.vision.analytics.types import AnalyticsEvent, LineCrossing
from gateway.vision.detector import load_detector
from gateway.vision.jpeg import encode_jpeg
from gateway.vision.offline import count_video, read_frames
from gateway.vision.overlay import draw_overlay
from gateway.vision.pipeline import CameraPipeline
from gateway.vision.runner import CameraRunner
from tests.support.polling import wait_until

CROSSING_LINE = [[0.5, 0.95], [0.5, 0.2]]


@pytest.fixture(scope="module")
def detector(yolox_nano: Path) -> Any:
    return load_detector(DetectorConfig(model=str(yolox_nano)))


def make_camera(path: Path, **extra: Any) -> CameraConfig:
    spec: dict[str, Any] = {
        "id": "cam1",
        "source": {"type": "file", "path": path, "realtime": False},
        "lines": [{"id": "l1", "points": CROSSING_LINE}],
    }
    spec.update(extra)
    return CameraConfig.model_validate(spec)


def as_frames(images: list[np.ndarray], fps: float = 10.0) -> Iterator[Frame]:
    for i, image in enumerate(images):
        yield Frame(image=image, index=i, timestamp=1_700_000_000.0 + i / fps, pts_s=i / fps)


def test_motion_skip_on_a_still_scene_saves_inference_and_keeps_tracks(
    detector: Any, traffic_mp4: Path
) -> None:
    base = read_frames(traffic_mp4, 1)[0]
    rng = np.random.default_rng(1)
    still = [
        np.clip(base + rng.normal(0, 3, base.shape), 0, 255).astype(np.uint8) for _ in range(60)
    ]
    camera = make_camera(
        traffic_mp4, motion={"enabled": True, "mode": "skip", "keyframe_interval": 25}
    )
    pipeline = CameraPipeline(camera, detector)
    ids = []
    for frame in as_frames(still):
        pipeline.process(frame)
        ids.append(sorted(pipeline.last_tracked.tracker_id.tolist()))
    stats = pipeline.stats
    assert stats.frames == 60
    assert stats.detector_calls == 3  # frame 0, then keyframes 25 and 50
    assert stats.skipped_motion == 57
    assert len(ids[-1]) >= 2  # the parked cars are still tracked on skipped frames
    assert ids[-1] == ids[30]  # with the same ids


def test_motion_regions_infers_crops_on_a_large_frame(detector: Any, traffic_mp4: Path) -> None:
    images = [cv2.resize(im, (1440, 1080)) for im in read_frames(traffic_mp4, 40)]
    found = {}
    for mode in ("off", "regions"):
        camera = make_camera(
            traffic_mp4,
            motion={"enabled": mode != "off", "mode": "regions", "keyframe_interval": 1000},
        )
        pipeline = CameraPipeline(camera, detector)
        total = 0
        for frame in as_frames(images):
            pipeline.process(frame)
            total += len(pipeline.last_detections)
        found[mode] = total
        if mode == "regions":
            assert pipeline.stats.inferred_regions > 0
            assert pipeline.last_motion is not None
    # crops plus the still objects carried over find most of what full frames find
    assert found["regions"] >= 0.8 * found["off"]


def test_runner_every_frame_counts_like_a_direct_loop(detector: Any, crossing_mp4: Path) -> None:
    camera = make_camera(crossing_mp4)
    direct = CameraPipeline(camera, detector)
    for frame in as_frames(read_frames(crossing_mp4)):
        direct.process(frame)
    assert direct.analytics is not None
    via_runner = count_video(camera, detector)
    expected = {d: dict(v) for d, v in direct.analytics.counts()["l1"].items()}
    got = {d: v for d, v in via_runner["lines"][0]["counts"].items() if v}
    assert got == expected
    assert via_runner["frames"] == 201


def test_runner_live_health_events_and_snapshot(detector: Any, crossing_mp4: Path) -> None:
    camera = make_camera(crossing_mp4, source={"type": "file", "path": crossing_mp4, "loop": True})
    received: list[AnalyticsEvent] = []
    runner = CameraRunner(camera, detector, received.extend)
    runner.start()
    try:
        wait_until(lambda: any(isinstance(e, LineCrossing) for e in received), 60)
        health = runner.health()
    finally:
        runner.stop()
    assert health.camera == "cam1"
    assert health.state == "streaming"
    assert health.processed_fps > 0
    assert health.pipeline.frames > 0
    assert health.frame_latency_p50_ms is not None
    assert health.event_latency_p50_ms is not None
    assert health.errors == 0
    crossing = next(e for e in received if isinstance(e, LineCrossing))
    assert crossing.camera_id == "cam1"
    assert crossing.label == "person"
    latest = runner.latest()
    assert latest is not None
    frame, tracked = latest
    assert frame.image.shape == (360, 480, 3)
    jpeg = encode_jpeg(draw_overlay(frame.image, tracked, detector.labels, camera))
    assert jpeg[:2] == b"\xff\xd8"
    decoded = cv2.imdecode(np.frombuffer(jpeg, np.uint8), cv2.IMREAD_COLOR)
    assert decoded.shape == (360, 480, 3)
    assert runner_module.percentile([], 50) is None
    drawn = runner.snapshot_jpeg()
    plain = runner.snapshot_jpeg(draw=False)
    assert drawn is not None
    assert plain is not None
    assert drawn[:2] == b"\xff\xd8"
    assert drawn != plain


def test_snapshot_before_any_frame_is_none(detector: Any, crossing_mp4: Path) -> None:
    runner = CameraRunner(make_camera(crossing_mp4), detector, lambda events: None)
    assert runner.latest_frame() is None
    assert runner.snapshot_jpeg() is None


def test_runner_survives_a_failing_sink_and_restarts(detector: Any, crossing_mp4: Path) -> None:
    camera = make_camera(crossing_mp4, source={"type": "file", "path": crossing_mp4, "loop": True})

    def sink(events: list[AnalyticsEvent]) -> None:
        raise RuntimeError("outbox full")

    runner = CameraRunner(camera, detector, sink)
    runner.start()
    try:
        wait_until(lambda: runner.health().errors >= 1, 60)
        processed = runner.pipeline.stats.frames
        wait_until(lambda: runner.pipeline.stats.frames > processed + 3, 30)  # still going
        runner.restart()
        wait_until(lambda: runner.capture.health().frames_captured > 3, 30)
        assert runner.capture.connections == 1
        assert runner.health().state in ("streaming", "connecting")
    finally:
        runner.stop()
    assert not runner.capture.running


def test_latency_history_is_bounded(
    detector: Any, crossing_mp4: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(runner_module, "LATENCY_WINDOW", 5)
    runner = CameraRunner(
        make_camera(crossing_mp4), detector, lambda events: None, every_frame=True
    )
    runner.start()
    runner.wait(120)
    runner.stop()
    assert runner.pipeline.stats.frames == 201
    assert len(runner._latency_frame_ms) == 5
    assert len(runner._latency_event_ms) <= 5


def test_fps_limit_spaces_processed_frames(detector: Any, crossing_mp4: Path) -> None:
    camera = make_camera(
        crossing_mp4, source={"type": "file", "path": crossing_mp4, "loop": True}, fps_limit=4.0
    )
    runner = CameraRunner(camera, detector, lambda events: None)
    runner.start()
    try:
        wait_until(lambda: runner.pipeline.stats.frames >= 5, 60)
    finally:
        runner.stop()
    times = list(runner._processed)
    gaps = np.diff(times)
    assert len(gaps) >= 4
    assert gaps.min() >= 0.25 - 0.01  # never faster than the limit
    assert runner.capture.health().frames_skipped > 0  # the rest was dropped, not queued


@pytest.mark.parametrize(
    ("shape", "max_width", "decoded"),
    [
        ((360, 640, 3), None, (360, 640, 3)),
        ((360, 640, 3), 640, (360, 640, 3)),
        ((360, 640, 3), 320, (180, 320, 3)),
        ((360, 640, 3), 1000, (360, 640, 3)),  # never scaled up
        ((101, 203, 3), 100, (50, 100, 3)),
    ],
)
def test_encode_jpeg_scales_down_to_max_width(
    shape: tuple[int, int, int], max_width: int | None, decoded: tuple[int, int, int]
) -> None:
    image = np.random.default_rng(1).integers(0, 255, shape, dtype=np.uint8)
    jpeg = encode_jpeg(image, quality=80, max_width=max_width)
    assert jpeg[:2] == b"\xff\xd8"
    out = cv2.imdecode(np.frombuffer(jpeg, np.uint8), cv2.IMREAD_COLOR)
    assert out is not None and out.shape == decoded
