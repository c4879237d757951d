"""Network cameras on real servers: VLC RTSP (killed, restarted), HTTP MJPEG, a silent socket."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import pytest

from gateway.config.sources import UrlSource
from gateway.errors import SourceError
from gateway.sources.base import make_reader
from gateway.sources.capture import CaptureHealth, CaptureThread
from gateway.sources.opencv import UrlReader
from tests.support.camera_servers import MjpegServer, SilentServer, VlcRtsp


def url_capture(url: str, timeout_s: float) -> CaptureThread:
    src = UrlSource(url=url)
    return CaptureThread(
        lambda: make_reader(src, timeout_s=timeout_s),
        name="cam",
        live=True,
        stall_timeout_s=timeout_s,
        reconnect_min_s=0.2,
        reconnect_max_s=1.0,
        seed=5,
    )


def wait_for(
    capture: CaptureThread, check: Callable[[CaptureHealth], bool], timeout: float
) -> CaptureHealth:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        capture.get(timeout=0.2)  # a consumer keeps taking frames meanwhile
        health = capture.health()
        if check(health):
            return health
    pytest.fail(f"condition not reached in {timeout} s: {capture.health()}")


@pytest.mark.slow
def test_rtsp_stall_reconnect_and_resume(crossing_mp4: Path) -> None:
    server = VlcRtsp(crossing_mp4)
    server.start()
    capture = url_capture(server.url, timeout_s=2.0)
    capture.start()
    try:
        first = wait_for(capture, lambda h: h.frames_captured >= 10, 40)
        assert first.state == "streaming"
        assert (first.width, first.height) == (480, 360)

        server.stop()  # the camera dies mid-stream
        lost = wait_for(capture, lambda h: h.state in ("stalled", "backoff", "connecting"), 20)
        assert lost.state != "streaming"
        down = wait_for(capture, lambda h: h.reconnects >= 1, 20)
        assert down.last_error
        captured_before = down.frames_captured

        server.start()  # back on the same port
        resumed = wait_for(
            capture,
            lambda h: h.state == "streaming" and h.frames_captured >= captured_before + 10,
            60,
        )
        assert resumed.reconnects >= 1
        assert capture.connections >= 2
    finally:
        capture.stop()
        server.cleanup()


@pytest.mark.slow
def test_stall_is_reported_while_the_read_is_still_blocked(crossing_mp4: Path) -> None:
    # The camera freezes (SIGSTOP: the connection stays open, no data flows). The backend's
    # read timeout (8 s) is longer than the stall timeout (1.5 s): health must say "stalled"
    # while the capture thread is still stuck inside the read, then reconnect, then resume.
    server = VlcRtsp(crossing_mp4)
    server.start()
    src = UrlSource(url=server.url)
    capture = CaptureThread(
        lambda: make_reader(src, timeout_s=8.0),
        name="cam",
        live=True,
        stall_timeout_s=1.5,
        reconnect_min_s=0.2,
        reconnect_max_s=1.0,
    )
    capture.start()
    try:
        streaming = wait_for(capture, lambda h: h.frames_captured >= 20, 40)
        # (VLC may refuse the very first SETUP while it starts: a reconnect before this.)
        before = streaming.reconnects
        server.pause()
        stalled = wait_for(capture, lambda h: h.state == "stalled", 8)
        assert stalled.reconnects == before  # still inside the connection's blocked read
        assert (stalled.last_frame_age_s or 0) > 1.5
        after = wait_for(capture, lambda h: h.reconnects >= before + 1, 30)
        assert after.stalls >= 1
        assert "stalled" in (after.last_error or "")
        captured = after.frames_captured
        server.resume()
        wait_for(capture, lambda h: h.state == "streaming" and h.frames_captured > captured + 5, 60)
    finally:
        capture.stop(timeout=15)
        server.cleanup()


def test_silent_camera_times_out_with_a_clear_error() -> None:
    server = SilentServer()
    server.start()
    try:
        reader = UrlReader(UrlSource(url=f"rtsp://127.0.0.1:{server.port}/cam"), timeout_s=1.0)
        with pytest.raises(SourceError, match=r"cannot open url rtsp://127\.0\.0\.1"):
            reader.open()
        reader.close()

        capture = url_capture(f"http://127.0.0.1:{server.port}/video.mjpg", timeout_s=1.0)
        capture.start()
        health = wait_for(capture, lambda h: h.reconnects >= 1 and h.last_error is not None, 30)
        capture.stop(timeout=10)
        assert not capture.running  # no hang: the thread is gone
        assert health.frames_captured == 0
        assert health.state in ("connecting", "backoff")
        assert "cannot open" in (health.last_error or "")
    finally:
        server.stop()


def test_mjpeg_over_http(traffic_mp4: Path) -> None:
    server = MjpegServer(traffic_mp4, fps=20.0, max_frames=30)
    server.start()
    try:
        reader = UrlReader(UrlSource(url=server.url), timeout_s=5.0)
        reader.open()
        try:
            frames = [reader.read() for _ in range(10)]
        finally:
            reader.close()
        assert all(f is not None for f in frames)
        assert all(f[0].shape == (360, 480, 3) for f in frames if f is not None)

        capture = url_capture(server.url, timeout_s=5.0)
        capture.start()
        health = wait_for(capture, lambda h: h.frames_captured >= 20, 30)
        capture.stop()
        assert health.state == "streaming"
        assert health.reconnects == 0
    finally:
        server.stop()
