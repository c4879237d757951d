"""The road-camera simulator: reproducibility, exact ground truth, crossings log, serving."""

from __future__ import annotations

import time
from pathlib import Path

import cv2
import numpy as np
import pytest
from pydantic import ValidationError

from gateway.config.sources import SimulatorSource, UrlSource
from gateway.errors import SourceError
from gateway.localservers import free_port
from gateway.sources.base import make_reader
from simulators.camera.lines import Line, crossing_direction
from simulators.camera.mjpeg import MjpegServer
from simulators.camera.render import Renderer
from simulators.camera.rtsp import RtspServer
from simulators.camera.source import SimulatorReader
from simulators.camera.world import CLASSES, Actor, World, WorldConfig
from tests.support.cli import run_cli

ROOT = Path(__file__).resolve().parents[2]


def frames(cfg: SimulatorSource, n: int) -> tuple[list[np.ndarray], list[tuple[np.ndarray, ...]]]:
    reader = SimulatorReader(cfg)
    reader.open()
    images, truths = [], []
    for _ in range(n):
        item = reader.read()
        assert item is not None
        images.append(item[0])
        assert reader.truth is not None
        truths.append((reader.truth.ids, reader.truth.class_id, reader.truth.xyxy))
    reader.close()
    return images, truths


@pytest.mark.parametrize("condition", ["day", "dusk", "rain"])
def test_same_seed_same_frames_and_truth(condition: str) -> None:
    cfg = SimulatorSource(seed=11, condition=condition, realtime=False)  # type: ignore[arg-type]
    a_img, a_gt = frames(cfg, 40)
    b_img, b_gt = frames(cfg, 40)
    for x, y in zip(a_img, b_img, strict=True):
        assert np.array_equal(x, y)
    for x, y in zip(a_gt, b_gt, strict=True):
        for u, v in zip(x, y, strict=True):
            assert np.array_equal(u, v)
    assert sum(len(g[0]) for g in a_gt) > 0


def test_different_seed_differs() -> None:
    a_img, a_gt = frames(SimulatorSource(seed=1, realtime=False), 40)
    b_img, b_gt = frames(SimulatorSource(seed=2, realtime=False), 40)
    assert not np.array_equal(a_img[-1], b_img[-1])
    assert [len(g[0]) for g in a_gt] != [len(g[0]) for g in b_gt] or not np.array_equal(
        a_gt[-1][2], b_gt[-1][2]
    )


def test_truth_boxes_cover_the_rendered_objects() -> None:
    world = World(WorldConfig(seed=5, warmup_s=20))
    renderer = Renderer(640, 360, "day", seed=5)
    checked = 0
    for _ in range(20):
        world.step()
        img, gt = renderer.render(world)
        diff = np.abs(img.astype(np.int16) - renderer.background.astype(np.int16)).max(axis=2) > 25
        covered = np.zeros(diff.shape, dtype=bool)
        for box, cls, visible in zip(gt.xyxy, gt.class_id, gt.visible, strict=True):
            x1, y1, x2, y2 = box.round().astype(int)
            covered[max(0, y1 - 2) : y2 + 8, max(0, x1 - 2) : x2 + 3] = True  # shadows below
            if visible > 0.95 and (x2 - x1) * (y2 - y1) > 50:
                inside = diff[y1:y2, x1:x2]
                least = 0.15 if CLASSES[cls] == "bicycle" else 0.3  # a bicycle is a thin frame
                assert inside.mean() > least, f"{CLASSES[cls]} box {box} is mostly background"
                checked += 1
        lamp = np.zeros_like(covered)
        lamp[:, int(0.18 * 640) - 6 : int(0.18 * 640) + 64] = True
        stray = diff & ~covered & ~lamp
        assert stray.mean() < 0.002, "changed pixels outside every ground-truth box"
    assert checked > 50


def test_occluded_objects_report_partial_visibility() -> None:
    world = World(WorldConfig(seed=3, warmup_s=30, density=2.0))
    renderer = Renderer(640, 360, "day", seed=3)
    visibilities = []
    for _ in range(30):
        world.step()
        visibilities.extend(renderer.render(world)[1].visible.tolist())
    v = np.array(visibilities)
    assert (v > 0.99).any()
    assert ((v > 0.05) & (v < 0.9)).any(), "no partly occluded object in 30 dense frames"
    assert v.min() >= 0.0
    assert v.max() <= 1.0 + 1e-6


def _lone_actor(x: float, direction: int) -> Actor:
    # y = 0.97 has perspective scale 1, so 0.1 frame widths per second = 0.01 per frame at 10 fps.
    return Actor(
        id=7,
        cls="car",
        lane=6,
        x=x,
        y=0.97,
        direction=direction,
        length=0.3,
        height=0.1,
        speed=0.1,
        colour=(0, 0, 200),
        style=0,
        phase=0.0,
    )


def test_crossing_log_hand_computed() -> None:
    lines = (
        Line("mid", (0.5, 1.0), (0.5, 0.0)),
        Line("down", (0.5, 0.0), (0.5, 1.0)),  # reversed: directions swap
        Line("short", (0.5, 0.0), (0.5, 0.5)),  # does not reach y = 0.97
    )
    world = World(WorldConfig(seed=0, density=1e-9, lines=lines))
    world.actors = [_lone_actor(0.305, +1)]
    for _ in range(30):
        world.step()
    got = [(c.line_id, c.direction, c.frame, round(c.t, 6), c.object_id) for c in world.crossings]
    # x = 0.305 + 0.01 k passes 0.5 at k = 20 (x = 0.505): frame 20, t = 2.0 s.
    assert got == [("mid", "left_to_right", 20, 2.0, 7), ("down", "right_to_left", 20, 2.0, 7)]

    world = World(WorldConfig(seed=0, density=1e-9, lines=lines[:1]))
    world.actors = [_lone_actor(0.695, -1)]
    for _ in range(30):
        world.step()
    assert [(c.direction, c.frame) for c in world.crossings] == [("right_to_left", 20)]


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        ((0.4, 0.5), (0.6, 0.5), "left_to_right"),
        ((0.6, 0.5), (0.4, 0.5), "right_to_left"),
        ((0.4, 0.5), (0.45, 0.5), None),
        ((0.4, 0.1), (0.6, 0.1), None),  # beyond the segment's end
    ],
)
def test_crossing_direction(
    old: tuple[float, float], new: tuple[float, float], expected: str | None
) -> None:
    assert crossing_direction(Line("l", (0.5, 0.9), (0.5, 0.2)), old, new) == expected


def test_reader_through_the_source_registry_ends_after_duration() -> None:
    reader = make_reader(SimulatorSource(seed=4, realtime=False, duration_s=3.0, fps=10))
    assert reader.nominal_fps == 10
    reader.open()
    pts = []
    while (item := reader.read()) is not None:
        image, t = item
        assert image.shape == (360, 640, 3)
        assert image.dtype == np.uint8
        pts.append(t)
    reader.close()
    reader.close()
    assert len(pts) == 30
    assert pts[0] == pytest.approx(0.1)
    assert np.allclose(np.diff(pts), 0.1)


def test_realtime_reader_skips_to_the_due_frame_after_a_stall() -> None:
    """A consumer that stalls gets the frame due now, not the missed ones in a burst.

    Regression: the pacing deadline was never moved on when the reader fell behind, so
    after a stall every wait was zero and the missed frames were rendered back to back
    (CPU the detector needed, for frames the latest-frame capture then dropped).
    Measured on the frames' simulated time, not on the wall clock.
    """
    fps = 20.0
    line = Line("mid", (0.5, 0.98), (0.5, 0.38))
    reader = SimulatorReader(SimulatorSource(seed=3, fps=fps, realtime=True), (line,))
    reader.open()
    first = reader.read()
    assert first is not None
    time.sleep(1.0)  # the consumer is busy for a second
    after = reader.read()
    assert after is not None
    assert after[1] >= 0.9, f"the frame after a 1 s stall is from t={after[1]:.2f} s"
    assert reader.skipped == round(after[1] * fps) - 2
    world = reader.world
    assert world is not None
    # Skipped frames are still simulated: the crossings log equals an unpaced world's.
    replay = SimulatorReader(SimulatorSource(seed=3, fps=fps, realtime=False), (line,))
    replay.open()
    while replay.world is not None and replay.world.frame < world.frame:
        replay.read()
    assert replay.world is not None
    assert replay.world.crossings == world.crossings
    reader.close()
    replay.close()


@pytest.mark.parametrize(
    "bad",
    [
        {"fps": 0},
        {"width": 10},
        {"condition": "fog"},
        {"density": -1},
        {"duration_s": 0},
        {"bogus": 1},
    ],
)
def test_bad_simulator_config_is_rejected(bad: dict[str, object]) -> None:
    with pytest.raises(ValidationError):
        SimulatorSource(**bad)  # type: ignore[arg-type]


def test_renderer_rejects_unknown_condition() -> None:
    with pytest.raises(ValueError, match="unknown condition"):
        Renderer(640, 360, "snow")  # type: ignore[arg-type]


def test_read_before_open_is_a_source_error() -> None:
    with pytest.raises(SourceError, match="before open"):
        SimulatorReader(SimulatorSource()).read()


def test_mjpeg_stream_is_read_by_opencv() -> None:
    server = MjpegServer(SimulatorSource(seed=2, fps=20), free_port())
    server.start()
    try:
        cap = cv2.VideoCapture(server.url)
        assert cap.isOpened()
        got = []
        for _ in range(5):
            ok, img = cap.read()
            assert ok
            got.append(img)
        cap.release()
    finally:
        server.stop()
    assert got[0].shape == (360, 640, 3)
    assert not np.array_equal(got[0], got[-1])  # a live stream, not one picture


def test_mjpeg_stream_through_the_project_url_source() -> None:
    server = MjpegServer(SimulatorSource(seed=3, fps=20), free_port())
    server.start()
    reader = make_reader(UrlSource(url=server.url), timeout_s=10)
    try:
        reader.open()
        frames = [reader.read() for _ in range(3)]
    finally:
        reader.close()
        server.stop()
    assert all(f is not None and f[0].shape == (360, 640, 3) for f in frames)


def test_rtsp_stream_through_vlc(tmp_path: Path) -> None:
    server = RtspServer(SimulatorSource(seed=2), free_port(), seconds=4)
    server.start()
    try:
        cap = None
        for _ in range(40):  # VLC takes a moment to listen
            cap = cv2.VideoCapture(server.url)
            if cap.isOpened():
                break
            cap.release()
            time.sleep(0.25)
        assert cap is not None
        assert cap.isOpened()
        ok, img = cap.read()
        cap.release()
    finally:
        server.stop()
    assert ok
    assert img.shape == (360, 640, 3)


def test_cli_writes_clip_and_truth(tmp_path: Path) -> None:
    video, truth = tmp_path / "c.mp4", tmp_path / "c.jsonl"
    proc = run_cli(
        "simulators",
        "camera",
        "--write-video",
        str(video),
        "--seconds",
        "20",
        "--truth",
        str(truth),
        "--line",
        "mid:0.5,1,0.5,0.3",
        "--seed",
        "3",
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    cap = cv2.VideoCapture(str(video))
    assert int(cap.get(cv2.CAP_PROP_FRAME_COUNT)) == 200
    cap.release()
    rows = truth.read_text().splitlines()
    assert rows
    assert all('"line_id": "mid"' in r for r in rows)


@pytest.mark.parametrize(
    "args",
    [
        ["--line", "nocoords"],
        ["--mjpeg-port", "1", "--line", "a:0,0,1,1"],
        [],
        ["--write-video", "/tmp/x.mp4", "--line", "a:0,0,2,1"],
        ["--condition", "fog"],
    ],
)
def test_cli_bad_arguments_exit_2(args: list[str]) -> None:
    proc = run_cli("simulators", "camera", *args)
    assert proc.returncode == 2
    assert "Error" in proc.stderr
