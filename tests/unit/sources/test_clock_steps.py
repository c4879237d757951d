"""A wall-clock step (NTP on a unit without an RTC) moves event timestamps, no duration.

Live frames carry the wall time (for the events) and the monotonic capture time (for
every duration: track ages, dwell, stopped-vehicle timers, speeds, intervals).
"""

from __future__ import annotations

import itertools
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from gateway.config.vision import CameraConfig, DetectorConfig
from gateway.sources.capture import CaptureThread
from gateway.sources.frame import Frame
from gateway.vision.analytics.types import Aggregate, Alert, ZoneTransition
from gateway.vision.detector import load_detector
from gateway.vision.offline import read_frames
from gateway.vision.pipeline import CameraPipeline

EIGHT_DAYS = 8 * 24 * 3600.0


class SteppedClock:
    """The wall clock, stepped by ``step`` seconds once ``armed`` is set."""

    def __init__(self, step: float) -> None:
        self.step = step
        self.armed = threading.Event()

    def __call__(self) -> float:
        return time.time() + (self.step if self.armed.is_set() else 0.0)


class Still:
    """A live source of one grey image, about 100 frames a second."""

    nominal_fps = 100.0

    def open(self) -> None:
        self._t0 = time.monotonic()

    def read(self) -> tuple[Any, float] | None:
        time.sleep(0.01)
        return np.full((48, 64, 3), 128, np.uint8), time.monotonic() - self._t0

    def close(self) -> None:
        pass


@pytest.mark.parametrize("step", [EIGHT_DAYS, -EIGHT_DAYS])
def test_live_frames_keep_a_steady_clock_across_a_step(step: float) -> None:
    clock = SteppedClock(step)
    capture = CaptureThread(Still, live=True, wall_clock=clock)
    frames: list[Frame] = []
    capture.start()
    try:
        deadline = time.monotonic() + 20
        while len(frames) < 40 and time.monotonic() < deadline:
            frame = capture.get(timeout=1.0)
            if frame is not None:
                frames.append(frame)
                if len(frames) == 20:
                    clock.armed.set()
    finally:
        capture.stop()
    assert len(frames) == 40
    steady = [f.steady for f in frames]
    wall = [f.timestamp for f in frames]
    assert all(0 < b - a < 2.0 for a, b in itertools.pairwise(steady))
    jumps = [b - a for a, b in itertools.pairwise(wall)]
    assert max(abs(j) for j in jumps) > EIGHT_DAYS / 2  # the event timestamps did move


def test_media_clock_frames_are_their_own_steady_clock() -> None:
    frame = Frame(np.zeros((2, 2, 3), np.uint8), 0, 1_700_000_000.5, 0.5)
    assert frame.steady == frame.timestamp


@pytest.fixture(scope="module")
def detector(yolox_nano: Path) -> Any:
    return load_detector(DetectorConfig(model=str(yolox_nano)))


def test_a_step_mid_stream_fires_no_stopped_vehicle_alert_and_no_8_day_dwell(
    detector: Any, traffic_mp4: Path
) -> None:
    base = read_frames(traffic_mp4, 1)[0]  # parked cars: still, inside the zone
    rng = np.random.default_rng(3)
    camera = CameraConfig.model_validate(
        {
            "id": "cam1",
            "source": {"type": "file", "path": traffic_mp4, "realtime": False},
            "zones": [
                {
                    "id": "all",
                    "points": [[0, 0], [1, 0], [1, 1], [0, 1]],
                    "stopped_vehicle_s": 60,
                }
            ],
        }
    )
    pipeline = CameraPipeline(camera, detector)
    events = []
    ids: list[set[int]] = []
    fps = 10.0
    for i in range(40):  # 4 s of a live camera; NTP steps the clock +8 days at 2 s
        image = np.clip(base + rng.normal(0, 3, base.shape), 0, 255).astype(np.uint8)
        steady = 1000.0 + i / fps
        wall = 1_795_545_600.0 + i / fps + (EIGHT_DAYS if i >= 20 else 0.0)
        events += pipeline.process(Frame(image, i, wall, i / fps, steady_s=steady))
        ids.append(set(pipeline.last_tracked.tracker_id.tolist()))
    assert len(ids[19]) >= 2  # the parked cars are tracked
    # The same tracks go on across the step (8 days between two frames would end them).
    assert len(ids[19] & ids[39]) >= 2, (ids[19], ids[39])
    # No aggregate interval closed by the step (an 8-day "interval" after 4 s).
    assert not [e for e in events if isinstance(e, Aggregate)]
    alerts = [e for e in events if isinstance(e, Alert)]
    assert alerts == [], alerts  # 4 s of stillness, not 8 days
    enters = [e for e in events if isinstance(e, ZoneTransition)]
    assert enters, "no zone events at all"
    for event in enters:
        assert event.dwell_s is None or event.dwell_s < 10
        # Event timestamps are wall time: before or after the step, never steady time.
        assert event.timestamp > 1_795_545_600.0
