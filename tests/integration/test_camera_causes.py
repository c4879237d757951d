"""``gateway camera check`` names why a camera does not open, quickly, within --timeout.

Every case runs the real CLI against a real server on loopback (the road simulator as
an MJPEG camera, VLC as an RTSP camera, or a scripted server for what neither can do)
or, for "no route" and "DNS failure", in a network namespace with no network at all
(nothing leaves the machine).
"""

from __future__ import annotations

import contextlib
import io
import json
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from gateway.cli import main
from gateway.localservers import free_port
from simulators.camera.mjpeg import MjpegServer
from simulators.camera.rtsp import RtspServer
from tests.support.camera import (
    AUDIO_SDP,
    http_reply,
    mjpeg_camera,
    rtsp_camera,
    rtsp_reply,
    scripted,
    with_auth,
)

ROOT = Path(__file__).resolve().parents[2]
GATEWAY = str(ROOT / ".venv" / "bin" / "gateway")
AUTH = ("viewer", "s3cret")


def check(
    url: str, *extra: str, prefix: tuple[str, ...] = (), process: bool = False
) -> tuple[int, dict[str, Any], str]:
    """``gateway camera check URL --json``: in this process (fast), or as its own process."""
    args = ["camera", "check", url, "--json", *extra]
    if not (process or prefix):
        out, err = io.StringIO(), io.StringIO()
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            code = main(args)
        return code, json.loads(out.getvalue().strip().splitlines()[-1]), err.getvalue()
    proc = subprocess.run(
        [*prefix, GATEWAY, *args],
        capture_output=True, text=True, timeout=120, check=False, stdin=subprocess.DEVNULL,
    )  # fmt: skip
    return proc.returncode, json.loads(proc.stdout.strip().splitlines()[-1]), proc.stderr


@pytest.fixture(scope="module")
def mjpeg() -> Iterator[MjpegServer]:
    with mjpeg_camera(AUTH) as server:
        yield server


@pytest.fixture(scope="module")
def rtsp() -> Iterator[RtspServer]:
    with rtsp_camera(AUTH) as server:
        yield server


def test_refused_connection_fails_at_once_with_its_cause() -> None:
    """Before: the capture's reconnect loop ran for the whole --seconds (10 s here)."""
    code, report, err = check(
        f"rtsp://127.0.0.1:{free_port()}/cam", "--seconds", "10", process=True
    )
    assert code == 1
    assert report["cause"] == "connection refused"
    assert "nothing listens on 127.0.0.1" in report["error"]
    assert "554" in report["fix"]
    assert report["seconds"] < 2.5, report  # no retry cycle (it took --seconds before)
    assert "fix: check the port" in err


@pytest.mark.parametrize(
    ("scheme", "path", "auth", "cause", "words"),
    [
        ("http", "/video", None, "HTTP 401", "wants a user name and password"),
        ("http", "/video", ("viewer", "wrong"), "HTTP 401", "refused the user name and password"),
        ("http", "/nope", AUTH, "HTTP 404", "Not Found"),
        ("rtsp", "/cam", None, "RTSP 401", "wants a user name and password"),
        ("rtsp", "/cam", ("viewer", "wrong"), "RTSP 401", "refused the user name and password"),
        ("rtsp", "/nope", AUTH, "RTSP 404", "Not found"),
    ],
)
def test_camera_status_is_named(
    request: pytest.FixtureRequest,
    scheme: str,
    path: str,
    auth: tuple[str, str] | None,
    cause: str,
    words: str,
) -> None:
    """The simulator's MJPEG server and VLC's RTSP server, both wanting credentials."""
    server = request.getfixturevalue("mjpeg" if scheme == "http" else "rtsp")
    code, report, _err = check(with_auth(f"{scheme}://127.0.0.1:{server.port}{path}", auth))
    assert code == 1
    assert report["cause"] == cause
    assert words in report["error"]
    assert "viewer" not in report["error"] and "wrong" not in report["error"]  # no credentials


@pytest.mark.slow
def test_good_credentials_stream(mjpeg: MjpegServer, rtsp: RtspServer) -> None:
    for url in (with_auth(mjpeg.url, AUTH), with_auth(rtsp.url, AUTH)):
        code, report, err = check(url, "--seconds", "1.5")
        assert code == 0, err
        assert report["ok"] and report["frames"] > 0
        assert (report["width"], report["height"]) == (640, 360)


@pytest.mark.parametrize(
    ("reply", "cause", "words"),
    [
        (rtsp_reply("454 Session Not Found"), "RTSP 454", "Session Not Found"),
        (rtsp_reply("200 OK", AUDIO_SDP), "not a video", "no video track (tracks: audio)"),
        (b"SSH-2.0-OpenSSH_9.2\r\n\r\n", "not a video", "is not an RTSP server"),
        (http_reply("400 Bad Request"), "not a video", "an HTTP server answers on 127.0.0.1"),
    ],
)
def test_scripted_rtsp_answers_are_named(reply: bytes, cause: str, words: str) -> None:
    with scripted(reply) as server:
        code, report, _err = check(f"rtsp://127.0.0.1:{server.port}/cam")
    assert code == 1
    assert report["cause"] == cause
    assert words in report["error"]


def test_a_web_page_is_not_a_video() -> None:
    with scripted(http_reply("200 OK")) as server:
        code, report, _err = check(f"http://127.0.0.1:{server.port}/index.html")
    assert code == 1
    assert report["cause"] == "not a video"
    assert "text/html" in report["error"]


def test_silent_server_times_out_at_the_given_timeout() -> None:
    """A port that accepts and never answers: ``timeout`` after --timeout, not FFmpeg's 30 s."""
    with scripted(None) as server:
        code, report, _err = check(
            f"rtsp://127.0.0.1:{server.port}/cam", "--timeout", "1", "--seconds", "20"
        )
        assert server.requests, "the probe never asked"
    assert code == 1
    assert report["cause"] == "timeout"
    assert "accepted the connection but did not answer" in report["error"]
    assert report["seconds"] < 5, report  # --timeout 1 (+ grace), not 20 s or FFmpeg's default


def _netns() -> tuple[str, ...]:
    if shutil.which("unshare") is None:
        pytest.skip("unshare (util-linux) is needed for a network namespace")
    probe = subprocess.run(["unshare", "-n", "true"], capture_output=True, check=False)
    if probe.returncode != 0:
        pytest.skip(f"cannot make a network namespace here: {probe.stderr.decode()[:100]}")
    return ("unshare", "-n")


@pytest.mark.parametrize(
    ("url", "cause", "words"),
    [
        ("http://192.0.2.1/video", "no route to host", "192.0.2.1:80"),
        ("rtsp://camera-17.invalid/stream", "DNS failure", "camera-17.invalid does not resolve"),
    ],
)
def test_no_network_causes_are_named(url: str, cause: str, words: str) -> None:
    """In an empty network namespace: no route anywhere, no DNS server reachable."""
    code, report, _err = check(url, "--timeout", "3", prefix=_netns())
    assert code == 1
    assert report["cause"] == cause
    assert words in report["error"]
