"""Ground-plane speed: homography, known speeds within 5 %, unknown before enough samples."""

from __future__ import annotations

import numpy as np
import pytest
from pydantic import ValidationError

from gateway.config.vision import SpeedCalibration
from gateway.vision.analytics.speed import SpeedEstimator, apply_homography
from gateway.vision.detections import Detections
from tests.support.analytics_builders import FRAME

# A road seen in perspective: a 7 m wide, 40 m long stretch appears as a trapezoid.
CALIBRATION = SpeedCalibration(
    image_points=[(0.4, 0.3), (0.6, 0.3), (0.9, 0.9), (0.1, 0.9)],
    world_points=[(0.0, 40.0), (7.0, 40.0), (7.0, 0.0), (0.0, 0.0)],
)
FPS = 10.0


def boxes_at(pixels: np.ndarray, tid: int) -> Detections:
    """One tracked box per pixel anchor (bottom-centre)."""
    x, y = pixels[:, 0], pixels[:, 1]
    xyxy = np.stack([x - 30, y - 40, x + 30, y], axis=1)
    n = len(pixels)
    return Detections.from_arrays(xyxy, [0.9] * n, [2] * n, [tid] * n)


def drive(
    est: SpeedEstimator,
    world_start: tuple[float, float],
    velocity_ms: tuple[float, float],
    seconds: float,
    jitter_px: float,
    seed: int = 0,
) -> list[float]:
    """Drive one track through the scene; the speeds reported each frame (NaN: unknown)."""
    rng = np.random.default_rng(seed)
    inverse = np.linalg.inv(est.matrix)
    out = []
    for k in range(int(seconds * FPS) + 1):
        t = k / FPS
        world = np.array(
            [[world_start[0] + velocity_ms[0] * t, world_start[1] + velocity_ms[1] * t]]
        )
        px = apply_homography(inverse, world) + rng.uniform(-jitter_px, jitter_px, size=(1, 2))
        out.append(float(est.update(boxes_at(px, 1), 1000.0 + t)[0]))
    return out


def test_homography_maps_the_calibration_points() -> None:
    est = SpeedEstimator(CALIBRATION, FRAME)
    pixels = np.array(CALIBRATION.image_points) * np.array(FRAME)
    world = est.to_world(pixels)
    np.testing.assert_allclose(world, np.array(CALIBRATION.world_points), atol=1e-3)


@pytest.mark.parametrize("kmh", [10.0, 30.0, 50.0, 90.0])
@pytest.mark.parametrize(
    ("lateral", "heading"),
    [
        (3.5, (0.0, 1.0)),  # driving away from the camera
        (3.5, (0.0, -1.0)),  # driving toward it
        (1.0, (0.08, 0.997)),  # changing lanes
    ],
)
def test_known_speed_within_five_percent(
    kmh: float, lateral: float, heading: tuple[float, float]
) -> None:
    """2.5 s of driving with 1 px of box jitter; speeds after one full window are within 5 %."""
    est = SpeedEstimator(CALIBRATION, FRAME)  # default window: 1.5 s
    v = kmh / 3.6
    seconds = 2.5
    start_y = 2.0 if heading[1] > 0 else 2.0 + v * seconds
    speeds = drive(
        est, (lateral, start_y), (heading[0] * v, heading[1] * v), seconds, jitter_px=1.0
    )
    settled = speeds[int(FPS * est.window_s) :]
    assert len(settled) >= 10
    for s in settled:
        assert s == pytest.approx(kmh, rel=0.05)
    assert est.speed_of(1) == pytest.approx(kmh, rel=0.05)


def test_stationary_vehicle_reads_near_zero() -> None:
    est = SpeedEstimator(CALIBRATION, FRAME)
    speeds = drive(est, (3.5, 20.0), (0.0, 0.0), 3.0, jitter_px=0.5)
    assert max(speeds[10:]) < 3.0


def test_unknown_until_enough_history() -> None:
    est = SpeedEstimator(CALIBRATION, FRAME, min_samples=3, min_span_s=0.3)
    speeds = drive(est, (3.5, 5.0), (0.0, 10.0), 1.0, jitter_px=0.0)
    assert all(np.isnan(s) for s in speeds[:3])  # t = 0, 0.1, 0.2: span below 0.3 s
    assert not np.isnan(speeds[3])
    assert est.speed_of(99) is None


def test_untracked_rows_get_no_speed() -> None:
    est = SpeedEstimator(CALIBRATION, FRAME)
    dets = Detections.from_arrays([[100, 100, 150, 200]], [0.9], [2])
    assert np.isnan(est.update(dets, 0.0)).all()
    assert len(est) == 0


def test_history_bounded() -> None:
    est = SpeedEstimator(CALIBRATION, FRAME, forget_s=1.0, max_tracks=5)
    for k in range(20):
        px = np.array([[200.0 + 30 * j, 800.0 - 5 * k] for j in range(10)])
        dets = Detections.from_arrays(
            np.stack([px[:, 0] - 10, px[:, 1] - 20, px[:, 0] + 10, px[:, 1]], axis=1),
            [0.9] * 10,
            [2] * 10,
            list(range(100 + 10 * k, 110 + 10 * k)) if k % 2 else list(range(10)),
        )
        est.update(dets, k * 0.1)
        assert len(est) <= 5
    est.update(Detections.empty(), 10.0)
    assert len(est) == 0
    # The per-track window keeps at most window_s of samples.
    est2 = SpeedEstimator(CALIBRATION, FRAME, window_s=0.5)
    drive(est2, (3.5, 2.0), (0.0, 5.0), 3.0, jitter_px=0.0)
    assert len(est2._tracks[1].samples) <= 6


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (
            {"image_points": [[0, 0], [1, 0], [1, 1]], "world_points": [[0, 0]] * 4},
            "expected 4 points",
        ),
        (
            {
                "image_points": [[0, 0], [0.5, 0.5], [1, 1], [0, 1]],
                "world_points": [[0, 0], [1, 0], [1, 1], [0, 1]],
            },
            "image_points: three of the four points lie on one line",
        ),
        (
            {
                "image_points": [[0, 0], [1, 0], [1, 1], [0, 1]],
                "world_points": [[0, 0], [5, 0], [10, 0], [0, 1]],
            },
            "world_points: three of the four points lie on one line",
        ),
    ],
)
def test_calibration_errors(data: dict[str, object], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        SpeedCalibration.model_validate(data)
