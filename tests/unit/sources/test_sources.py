"""Camera sources: file reader, registry, corrupt input, latest-frame and every-frame capture."""

from __future__ import annotations

import importlib
import random
import time
from pathlib import Path

import numpy as np
import pytest

from gateway.config.sources import (
    SOURCE_TYPES,
    FileSource,
    GStreamerSource,
    SimulatorSource,
    UrlSource,
    UsbSource,
)
from gateway.errors import SourceError, UsageError
from gateway.sources.base import describe, is_live, make_reader, source_from_spec
from gateway.sources.capture import CaptureThread
from gateway.sources.opencv import FileReader, GStreamerReader, UrlReader, UsbReader
from tests.support.polling import wait_for


def file_capture(path: Path, **kwargs: object) -> CaptureThread:
    src = FileSource(path=path, realtime=False)
    return CaptureThread(lambda: make_reader(src), live=False, **kwargs)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ("rtsp://cam.local:554/stream", UrlSource),
        ("http://10.0.0.2/video.mjpg", UrlSource),
        ("0", UsbSource),
        ("2", UsbSource),
        ("simulator", SimulatorSource),
        ("gst:videotestsrc ! appsink", GStreamerSource),
        ("clips/road.mp4", FileSource),
    ],
)
def test_source_from_spec(spec: str, expected: type) -> None:
    assert isinstance(source_from_spec(spec), expected)


def test_source_from_spec_rejects_empty() -> None:
    with pytest.raises(UsageError, match="empty"):
        source_from_spec("  ")


def test_registry_builds_opencv_readers(traffic_mp4: Path) -> None:
    assert set(SOURCE_TYPES) == {"file", "url", "usb", "gstreamer", "simulator"}
    assert isinstance(make_reader(FileSource(path=traffic_mp4)), FileReader)
    assert isinstance(make_reader(UrlSource(url="rtsp://127.0.0.1:1/x")), UrlReader)
    assert isinstance(make_reader(UsbSource(index=0)), UsbReader)
    assert isinstance(
        make_reader(GStreamerSource(pipeline="videotestsrc ! appsink")), GStreamerReader
    )


def test_registry_builds_the_simulator_reader() -> None:
    reader = make_reader(SimulatorSource(realtime=False, width=320, height=240))
    reader.open()
    try:
        item = reader.read()
    finally:
        reader.close()
    assert item is not None
    assert item[0].shape == (240, 320, 3)
    assert reader.nominal_fps == pytest.approx(10.0)


@pytest.mark.parametrize("kind", sorted(SOURCE_TYPES))
def test_every_source_type_declares_its_reader_and_name(kind: str) -> None:
    cls = SOURCE_TYPES[kind]
    module_name, attr = cls.reader.split(":")
    assert callable(getattr(importlib.import_module(module_name), attr))
    sample = {
        "file": {"path": "a.mp4"},
        "url": {"url": "rtsp://x/y"},
        "gstreamer": {"pipeline": "p"},
    }
    source = cls.model_validate(sample.get(kind, {}))
    assert source.type == kind and describe(source)  # type: ignore[attr-defined]


def test_describe_hides_url_credentials() -> None:
    assert "secret" not in describe(UrlSource(url="rtsp://admin:secret@10.0.0.9/h264"))


def test_is_live() -> None:
    assert is_live(UrlSource(url="rtsp://x/y"))
    assert not is_live(FileSource(path=Path("a.mp4")))
    assert is_live(FileSource(path=Path("a.mp4"), loop=True))


def test_file_reader_reads_every_frame_with_pts(traffic_mp4: Path) -> None:
    reader = FileReader(FileSource(path=traffic_mp4, realtime=False))
    reader.open()
    pts = []
    try:
        while (item := reader.read()) is not None:
            image, t = item
            assert image.shape == (360, 480, 3)
            assert image.dtype == np.uint8
            pts.append(t)
    finally:
        reader.close()
    assert reader.nominal_fps == pytest.approx(10.0)
    assert len(pts) == 304
    assert pts[0] == 0.0
    assert np.allclose(np.diff(pts), 0.1)


def test_file_reader_loops_with_increasing_pts(crossing_mp4: Path) -> None:
    reader = FileReader(FileSource(path=crossing_mp4, realtime=False, loop=True))
    reader.open()
    try:
        pts = [reader.read()[1] for _ in range(450)]  # type: ignore[index]
    finally:
        reader.close()
    assert np.all(np.diff(pts) > 0)
    assert pts[-1] == pytest.approx(44.9)


def test_realtime_file_is_paced(crossing_mp4: Path) -> None:
    reader = FileReader(FileSource(path=crossing_mp4, realtime=True))
    reader.open()
    t0 = time.monotonic()
    try:
        for _ in range(6):
            reader.read()
    finally:
        reader.close()
    assert time.monotonic() - t0 >= 0.45  # frame 5 is due at 0.5 s (10 fps)


@pytest.mark.parametrize(
    ("content", "match"),
    [
        (None, "no such file"),
        (b"", "cannot open"),
        (random.Random(1).randbytes(300_000), "cannot open"),
        (b"\x00\x00\x00\x18ftypmp42" + bytes(2000), "cannot open"),
    ],
    ids=["missing", "empty", "random-bytes", "truncated-header"],
)
def test_bad_video_file_raises_source_error(
    tmp_path: Path, content: bytes | None, match: str
) -> None:
    path = tmp_path / "clip.mp4"
    if content is not None:
        path.write_bytes(content)
    reader = FileReader(FileSource(path=path))
    with pytest.raises(SourceError, match=match):
        reader.open()
    reader.close()


def test_gstreamer_reader_without_backend_is_clear() -> None:
    reader = GStreamerReader(GStreamerSource(pipeline="videotestsrc num-buffers=1 ! appsink"))
    with pytest.raises(SourceError, match=r"GStreamer|cannot open"):
        reader.open()
    reader.close()


def test_every_frame_mode_delivers_all_frames_in_order(traffic_mp4: Path) -> None:
    capture = file_capture(traffic_mp4, every_frame=True, media_clock=True)
    capture.start()
    indices, stamps = [], []
    while (frame := capture.get(timeout=10)) is not None:
        indices.append(frame.index)
        stamps.append(frame.timestamp)
        time.sleep(0.001 if frame.index % 50 else 0.05)  # an uneven consumer loses nothing
    capture.stop()
    health = capture.health()
    assert indices == list(range(304))
    assert np.allclose(np.diff(stamps), 0.1)  # media clock: 10 fps whatever the speed
    assert health.frames_skipped == 0
    assert capture.finished


def test_latest_frame_mode_skips_for_a_slow_consumer(traffic_mp4: Path) -> None:
    capture = file_capture(traffic_mp4, every_frame=False)
    capture.start()
    received = []
    while (frame := capture.get(timeout=10)) is not None:
        received.append(frame.index)
        assert capture.peek() is None or capture.peek() is not frame  # one slot, never a queue
        time.sleep(0.02)
    capture.stop()
    health = capture.health()
    assert health.frames_captured == 304
    assert health.frames_skipped > 0
    assert len(received) + health.frames_skipped == 304  # each frame delivered or counted
    assert received == sorted(received)
    assert received[-1] == 303  # the consumer always gets the freshest frame


def test_open_failure_backs_off_and_reports(tmp_path: Path) -> None:
    src = FileSource(path=tmp_path / "nothing.mp4")
    capture = CaptureThread(
        lambda: make_reader(src), live=True, reconnect_min_s=0.05, reconnect_max_s=0.2, seed=3
    )
    capture.start()
    wait_for(lambda: capture.health().reconnects >= 3, 10)
    health = capture.health()
    capture.stop()
    assert health.reconnects >= 3
    assert health.state in ("connecting", "backoff")
    assert "no such file" in (health.last_error or "")
    assert health.frames_captured == 0
    assert capture.health().state == "stopped"


def test_end_of_live_stream_reconnects(crossing_mp4: Path) -> None:
    # A file read as a live source (loop off): its end is a dropped stream -> reconnect.
    src = FileSource(path=crossing_mp4, realtime=False)
    capture = CaptureThread(lambda: make_reader(src), live=True, reconnect_min_s=0.05, seed=1)
    capture.start()
    deadline = time.monotonic() + 20
    while capture.health().reconnects < 1 and time.monotonic() < deadline:
        capture.get(timeout=0.5)
    while capture.health().frames_captured < 250 and time.monotonic() < deadline:
        capture.get(timeout=0.5)
    health = capture.health()
    capture.stop()
    assert health.reconnects >= 1
    assert health.last_error == "the stream ended"
    assert health.frames_captured >= 250  # frames again after the reconnect
    assert capture.connections >= 2


def test_missing_usb_camera_backs_off_without_crashing() -> None:
    src = UsbSource(index=63)  # no /dev/video63 here
    capture = CaptureThread(lambda: make_reader(src), live=True, reconnect_min_s=0.05, seed=2)
    capture.start()
    wait_for(lambda: capture.health().reconnects >= 2, 10)
    health = capture.health()
    capture.stop()
    assert health.reconnects >= 2
    assert "cannot open usb camera 63" in (health.last_error or "")


def test_a_failing_reader_factory_is_survived() -> None:
    def factory() -> FileReader:
        raise SourceError("source type 'simulator' is not available")

    capture = CaptureThread(factory, live=True, reconnect_min_s=0.05, seed=4)
    capture.start()
    wait_for(lambda: capture.health().reconnects >= 2, 10)
    health = capture.health()
    capture.stop()
    assert health.reconnects >= 2
    assert health.last_error == "source type 'simulator' is not available"
    assert capture.health().state == "stopped"
