"""The simulator as an MJPEG network camera (``multipart/x-mixed-replace`` over HTTP).

One producer thread renders frames at the configured rate and keeps the latest
JPEG; every client connection streams from it. ``/`` and ``/video`` stream,
``/snapshot.jpg`` returns one frame. With ``auth`` every request needs HTTP Basic
credentials (401 otherwise), like an IP camera.
"""

from __future__ import annotations

import base64
import contextlib
import logging
import threading
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from gateway.config.sources import SimulatorSource
from gateway.errors import InputError
from gateway.vision.jpeg import encode_jpeg
from simulators.camera.source import SimulatorReader

log = logging.getLogger(__name__)
BOUNDARY = "simframe"


class _Latest:
    """The newest JPEG and its sequence number; clients wait for the next one."""

    def __init__(self) -> None:
        self.cond = threading.Condition()
        self.jpeg = b""
        self.seq = 0
        self.closed = False

    def publish(self, jpeg: bytes) -> None:
        with self.cond:
            self.jpeg, self.seq = jpeg, self.seq + 1
            self.cond.notify_all()

    def wait_after(self, seq: int, timeout: float = 5.0) -> tuple[bytes, int] | None:
        with self.cond:
            self.cond.wait_for(lambda: self.seq > seq or self.closed, timeout)
            if self.closed or self.seq <= seq:
                return None
            return self.jpeg, self.seq

    def close(self) -> None:
        with self.cond:
            self.closed = True
            self.cond.notify_all()


class MjpegServer:
    """Serve the simulator on ``http://host:port/video`` until :meth:`stop`."""

    def __init__(
        self,
        cfg: SimulatorSource,
        port: int,
        host: str = "127.0.0.1",
        quality: int = 80,
        auth: tuple[str, str] | None = None,
    ) -> None:
        """Serve on ``host:port``; with ``auth`` (user, password) HTTP Basic is required."""
        self.cfg = cfg.model_copy(update={"realtime": True})
        self.quality = quality
        self.latest = _Latest()
        self._stop = threading.Event()
        latest = self.latest
        expected = (
            None if auth is None else "Basic " + base64.b64encode(":".join(auth).encode()).decode()
        )

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                if expected is not None and self.headers.get("Authorization") != expected:
                    self.send_response(HTTPStatus.UNAUTHORIZED)
                    self.send_header("WWW-Authenticate", 'Basic realm="simulator"')
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                if self.path in ("/", "/video"):
                    self._stream()
                elif self.path == "/snapshot.jpg":
                    frame = latest.wait_after(latest.seq - 1 if latest.seq else 0)
                    if frame is None:
                        self.send_error(HTTPStatus.SERVICE_UNAVAILABLE)
                        return
                    self.send_response(HTTPStatus.OK)
                    self.send_header("Content-Type", "image/jpeg")
                    self.send_header("Content-Length", str(len(frame[0])))
                    self.end_headers()
                    self.wfile.write(frame[0])
                else:
                    self.send_error(HTTPStatus.NOT_FOUND)

            def _stream(self) -> None:
                self.send_response(HTTPStatus.OK)
                self.send_header("Content-Type", f"multipart/x-mixed-replace; boundary={BOUNDARY}")
                self.send_header("Cache-Control", "no-cache")
                self.end_headers()
                seq = 0
                while True:
                    frame = latest.wait_after(seq)
                    if frame is None:
                        return
                    jpeg, seq = frame
                    try:
                        self.wfile.write(
                            f"--{BOUNDARY}\r\nContent-Type: image/jpeg\r\n"
                            f"Content-Length: {len(jpeg)}\r\n\r\n".encode()
                        )
                        self.wfile.write(jpeg + b"\r\n")
                    except (BrokenPipeError, ConnectionResetError):
                        return

            def log_message(self, format: str, *args: object) -> None:
                log.debug("mjpeg: " + format, *args)

        self.httpd = ThreadingHTTPServer((host, port), Handler)
        self.httpd.daemon_threads = True
        self.port = int(self.httpd.server_address[1])
        self._threads: list[threading.Thread] = []

    @property
    def url(self) -> str:
        """The stream URL."""
        return f"http://127.0.0.1:{self.port}/video"

    def start(self) -> None:
        """Start rendering and serving in background threads."""
        self._threads = [
            threading.Thread(target=self._produce, name="mjpeg-render", daemon=True),
            threading.Thread(target=self.httpd.serve_forever, name="mjpeg-http", daemon=True),
        ]
        for t in self._threads:
            t.start()

    def _produce(self) -> None:
        reader = SimulatorReader(self.cfg)
        reader.open()
        try:
            while not self._stop.is_set():
                item = reader.read()
                if item is None:
                    break
                with contextlib.suppress(InputError):  # a frame that does not encode is skipped
                    self.latest.publish(encode_jpeg(item[0], self.quality))
        finally:
            reader.close()
            self.latest.close()

    def stop(self) -> None:
        """Stop rendering, close client streams and the listening socket."""
        self._stop.set()
        self.latest.close()
        self.httpd.shutdown()
        self.httpd.server_close()
        for t in self._threads:
            t.join(timeout=5)
