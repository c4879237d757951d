"""Camera-shift detection: a moved simulated camera raises calibration_drift; light,
rain and traffic do not; the reference view survives restarts and bad files.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from gateway.config.vision import CameraConfig
from gateway.events import envelope, validate_event
from gateway.events.builder import from_analytics
from gateway.vision.analytics.types import Alert
from gateway.vision.drift import DriftDetector
from gateway.vision.reference import ReferenceStore, geometry_fingerprint
from simulators.camera.flow_scenarios import intersection, run
from simulators.camera.intersection import ARMS, Intersection, IntersectionConfig
from simulators.camera.mount import Mount, warp
from simulators.camera.render import Renderer
from simulators.camera.topdown import TopDownRenderer
from simulators.camera.world import World, WorldConfig

SIZE = (640, 640)
DRIFT = {"interval_s": 2.0, "confirm": 2, "reference_every_s": 1.0, "reference_frames": 5}
LINE = {"id": "l", "points": [[0.1, 0.5], [0.9, 0.5]]}
ZONE = {"id": "z", "points": [[0.2, 0.2], [0.8, 0.2], [0.8, 0.8], [0.2, 0.8]]}


def camera(**drift: object) -> CameraConfig:
    return CameraConfig.model_validate(
        {
            "id": "cam",
            "source": {"type": "simulator"},
            "lines": [LINE],
            "zones": [ZONE],
            "drift": {**DRIFT, **drift},
        }
    )


def watch(
    tmp_path: Path,
    *,
    seconds: float = 28.0,
    mount: Mount | None = None,
    condition: str = "day",
    light: object = None,
    rate_vph: float = 180.0,
    seed: int = 5,
) -> tuple[DriftDetector, list[Alert]]:
    """Run the junction and the drift detector on every frame it asks for."""
    world = Intersection(
        IntersectionConfig(seed=seed, rate_vph=dict.fromkeys(ARMS, rate_vph), warmup_s=20.0)
    )
    renderer = TopDownRenderer(
        *SIZE,
        condition,
        seed,
        mount=mount or Mount(),
        light=light,  # type: ignore[arg-type]
    )
    detector = DriftDetector(camera(), ReferenceStore(tmp_path, "cam"), SIZE)
    alerts: list[Alert] = []
    for _ in range(round(seconds * 10)):
        world.step()
        ts = 1e9 + world.t
        if detector.wants_frame(ts):  # render only the frames the detector looks at
            image, _ = renderer.render(world)
            alerts += detector.update(image, ts)
    return detector, alerts


@pytest.mark.slow
@pytest.mark.parametrize(
    ("mount", "shift_px", "rotation_deg"),
    [
        (Mount(shift_px=(15.0, 0.0), at_s=15.0, ramp_s=2.0), 15.0, 0.0),
        (Mount(shift_px=(0.0, -12.0), at_s=15.0), 12.0, 0.0),
        (Mount(rotate_deg=2.0, at_s=15.0, ramp_s=3.0), None, 2.0),
        (Mount(rotate_deg=-1.5, shift_px=(4.0, 4.0), at_s=15.0), None, -1.5),
    ],
)
def test_moving_the_camera_raises_calibration_drift_once(
    tmp_path: Path, mount: Mount, shift_px: float | None, rotation_deg: float
) -> None:
    detector, alerts = watch(tmp_path, mount=mount)
    (alert,) = alerts
    assert alert.kind == "calibration_drift"
    assert 1e9 + 15.0 < alert.timestamp <= 1e9 + 15.0 + 3.0 + 2 * 2.0 + 0.2
    assert alert.details["rotation_deg"] == pytest.approx(rotation_deg, abs=0.15)
    if shift_px is not None:
        assert alert.details["shift_px"] == pytest.approx(shift_px, abs=1.0)
    assert detector.stats.inconclusive == 0


@pytest.mark.slow
@pytest.mark.parametrize(
    ("label", "kwargs"),
    [
        ("a small knock under the threshold", {"mount": Mount(shift_px=(5.0, 0.0), at_s=10.0)}),
        ("day fading into dusk", {"light": lambda t: 1.0 - 0.6 * min(1.0, t / 35.0)}),
        ("rain", {"condition": "rain"}),
        ("dusk", {"condition": "dusk"}),
        ("busy traffic", {"rate_vph": 600.0}),
    ],
)
def test_what_is_not_a_move_raises_nothing(
    tmp_path: Path, label: str, kwargs: dict[str, Any]
) -> None:
    detector, alerts = watch(tmp_path, **kwargs)
    assert alerts == [], label
    # The checks were conclusive and saw the view where it was (not just blind).
    assert detector.stats.checks >= 10
    assert detector.stats.inconclusive == 0
    assert detector.stats.last is not None
    assert detector.stats.last.shift_px < 6.0


def test_side_view_road_shifted_by_the_mount_raises_it_and_dusk_does_not(tmp_path: Path) -> None:
    world = World(WorldConfig(seed=4, aspect=16 / 9, warmup_s=10.0))
    day, dusk = Renderer(640, 360, "day", 4), Renderer(640, 360, "dusk", 4)
    size = (640, 360)
    knock = Mount(shift_px=(0.0, 10.0), at_s=24.0)
    detector = DriftDetector(camera(), ReferenceStore(tmp_path, "cam"), size)
    alerts: list[Alert] = []
    for _ in range(340):
        world.step()
        ts = 1e9 + world.t
        if not detector.wants_frame(ts):
            continue  # render only the frames the detector looks at
        renderer = dusk if 10.0 <= world.t < 22.0 else day  # dusk comes, then day again
        image, _ = renderer.render(world)
        alerts += detector.update(warp(image, knock.matrix(world.t, size)), ts)
    (alert,) = alerts
    assert alert.timestamp > 1e9 + 24.0
    assert alert.details["shift_px"] == pytest.approx(10.0, abs=1.0)


def test_the_alert_comes_out_of_the_pipeline_as_a_valid_event(tmp_path: Path) -> None:
    scenario = dataclasses.replace(
        intersection(),
        mount=Mount(shift_px=(-14.0, 6.0), at_s=9.0),
        drift=DRIFT,
    )
    result = run(scenario, 18.0, reference_dir=tmp_path)
    drift = [e for e in result.events if isinstance(e, Alert) and e.kind == "calibration_drift"]
    (alert,) = drift
    event = envelope(from_analytics(alert), seq=1, event_id="a" * 32, gateway="g", site="s")
    assert validate_event(event)["data"]["details"]["shift_px"] == pytest.approx(15.2, abs=1.0)
    assert (tmp_path / "junction.png").exists()


# -- the reference view ---------------------------------------------------------------------


def frames(n: int, seed: int = 5) -> list[np.ndarray]:
    world = Intersection(IntersectionConfig(seed=seed, warmup_s=20.0))
    renderer = TopDownRenderer(*SIZE, seed=seed)
    out = []
    for _ in range(n):
        for _ in range(10):
            world.step()
        out.append(renderer.render(world)[0])
    return out


def take_reference(tmp_path: Path, cam: CameraConfig) -> DriftDetector:
    detector = DriftDetector(cam, ReferenceStore(tmp_path, "cam"), SIZE)
    for k, image in enumerate(frames(5)):
        detector.update(image, 1e9 + k)
    assert detector.reference is not None
    return detector


def test_the_reference_survives_a_restart(tmp_path: Path) -> None:
    first = take_reference(tmp_path, camera())
    again = DriftDetector(camera(), ReferenceStore(tmp_path, "cam"), SIZE)
    assert again.reference is not None  # loaded, not taken anew
    assert np.array_equal(again.reference.image, first.reference.image)  # type: ignore[union-attr]
    assert first.stats.references_taken == 1
    assert again.stats.references_taken == 0


@pytest.mark.parametrize(
    "change",
    [
        {"drift": {**DRIFT, "reference_epoch": 1}},
        {"lines": [{"id": "l", "points": [[0.1, 0.6], [0.9, 0.6]]}]},
    ],
)
def test_a_new_geometry_or_epoch_takes_a_new_reference(
    tmp_path: Path, change: dict[str, Any]
) -> None:
    take_reference(tmp_path, camera())
    changed = CameraConfig.model_validate({**camera().model_dump(), **change})
    assert geometry_fingerprint(changed) != geometry_fingerprint(camera())
    again = DriftDetector(changed, ReferenceStore(tmp_path, "cam"), SIZE)
    assert again.reference is None  # being taken again


@pytest.mark.parametrize(
    ("damage", "name"),
    [
        (lambda p: p.write_bytes(p.read_bytes()[:100]), "cam.png"),
        (lambda p: p.write_text("{not json"), "cam.json"),
        (lambda p: p.write_text('{"format": 99}'), "cam.json"),
    ],
)
def test_an_unreadable_reference_is_taken_again(
    tmp_path: Path, damage: Callable[[Path], object], name: str
) -> None:
    take_reference(tmp_path, camera())
    damage(tmp_path / name)
    store = ReferenceStore(tmp_path, "cam")
    again = DriftDetector(camera(), store, SIZE)
    assert store.errors == 1
    assert again.wants_frame(1e9)  # taking a new reference
    for k, image in enumerate(frames(5)):
        again.update(image, 1e9 + k)
    assert not again.wants_frame(1e9 + 5)
    assert ReferenceStore(tmp_path, "cam").load() is not None  # stored whole again


def test_a_reference_that_cannot_be_stored_is_still_used(tmp_path: Path) -> None:
    blocked = tmp_path / "file"
    blocked.write_text("not a directory")
    detector = DriftDetector(camera(), ReferenceStore(blocked, "cam"), SIZE)
    for k, image in enumerate(frames(5)):
        detector.update(image, 1e9 + k)
    assert detector.reference is not None
    assert detector.store.errors == 1


def test_a_covered_lens_is_inconclusive_not_a_move(tmp_path: Path) -> None:
    detector = take_reference(tmp_path, camera())
    black = np.zeros((*SIZE[::-1], 3), dtype=np.uint8)
    alerts = []
    for k in range(10):
        alerts += detector.update(black, 1e9 + 10 + 2 * k)
    assert alerts == []
    assert detector.stats.inconclusive == 10


def test_a_clock_set_back_does_not_stop_the_checks(tmp_path: Path) -> None:
    detector = take_reference(tmp_path, camera())
    images = frames(3)
    detector.update(images[0], 1e9 + 10)
    checks = detector.stats.checks
    # A time sync sets the clock back an hour: the next check is still due in interval_s.
    for k in range(1, 3):
        detector.update(images[k], 1e9 - 3600 + 2.0 * k)
    assert detector.stats.checks == checks + 2
