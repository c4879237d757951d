"""Cameras that fail on purpose, on loopback: what the real simulators cannot do.

The road simulator serves good MJPEG (with or without HTTP Basic credentials) and
VLC serves good RTSP (with or without credentials); these cover the rest of a
field's failures at the wire level: a port that accepts and never answers, an
RTSP server answering a fixed status (``454 Session Not Found``), an SDP without
a video track, a web page where a stream should be.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import cv2

from gateway.config.sources import SimulatorSource
from gateway.localservers import free_port, wait_port
from simulators.camera.mjpeg import MjpegServer
from simulators.camera.rtsp import RtspServer

AUDIO_SDP = "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=x\r\nt=0 0\r\nm=audio 0 RTP/AVP 0\r\n"
HTML = "<html><body>camera login</body></html>"


class ScriptedServer:
    """Accepts on a free loopback port and answers every request with ``reply`` (or nothing).

    ``reply`` is sent after the first complete request head (``\\r\\n\\r\\n``); with
    ``reply=None`` the connection is held open silently until :meth:`stop`.
    """

    def __init__(self, reply: bytes | None) -> None:
        self.reply = reply
        self.port = free_port()
        self.requests: list[bytes] = []
        self._sock = socket.create_server(("127.0.0.1", self.port))
        self._sock.settimeout(0.2)
        self._stop = threading.Event()
        self._conns: list[socket.socket] = []
        self._thread = threading.Thread(target=self._serve, daemon=True)

    def start(self) -> ScriptedServer:
        self._thread.start()
        return self

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self._sock.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            self._conns.append(conn)
            threading.Thread(target=self._answer, args=(conn,), daemon=True).start()

    def _answer(self, conn: socket.socket) -> None:
        conn.settimeout(0.2)
        data = b""
        while not self._stop.is_set():
            try:
                chunk = conn.recv(4096)
            except TimeoutError:
                continue
            except OSError:
                return
            if not chunk:
                return
            data += chunk
            while b"\r\n\r\n" in data:
                head, _, data = data.partition(b"\r\n\r\n")
                self.requests.append(head)
                if self.reply is not None:
                    cseq = next(
                        (ln.split(b":", 1)[1].strip() for ln in head.split(b"\r\n")
                         if ln.lower().startswith(b"cseq:")),
                        b"1",
                    )  # fmt: skip
                    conn.sendall(self.reply.replace(b"{cseq}", cseq))

    def stop(self) -> None:
        self._stop.set()
        self._sock.close()
        for conn in self._conns:
            conn.close()
        self._thread.join(2)


def rtsp_reply(status: str, body: str = "", ctype: str = "application/sdp") -> bytes:
    """An RTSP answer with ``status`` (``"454 Session Not Found"``) and an optional body."""
    head = f"RTSP/1.0 {status}\r\nCSeq: {{cseq}}\r\n"
    if body:
        head += f"Content-Type: {ctype}\r\nContent-Length: {len(body)}\r\n"
    return (head + "\r\n" + body).encode()


def http_reply(status: str, body: str = HTML, ctype: str = "text/html") -> bytes:
    """An HTTP/1.1 answer that closes the connection."""
    return (
        f"HTTP/1.1 {status}\r\nContent-Type: {ctype}\r\nContent-Length: {len(body)}\r\n"
        f"Connection: close\r\n\r\n{body}"
    ).encode()


@contextmanager
def scripted(reply: bytes | None) -> Iterator[ScriptedServer]:
    server = ScriptedServer(reply).start()
    try:
        yield server
    finally:
        server.stop()


@contextmanager
def mjpeg_camera(auth: tuple[str, str] | None = None) -> Iterator[MjpegServer]:
    """The road simulator as an MJPEG camera on a free port."""
    server = MjpegServer(SimulatorSource(seed=2, fps=10), free_port(), auth=auth)
    server.start()
    try:
        wait_port(server.port)
        yield server
    finally:
        server.stop()


@contextmanager
def rtsp_camera(auth: tuple[str, str] | None = None) -> Iterator[RtspServer]:
    """The road simulator served by VLC over RTSP, ready for FFmpeg."""
    server = RtspServer(SimulatorSource(seed=2), free_port(), seconds=3, auth=auth)
    server.start()
    try:
        wait_port(server.port)
        url = with_auth(server.url, auth)
        deadline = time.monotonic() + 20
        while True:  # VLC answers DESCRIBE a moment before it can set a stream up
            cap = cv2.VideoCapture(url, cv2.CAP_FFMPEG)
            ready = cap.isOpened()
            cap.release()
            if ready:
                break
            assert time.monotonic() < deadline, "VLC did not start streaming"
            time.sleep(0.2)
        yield server
    finally:
        server.stop()


def with_auth(url: str, auth: tuple[str, str] | None) -> str:
    """``url`` with ``user:password@`` in it."""
    if auth is None:
        return url
    scheme, rest = url.split("://", 1)
    return f"{scheme}://{auth[0]}:{auth[1]}@{rest}"
