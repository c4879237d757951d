"""Real camera servers for the source tests: VLC RTSP, an HTTP MJPEG server, a silent socket."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import cv2

from gateway.localservers import find_binary, free_port, wait_port, wait_stopped


class VlcRtsp:
    """``cvlc`` serving a looped clip at ``rtsp://127.0.0.1:PORT/cam``, restartable on its port.

    VLC refuses to run as root, so as root it runs as ``nobody`` (setpriv); the clip is
    copied into a world-readable directory for that user.
    """

    def __init__(self, clip: Path, port: int | None = None) -> None:
        self.port = port or free_port()
        # pytest's tmp_path is private to root (0700): VLC's user could not read the clip there.
        self.workdir = Path(tempfile.mkdtemp(prefix="gateway-vlc-"))
        os.chmod(self.workdir, 0o755)
        self.clip = self.workdir / clip.name
        shutil.copyfile(clip, self.clip)
        os.chmod(self.clip, 0o644)
        self.proc: subprocess.Popen[bytes] | None = None
        self.log = self.workdir / "vlc.log"

    @property
    def url(self) -> str:
        return f"rtsp://127.0.0.1:{self.port}/cam"

    def start(self) -> None:
        cmd = [
            find_binary("cvlc"),
            "-I",
            "dummy",
            "--loop",
            str(self.clip),
            "--sout",
            f"#rtp{{sdp={self.url}}}",
            "--sout-keep",
        ]
        if os.geteuid() == 0:
            cmd = [
                find_binary("setpriv"),
                "--reuid=nobody",
                "--regid=nogroup",
                "--clear-groups",
                *cmd,
            ]
        with self.log.open("ab") as log:
            self.proc = subprocess.Popen(
                cmd, stdout=log, stderr=subprocess.STDOUT, cwd=self.workdir
            )
        wait_port(self.port, timeout=20)

    def pause(self) -> None:
        """Freeze the server (SIGSTOP): connections stay open, no data flows."""
        assert self.proc is not None
        os.kill(self.proc.pid, signal.SIGSTOP)
        wait_stopped(self.proc.pid, 5.0)

    def resume(self) -> None:
        assert self.proc is not None
        os.kill(self.proc.pid, signal.SIGCONT)

    def stop(self) -> None:
        if self.proc is None:
            return
        self.proc.kill()
        self.proc.wait(10)
        self.proc = None

    def cleanup(self) -> None:
        self.stop()
        shutil.rmtree(self.workdir, ignore_errors=True)


class MjpegServer:
    """A tiny HTTP server streaming a clip's frames as ``multipart/x-mixed-replace`` JPEGs."""

    def __init__(self, clip: Path, fps: float = 20.0, max_frames: int = 60) -> None:
        cap = cv2.VideoCapture(str(clip))
        self.jpegs: list[bytes] = []
        while len(self.jpegs) < max_frames:
            ok, image = cap.read()
            if not ok:
                break
            self.jpegs.append(cv2.imencode(".jpg", image)[1].tobytes())
        cap.release()
        self.fps = fps
        self.port = free_port()
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                self.send_response(200)
                self.send_header("Content-Type", "multipart/x-mixed-replace; boundary=frame")
                self.end_headers()
                i = 0
                with contextlib.suppress(OSError):
                    while not server.closing.is_set():
                        jpg = server.jpegs[i % len(server.jpegs)]
                        self.wfile.write(
                            b"--frame\r\nContent-Type: image/jpeg\r\n"
                            + f"Content-Length: {len(jpg)}\r\n\r\n".encode()
                            + jpg
                            + b"\r\n"
                        )
                        i += 1
                        time.sleep(1.0 / server.fps)

            def log_message(self, format: str, *args: object) -> None:
                pass

        self.closing = threading.Event()
        self.httpd = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/stream.mjpg"

    def start(self) -> None:
        self.thread.start()

    def stop(self) -> None:
        self.closing.set()
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(5)


class SilentServer:
    """Accepts TCP connections on a free port and never sends a byte."""

    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(8)
        self.sock.settimeout(0.2)
        self.port = int(self.sock.getsockname()[1])
        self.accepted: list[socket.socket] = []
        self.closing = threading.Event()
        self.thread = threading.Thread(target=self._accept, daemon=True)

    def _accept(self) -> None:
        while not self.closing.is_set():
            try:
                conn, _ = self.sock.accept()
            except (TimeoutError, OSError):
                continue
            self.accepted.append(conn)

    def start(self) -> None:
        self.thread.start()

    def stop(self) -> None:
        self.closing.set()
        self.thread.join(5)
        for conn in self.accepted:
            conn.close()
        self.sock.close()
