"""How the simulated Modbus devices are served: a socat pty pair and a pymodbus server thread.

:class:`SocatPair` makes two linked ptys in a temporary directory: pymodbus's serial
server opens :attr:`~SocatPair.server_path`, readers open :attr:`~SocatPair.path`.
:class:`ServerThread` runs a pymodbus server (serial or TCP) on its own event loop in a
daemon thread; stopping it leaves the pty pair in place, so requests then time out as
they do when a device stops answering. :class:`ServedDevice` is the life cycle both
simulated devices share; each builds its own server in ``_make_server``.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable
from typing import Any

START_TIMEOUT_S = 10.0


def require_socat(what: str) -> None:
    """Raise ``RuntimeError`` naming ``what`` when socat is not installed."""
    if shutil.which("socat") is None:
        raise RuntimeError(f"socat is needed for {what} (apt install socat)")


class SocatPair:
    """Two linked raw ptys made by socat, named ``<name>`` and ``<name>.server``."""

    def __init__(self, prefix: str, name: str, link: str | None = None) -> None:
        """Make the temporary directory; ``link`` names the readers' end instead."""
        self._tmp = tempfile.mkdtemp(prefix=prefix)
        self.path = link or os.path.join(self._tmp, name)
        self.server_path = os.path.join(self._tmp, f"{name}.server")
        self._socat: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        """Start socat and wait until both ptys exist (``RuntimeError`` after 10 s)."""
        self._socat = subprocess.Popen(
            [
                "socat",
                f"pty,raw,echo=0,link={self.server_path}",
                f"pty,raw,echo=0,link={self.path}",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + START_TIMEOUT_S
        while not (os.path.exists(self.path) and os.path.exists(self.server_path)):
            if self._socat.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("socat did not create the pty pair")
            time.sleep(0.02)

    def stop(self) -> None:
        """Stop socat (killed when it does not end) and remove the temporary directory."""
        if self._socat is not None:
            self._socat.terminate()
            try:
                self._socat.wait(5)
            except subprocess.TimeoutExpired:
                self._socat.kill()
                self._socat.wait(5)
            self._socat = None
        shutil.rmtree(self._tmp, ignore_errors=True)


class ServerThread:
    """A pymodbus server built by ``make_server`` and served on its own thread's loop."""

    def __init__(self, make_server: Callable[[], Any], name: str = "modbus-sim") -> None:
        """``make_server`` is called on the server's event loop (pymodbus needs one)."""
        self._make_server = make_server
        self._name = name
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._server: Any = None

    def start(self) -> None:
        """Start serving (a no-op while serving); ``RuntimeError`` when it does not start."""
        if self._thread is not None:
            return
        ready = threading.Event()
        self._thread = threading.Thread(
            target=self._serve, args=(ready,), name=self._name, daemon=True
        )
        self._thread.start()
        if not ready.wait(START_TIMEOUT_S):
            raise RuntimeError("modbus server did not start")

    def stop(self) -> None:
        """Stop answering and join the thread (a no-op when not serving)."""
        loop, server = self._loop, self._server
        if loop is not None and server is not None:
            with contextlib.suppress(Exception):
                asyncio.run_coroutine_threadsafe(server.shutdown(), loop).result(10)
        if self._thread is not None:
            self._thread.join(10)
        self._thread = self._loop = self._server = None

    def _serve(self, ready: threading.Event) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        try:
            loop.run_until_complete(self._main(ready))
        finally:
            loop.close()

    async def _main(self, ready: threading.Event) -> None:
        server = self._make_server()
        self._server = server
        await server.serve_forever(background=True)
        ready.set()
        with contextlib.suppress(asyncio.CancelledError):
            await server.serving


class ServedDevice:
    """A simulated Modbus device behind a socat pty pair; subclasses build the server."""

    def __init__(self, pair: SocatPair, thread_name: str) -> None:
        """Serve on ``pair`` (its ``path`` is what readers open) from a thread so named."""
        self._pair = pair
        self.path = pair.path
        self.server_path = pair.server_path
        self._server = ServerThread(self._make_server, name=thread_name)

    def _make_server(self) -> Any:
        raise NotImplementedError

    def start_server(self) -> None:
        """Start (or restart) answering; a no-op while serving."""
        self._server.start()

    def stop_server(self) -> None:
        """Stop answering while the pty stays (requests then time out)."""
        self._server.stop()

    def stop(self) -> None:
        """Stop the server and socat, remove the temporary directory."""
        self.stop_server()
        self._pair.stop()
