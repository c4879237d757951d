"""What FFmpeg and OpenCV write to fd 2 from C ends up in the project's logs, never raw."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from gateway.native_stderr import classify

ROOT = Path(__file__).resolve().parents[3]
GATEWAY = str(ROOT / ".venv" / "bin" / "gateway")


def json_lines(stderr: str) -> list[dict[str, object]]:
    """Every stderr line that is not the CLI's own ``error:``/``  fix:`` line, parsed."""
    out = []
    for line in stderr.splitlines():
        if line.startswith(("error: ", "  fix: ")) or not line.strip():
            continue
        out.append(json.loads(line))  # a raw C line here fails the test
    return out


def test_opencv_and_ffmpeg_lines_become_json_log_records(tmp_path: Path) -> None:
    """OpenCV's FFmpeg backend complains (from C) about a file that is not a video."""
    fake = tmp_path / "clip.mp4"
    fake.write_bytes(b"\x00\x00\x00\x18ftypmp42" + bytes(range(256)) * 40)
    proc = subprocess.run(
        [GATEWAY, "--log-format", "json", "camera", "snapshot", str(fake), str(tmp_path / "o.jpg")],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert proc.returncode == 2  # the file named is not a video
    records = json_lines(proc.stderr)
    native = [r for r in records if r["logger"] in ("ffmpeg", "opencv")]
    assert native, proc.stderr
    assert all(r["level"] in ("WARNING", "ERROR", "INFO", "DEBUG") for r in native)
    assert "[ WARN:" not in proc.stderr and " @ 0x" not in proc.stderr


SCRIPT = textwrap.dedent(
    """
    import ctypes, logging, os, sys
    from gateway.logs import setup_logging
    from gateway.native_stderr import NativeStderr

    capture = NativeStderr(interval_s=60)
    capture.start()
    setup_logging("info", "json")
    libc = ctypes.CDLL(None)
    stderr = ctypes.c_void_p.in_dll(libc, "stderr")
    handler = logging.getLogger().handlers[0]
    if sys.argv[2] == "stalled":  # the log handler is stuck: the pump cannot drain the pipe
        handler.acquire()
    for i in range(int(sys.argv[1])):  # written by C's stdio, like FFmpeg's av_log
        libc.fprintf(stderr, b"[h264 @ 0x%x] error while decoding MB %d 7\\n", 0x5500 + i, i)
        libc.fflush(stderr)
    if sys.argv[2] == "stalled":
        handler.release()
    os.write(2, b"[ WARN:0@0.015] global cap.cpp:212 open VIDEOIO: cannot open\\n")
    os.write(2, b"no newline at the end")
    sys.stderr.write("python's own stderr line\\n")
    logging.getLogger("app").info("after the flood")
    capture.stop()
    print("done", flush=True)
    """
)


def run_script(lines: int, pump: str) -> tuple[list[str], list[dict[str, object]]]:
    proc = subprocess.run(
        [sys.executable, "-c", SCRIPT, str(lines), pump],
        capture_output=True, text=True, timeout=120, check=False, cwd=ROOT,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.strip() == "done"
    raw = [ln for ln in proc.stderr.splitlines() if not ln.startswith("{")]
    records = [json.loads(ln) for ln in proc.stderr.splitlines() if ln.startswith("{")]
    return raw, records


def test_c_lines_become_records_and_python_stderr_stays_as_it_is() -> None:
    raw, records = run_script(3, "running")
    assert raw == ["python's own stderr line"]  # Python's stderr is not a C library's
    decoding = [r for r in records if r["logger"] == "ffmpeg"]
    assert decoding[0]["message"] == "h264: error while decoding MB 0 7"
    assert decoding[0]["level"] == "ERROR"
    assert len(decoding) == 1, "repeats (other numbers, other addresses) are held back"
    by_logger = {r["logger"]: r for r in records}
    assert by_logger["opencv"]["level"] == "WARNING"
    assert by_logger["native"]["message"] == "no newline at the end"  # drained on stop
    assert by_logger["app"]["message"] == "after the flood"


@pytest.mark.parametrize(("lines", "pump"), [(20000, "running"), (60000, "stalled")])
def test_a_flood_is_rate_limited_and_never_blocks_the_writer(lines: int, pump: str) -> None:
    """60000 lines (4 MB, four times the pipe) while the log handler is stuck.

    Regression: with the pipe drained by the thread that also logs, a stuck handler
    filled the pipe and the C writer blocked (a camera thread inside FFmpeg would too).
    """
    raw, records = run_script(lines, pump)
    assert raw == ["python's own stderr line"]
    decoding = [r for r in records if r["logger"] == "ffmpeg"]
    assert len(decoding) == 1, decoding[:3]
    dropped = [r for r in records if "dropped" in str(r["message"])]
    if pump == "stalled":
        assert dropped, "lines beyond the queue are dropped and said so"
    assert any(r["logger"] == "app" for r in records)


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("[ WARN:0@0.015] global cap.cpp:212 open x", ("opencv", 30, "global cap.cpp:212 open x")),
        ("[ERROR:0@1.2] global x", ("opencv", 40, "global x")),
        ("[ INFO:0@0.09] global registry", ("opencv", 20, "global registry")),
        (
            "[tcp @ 0x557e2c532640] Connection to tcp://127.0.0.1:1 failed: Connection refused",
            ("ffmpeg", 40, "tcp: Connection to tcp://127.0.0.1:1 failed: Connection refused"),
        ),
        ("[rtsp @ 0x1] max delay reached", ("ffmpeg", 30, "rtsp: max delay reached")),
        ("[OPENCV:FFMPEG:16] method SETUP failed: 461", ("ffmpeg", 40, "method SETUP failed: 461")),
        ("[OPENCV:FFMPEG:40] setting jitter buffer", ("ffmpeg", 10, "setting jitter buffer")),
        ("terminate called after throwing", ("native", 30, "terminate called after throwing")),
    ],
)
def test_classify(line: str, expected: tuple[str, int, str]) -> None:
    assert classify(line) == expected
