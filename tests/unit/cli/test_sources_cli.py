"""``gateway camera check`` and ``gateway camera snapshot`` against real files and servers."""

from __future__ import annotations

import json
import random
from pathlib import Path

import cv2
import numpy as np
import pytest

from gateway.cli import main
from tests.support.camera_servers import MjpegServer, SilentServer


def run_json(capsys: pytest.CaptureFixture[str], args: list[str]) -> tuple[int, dict, str]:
    code = main(args)
    captured = capsys.readouterr()
    return code, json.loads(captured.out.strip().splitlines()[-1]), captured.err


def test_check_a_video_file(capsys: pytest.CaptureFixture[str], crossing_mp4: Path) -> None:
    code, report, _ = run_json(
        capsys, ["camera", "check", str(crossing_mp4), "--seconds", "1.5", "--json"]
    )
    assert code == 0
    assert report["ok"] is True
    assert (report["width"], report["height"]) == (480, 360)
    assert report["nominal_fps"] == pytest.approx(10.0)
    assert report["frames"] >= 5
    assert report["error"] is None


def test_check_an_mjpeg_camera(capsys: pytest.CaptureFixture[str], traffic_mp4: Path) -> None:
    server = MjpegServer(traffic_mp4, fps=15.0, max_frames=20)
    server.start()
    try:
        code, report, _ = run_json(
            capsys, ["camera", "check", server.url, "--seconds", "2", "--json"]
        )
    finally:
        server.stop()
    assert code == 0
    assert report["frames"] >= 5
    assert report["measured_fps"] > 0
    assert report["source"].startswith("url http://127.0.0.1")


def test_check_a_silent_camera_reports_and_exits_1(capsys: pytest.CaptureFixture[str]) -> None:
    server = SilentServer()
    server.start()
    try:
        url = f"rtsp://127.0.0.1:{server.port}/stream"
        code, report, err = run_json(
            capsys, ["camera", "check", url, "--seconds", "2", "--timeout", "1", "--json"]
        )
    finally:
        server.stop()
    assert code == 1
    assert report["ok"] is False
    assert report["frames"] == 0
    assert report["cause"] == "timeout"
    assert "cannot open url rtsp://127.0.0.1" in report["error"]
    assert "error: cannot open url rtsp://127.0.0.1" in err


def test_check_a_corrupt_file_exits_2(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    bad = tmp_path / "cam.mp4"
    bad.write_bytes(random.Random(5).randbytes(50_000))
    code, report, err = run_json(capsys, ["camera", "check", str(bad), "--seconds", "1", "--json"])
    assert code == 2  # the file named is not a video: an input error
    assert report["state"] == "failed"
    assert report["cause"] == "not a video"
    assert "cannot open file" in report["error"]
    assert "error: " in err


def test_snapshot_with_detections(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, bus_jpg: Path, yolox_nano: Path
) -> None:
    out = tmp_path / "snap.jpg"
    code, report, _ = run_json(
        capsys,
        [
            "camera",
            "snapshot",
            str(bus_jpg),
            str(out),
            "--model",
            str(yolox_nano),
            "--draw",
            "--json",
        ],
    )
    assert code == 0
    image = cv2.imread(str(out))
    assert image.shape == (640, 640, 3)
    labels = [d["label"] for d in report["detections"]]
    assert "bus" in labels
    assert labels.count("person") >= 3
    original = cv2.imread(str(bus_jpg))
    assert np.abs(image.astype(int) - original.astype(int)).mean() > 1  # boxes were drawn


def test_snapshot_draws_the_configured_lines(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, traffic_mp4: Path
) -> None:
    config = tmp_path / "gateway.toml"
    config.write_text(
        f"""
[[cameras]]
id = "north"
source = {{ type = "file", path = "{traffic_mp4}" }}
lines = [{{ id = "stop", points = [[0.0, 0.5], [1.0, 0.5]] }}]
"""
    )
    out = tmp_path / "north.jpg"
    code = main(
        [
            "camera",
            "snapshot",
            str(traffic_mp4),
            str(out),
            "--draw",
            "-c",
            str(config),
            "--camera",
            "north",
        ]
    )
    assert code == 0, capsys.readouterr().err
    image = cv2.imread(str(out))
    b, g, r = image[180, 100]  # on the line (y = 0.5 of 360)
    assert r > 180
    assert g > 180
    assert b < 100  # yellow


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (["--draw"], 2, "--draw needs"),
        (["--camera", "nope"], 2, "no such camera"),
    ],
)
def test_snapshot_usage_errors(
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    bus_jpg: Path,
    args: list[str],
    code: int,
    message: str,
) -> None:
    got = main(["camera", "snapshot", str(bus_jpg), str(tmp_path / "x.jpg"), *args])
    assert got == code
    assert message in capsys.readouterr().err


def test_snapshot_of_a_missing_file_exits_2(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    code = main(["camera", "snapshot", str(tmp_path / "none.mp4"), str(tmp_path / "x.jpg")])
    assert code == 2  # the file named does not exist: an input error
    assert "no such file" in capsys.readouterr().err
    assert not (tmp_path / "x.jpg").exists()
