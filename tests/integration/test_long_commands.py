"""Long commands: progress on a terminal only, and Ctrl-C ends with what was done, exit 130.

Every case runs the real ``gateway`` process; "a terminal" is a pseudo-terminal on
its stderr, as a crew's SSH session gives it.
"""

from __future__ import annotations

import json
import os
import pty
import re
import select
import signal
import subprocess
import time
from pathlib import Path

import pytest

from gateway.localservers import free_port
from tests.support.cli import popen_as_on_a_terminal
from tests.support.polling import wait_for

ROOT = Path(__file__).resolve().parents[2]
GATEWAY = str(ROOT / ".venv" / "bin" / "gateway")


def count_args(video: Path, model: Path) -> list[str]:
    return [GATEWAY, "count", str(video), "--model", str(model), "--line", "0,0.5,1,0.5", "--json"]


def run_with_tty_stderr(args: list[str], timeout: float = 120) -> tuple[int, str, str]:
    """Run with stdout a pipe and stderr a pseudo-terminal; (exit code, stdout, terminal)."""
    master, slave = pty.openpty()
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=slave, stdin=subprocess.DEVNULL)
    os.close(slave)
    screen = b""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        ready, _, _ = select.select([master], [], [], 0.2)
        if ready:
            try:
                chunk = os.read(master, 65536)
            except OSError:  # the child closed the terminal
                break
            if not chunk:
                break
            screen += chunk
        elif proc.poll() is not None:
            break
    out = proc.communicate(timeout=30)[0].decode()
    os.close(master)
    return proc.returncode, out, screen.decode(errors="replace")


def run_tty_or_pipe(args: list[str], tty: bool) -> tuple[int, str, str]:
    """(exit code, stdout, stderr), stderr a pseudo-terminal or a pipe."""
    if tty:
        return run_with_tty_stderr(args)
    proc = subprocess.run(args, capture_output=True, text=True, timeout=120, check=False)
    return proc.returncode, proc.stdout, proc.stderr


@pytest.fixture(scope="module")
def short_clip(traffic_mp4: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The first 40 frames of the traffic clip (a quick count)."""
    import cv2

    out = tmp_path_factory.mktemp("clip") / "short.mp4"
    cap = cv2.VideoCapture(str(traffic_mp4))
    _ok, frame = cap.read()
    writer = cv2.VideoWriter(str(out), cv2.VideoWriter.fourcc(*"mp4v"), 10, frame.shape[1::-1])
    for _ in range(40):
        writer.write(frame)
        _ok, frame = cap.read()
    writer.release()
    cap.release()
    return out


@pytest.mark.parametrize("tty", [True, False])
def test_count_shows_progress_on_a_terminal_only(
    short_clip: Path, yolox_nano: Path, tty: bool
) -> None:
    code, out, screen = run_tty_or_pipe(count_args(short_clip, yolox_nano), tty)
    assert code == 0, screen[-2000:]
    result = json.loads(out.strip().splitlines()[-1])
    assert result["frames"] == result["frames_total"] == 40
    # tqdm's line: frames done / total, rate and time left
    assert ("40/40 [" in screen) is tty, screen[-1000:]
    assert bool(re.search(r"frame/s|s/frame", screen)) is tty


@pytest.mark.slow
def test_count_ctrl_c_gives_the_partial_result_and_130(traffic_mp4: Path, yolox_nano: Path) -> None:
    """Regression: Ctrl-C aborted the process (exit 134, ``terminate called without an
    active exception``) in about half the attempts: the interrupt landed inside a thread
    join, which then let the interpreter exit under a thread inside ONNX Runtime."""
    for attempt in range(2):
        proc = popen_as_on_a_terminal(
            count_args(traffic_mp4, yolox_nano), stdout=subprocess.PIPE, stderr=subprocess.PIPE
        )
        time.sleep(2.5 + 0.4 * attempt)  # at different moments of the run
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=60)
        assert proc.returncode == 130, (attempt, err[-2000:])
        assert "terminate called" not in err
        result = json.loads(out.strip().splitlines()[-1])
        assert result["interrupted"] is True
        assert 0 <= result["frames"] < result["frames_total"] == 304
        assert f"interrupted after {result['frames']} of 304 frames" in err


def test_models_pull_ctrl_c_leaves_no_partial_model(tmp_path: Path) -> None:
    """A download that stalls mid-file, interrupted: exit 130, nothing in the store."""
    import socket
    import threading

    port = free_port()
    server = socket.create_server(("127.0.0.1", port))
    stop = threading.Event()

    def serve() -> None:  # announces 10 MB, sends 64 kB, then nothing
        conn, _ = server.accept()
        conn.recv(4096)
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 10000000\r\n\r\n" + b"\0" * 65536)
        stop.wait(30)
        conn.close()

    threading.Thread(target=serve, daemon=True).start()
    store = tmp_path / "store"
    sha = "0" * 64
    proc = popen_as_on_a_terminal(
        [GATEWAY, "models", "--model-dir", str(store), "pull", "yolox_nano",
         "--url", f"http://127.0.0.1:{port}/m.onnx", "--sha256", sha],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )  # fmt: skip
    try:
        wait_for(lambda: list((store / ".staging").glob("**/*")), 30)
        time.sleep(0.3)
        proc.send_signal(signal.SIGINT)
        _out, err = proc.communicate(timeout=30)
    finally:
        stop.set()
        server.close()
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 130, err
    assert "Traceback" not in err
    assert not (store / "yolox_nano").exists()
    assert not [p for p in (store / ".staging").glob("**/*") if p.is_file()]


@pytest.mark.parametrize("tty", [True, False])
def test_bench_shows_elapsed_time_on_a_terminal_only(tty: bool) -> None:
    args = [GATEWAY, "bench", "bridge", "--frames", "300", "--readings", "30", "--json"]
    code, out, screen = run_tty_or_pipe(args, tty)
    assert code == 0, screen[-2000:]
    json.loads(out.strip().splitlines()[-1])  # stdout stays the JSON result only
    assert ("bench bridge: 00:0" in screen) is tty, screen[-500:]


@pytest.mark.parametrize("tty", [True, False])
def test_model_copy_shows_progress_on_a_terminal_only(
    tmp_path: Path, yolox_nano: Path, tty: bool
) -> None:
    args = [GATEWAY, "models", "--model-dir", str(tmp_path / "store"), "import", str(yolox_nano),
            "--name", "nano", "--json"]  # fmt: skip
    code, _out, screen = run_tty_or_pipe(args, tty)
    assert code == 0, screen[-2000:]
    assert ("yolox_nano.onnx: 100%" in screen) is tty, screen[-500:]
