"""An MQTT broker inside this process (amqtt on its own event loop thread).

amqtt speaks MQTT 3.1.1; the gateway's link falls back to it automatically.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from typing import Any

from gateway.errors import TransportError

log = logging.getLogger(__name__)
QUIET_LOGGERS = ("amqtt", "transitions")


class EmbeddedBroker:
    """``amqtt`` listening on ``127.0.0.1:port`` until :meth:`stop`."""

    def __init__(self, port: int, host: str = "127.0.0.1") -> None:
        self.host, self.port = host, port
        self._loop = asyncio.new_event_loop()
        self._thread: threading.Thread | None = None
        self._broker: Any = None
        self._ready = threading.Event()
        self._error: BaseException | None = None

    @property
    def address(self) -> str:
        """``host:port``."""
        return f"{self.host}:{self.port}"

    def start(self, timeout: float = 15.0) -> None:
        """Start the broker thread and wait until it listens."""
        for name in QUIET_LOGGERS:  # amqtt logs every session state change at INFO
            logging.getLogger(name).setLevel(max(logging.WARNING, log.getEffectiveLevel()))
        self._thread = threading.Thread(target=self._run, name="mqtt-broker", daemon=True)
        self._thread.start()
        if not self._ready.wait(timeout):
            raise TransportError(f"embedded MQTT broker did not start on {self.address}")
        if self._error is not None:
            self.stop()
            raise TransportError(f"embedded MQTT broker on {self.address}: {self._error}")

    def _run(self) -> None:
        from amqtt.broker import Broker

        asyncio.set_event_loop(self._loop)
        config = {
            "listeners": {"default": {"type": "tcp", "bind": self.address}},
            "plugins": {
                "amqtt.plugins.authentication.AnonymousAuthPlugin": {"allow_anonymous": True}
            },
        }
        try:
            self._broker = Broker(config, loop=self._loop)
            self._loop.run_until_complete(self._broker.start())
        except Exception as exc:  # reported to start(); e.g. the port is taken
            self._error = exc
            self._ready.set()
            return
        self._ready.set()
        self._loop.run_forever()

    def stop(self) -> None:
        """Shut the broker down and join its thread (safe to call twice)."""
        if self._thread is None:
            return
        if self._broker is not None and self._error is None and self._loop.is_running():
            future = asyncio.run_coroutine_threadsafe(self._broker.shutdown(), self._loop)
            try:
                future.result(10)
            except Exception:
                log.exception("embedded broker shutdown")
        if self._loop.is_running():
            self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
        self._thread = None
        if not self._loop.is_running():
            self._loop.close()
