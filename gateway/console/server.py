"""The console's server: uvicorn in one thread of ``gateway run``.

Why Starlette and uvicorn (see ``docs/console.md``): both are small pure-Python
packages (with h11 and anyio, about 1 MB installed, no compiler needed on a
Raspberry Pi), maintained and widely used; uvicorn runs in a thread of the gateway
process with its own event loop, so the console sees the running parts directly
and costs nothing while nobody uses it (the loop sleeps on its socket).
"""

from __future__ import annotations

import asyncio
import logging
import socket
import threading
from pathlib import Path
from typing import TYPE_CHECKING

from gateway.config.console import ConsoleConfig
from gateway.console.unit import ConsoleUnit
from gateway.console.web import Console
from gateway.errors import GatewayError
from gateway.logs import LogRing

if TYPE_CHECKING:
    import uvicorn

log = logging.getLogger(__name__)


class ConsoleError(GatewayError):
    """The console cannot be served (address in use, unreadable TLS files)."""


class ConsoleServer:
    """Serves the console until :meth:`stop`."""

    def __init__(
        self, config: ConsoleConfig, unit: ConsoleUnit, logs: LogRing | None = None
    ) -> None:
        """Build the application; nothing listens before :meth:`start`."""
        self.config = config
        self.tls = config.tls_cert is not None
        self.logs = logs or LogRing()
        self.logs.install()  # from now: the page shows the gateway's start too
        self.console = Console(config, unit, tls=self.tls, logs=self.logs)
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self._socket: socket.socket | None = None
        self.port: int | None = None

    @property
    def url(self) -> str:
        """Where the console answers (loopback when it listens on every address)."""
        host = self.config.bind
        if host in ("0.0.0.0", "::", ""):
            host = "127.0.0.1"
        if ":" in host:
            host = f"[{host}]"
        return f"{'https' if self.tls else 'http'}://{host}:{self.port}/"

    @property
    def encodes(self) -> int:
        """Live-view frames encoded so far (none while nobody watches)."""
        return self.console.views.encodes

    def start(self) -> None:
        """Listen (errors here, at once: :class:`ConsoleError`) and serve in a thread."""
        import uvicorn

        config = uvicorn.Config(
            self.console.app(),
            log_config=None,
            access_log=False,
            lifespan="off",
            loop="asyncio",
            http="h11",
            ws="none",
            server_header=False,
            proxy_headers=False,
            timeout_keep_alive=5,
            timeout_graceful_shutdown=2,
            limit_concurrency=64,
            ssl_certfile=_path(self.config.tls_cert),
            ssl_keyfile=_path(self.config.tls_key),
        )
        try:
            config.load()  # reads the TLS files now
        except (OSError, ValueError) as exc:
            raise ConsoleError(f"console: cannot use the TLS certificate or key: {exc}") from exc
        self._socket = _listen(self.config.bind, self.config.port)
        self.port = int(self._socket.getsockname()[1])
        server = uvicorn.Server(config)
        self._server = server
        self._thread = threading.Thread(
            target=self._serve, args=(server,), name="console", daemon=True
        )
        self._thread.start()
        log.info("console: serving %s (%s)", self.url, "TLS" if self.tls else "plain HTTP")

    def _serve(self, server: uvicorn.Server) -> None:
        sock = self._socket
        if sock is None:  # stopped before the thread ran
            return
        try:
            asyncio.run(server.serve(sockets=[sock]))
        except Exception:  # the gateway goes on without its console
            log.exception("console: the server stopped")

    def stop(self) -> None:
        """Stop serving and wait for the thread (open requests get 2 s)."""
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(10.0)
            self._thread = None
        if self._socket is not None:
            self._socket.close()
            self._socket = None
        self.logs.remove()


def _path(path: Path | None) -> str | None:
    return None if path is None else str(path)


def _listen(host: str, port: int) -> socket.socket:
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as exc:
        raise ConsoleError(f"console: bind address {host!r} is not an address here: {exc}") from exc
    family, _, _, _, address = infos[0]
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind(address)
        sock.listen(128)
    except OSError as exc:
        sock.close()
        reason = exc.strerror or str(exc)
        raise ConsoleError(f"console: cannot listen on {host}:{port}: {reason}") from exc
    sock.setblocking(False)
    return sock
