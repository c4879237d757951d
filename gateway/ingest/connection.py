"""The ingest worker's MQTT v5 connection: our own network loop, bounded reading.

* One paho client per connection, from the project's one factory
  (:func:`gateway.transport.paho_client.make_client`: credentials, TLS).
* A persistent session (``clean_start=False``, session expiry, Receive Maximum) and
  manual acknowledgements.
* The shared subscription is made on **every** connect, whatever ``session present``
  says: Mosquitto 2.0 restores persistent sessions after its own restart but not
  their shared subscriptions, and refuses publishes (reason 16, no subscribers)
  until someone subscribes again.
* Reconnects with the project's one back-off, capped at ``[ingest] reconnect_max_s``
  (default 2 s, so the worker is back within seconds of the broker) and reset after a
  connection whose subscription was granted.
* Reading is gated by ``can_read``: while the worker's queue of received, not yet
  processed payloads is over its byte bound, the socket is not read (TCP pushes back
  on the broker, which keeps the messages). A pause longer than about 1.5 keepalive
  intervals ends the connection; the broker redelivers what was not acknowledged.
* A failed attempt is logged with its cause (DNS, refused, TLS, bad credentials, not
  authorized, subscription refused) at once, then once a minute while it repeats.
"""

from __future__ import annotations

import contextlib
import logging
import select
import socket
import threading
import time
from collections.abc import Callable
from typing import Any

import paho.mqtt.client as paho
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.subscribeoptions import SubscribeOptions

from gateway.backoff import Backoff
from gateway.config.transport import MqttConfig
from gateway.ratelog import RateLimitedLog
from gateway.transport.paho_client import connect_failure, disconnect_cause, make_client

log = logging.getLogger(__name__)

# (topic, payload, mid, qos) of one received message, on the network thread; after
# each burst of reads ``on_burst`` is called (hand the burst over in one piece).
OnMessage = Callable[[str, bytes, int, int], None]

_CONNACK_TIMEOUT_S = 10.0
_PAUSED_POLL_S = 0.02
_IDLE_POLL_S = 0.5
_READ_BURST = 256


class NeverPublished:
    """The receipt of a publish that could not be handed to a connection."""

    def is_published(self) -> bool:
        """Never: the message it stands for stays unacknowledged and comes back."""
        return False


class IngestConnection:
    """A supervised MQTT v5 connection with a shared subscription; :meth:`start`/:meth:`stop`."""

    def __init__(
        self,
        cfg: MqttConfig,
        client_id: str,
        *,
        filters: list[str],
        session_expiry_s: int,
        receive_maximum: int,
        reconnect_max_s: float,
        on_message: OnMessage,
        on_connected: Callable[[], None],
        can_read: Callable[[], bool],
        on_burst: Callable[[], None] = lambda: None,
        subscribed: threading.Event | None = None,
        retire: bool = False,
        on_subscribed: Callable[[], None] = lambda: None,
    ) -> None:
        self.cfg = cfg
        self.client_id = client_id
        self.filters = filters
        self._session_expiry_s = session_expiry_s
        self._receive_maximum = receive_maximum
        self._on_message_cb = on_message
        self._on_connected_cb = on_connected
        self._can_read = can_read
        self._on_burst = on_burst
        self._on_subscribed = on_subscribed
        # Retiring: unsubscribe instead of subscribing (the broker stops routing new
        # messages to this session, what it queued still arrives) and end the session
        # on the broker with the last DISCONNECT.
        self._retire = retire
        self._backoff = Backoff(cfg.reconnect_min_s, min(cfg.reconnect_max_s, reconnect_max_s))
        self._ratelog = RateLimitedLog(log)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._client: Any = None
        self._connack: Any = None
        self._failed_since: float | None = None
        self._failures = 0
        self._granted = False
        self._log_error: str | None = None
        self.subscribed = subscribed or threading.Event()
        self.connects = 0
        self._paused_total = 0.0
        self._paused_at: float | None = None
        self.last_error: str | None = None

    # -- public API ------------------------------------------------------------------

    @property
    def paused_s(self) -> float:
        """Seconds reading was paused because the queue was over its byte bound."""
        since = self._paused_at
        return self._paused_total + (time.monotonic() - since if since is not None else 0.0)

    @property
    def connected(self) -> bool:
        """Whether the current connection's subscription is granted."""
        return self.subscribed.is_set()

    def start(self) -> None:
        """Start the network thread (it connects and reconnects on its own)."""
        self._thread = threading.Thread(target=self._run, name="ingest-mqtt", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        """Disconnect cleanly (the session stays on the broker) and stop the thread."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout + _CONNACK_TIMEOUT_S)
            self._thread = None

    def ack(self, mid: int, qos: int) -> None:
        """Acknowledge a message of the current connection (any thread)."""
        with self._lock:
            client = self._client
        if client is not None:
            client.ack(mid, qos)

    def publish(self, topic: str, payload: bytes | str, qos: int = 1, retain: bool = False) -> Any:
        """Publish on the current connection; a receipt with ``is_published()``."""
        with self._lock:
            client = self._client
        if client is None or not self.subscribed.is_set():
            return NeverPublished()
        try:
            info = client.publish(topic, payload, qos=qos, retain=retain)
        except (OSError, ValueError):  # the session is ending under this thread
            return NeverPublished()
        if info.rc != paho.MQTT_ERR_SUCCESS:
            return NeverPublished()
        return info

    # -- network thread --------------------------------------------------------------

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                granted = self._session()
            except Exception:  # a defect must not end the worker's only connection
                log.exception("MQTT network loop failed; reconnecting")
                granted = False
            if self._stop.is_set():
                break
            if granted:
                self._backoff.reset()
            self._stop.wait(self._backoff.next_delay())

    def _fail(self, cause: str) -> None:
        """Record and log (rate-limited, per cause) a failed or lost connection."""
        self.last_error = cause
        self._failures += 1
        if self._failed_since is None:
            self._failed_since = time.monotonic()
        self._ratelog.log(
            cause,
            logging.ERROR,
            "MQTT: %s (attempt %d; retrying every %.0f s at most)",
            cause,
            self._failures,
            self._backoff.max_s,
        )

    def _new_client(self) -> Any:
        client = make_client(self.cfg, self.client_id, v311=False, will=None, buffered_reads=True)
        client.manual_ack_set(True)
        client.on_connect = self._on_connect
        client.on_subscribe = self._on_subscribe
        client.on_disconnect = self._on_disconnect
        client.on_message = self._on_message
        client.on_log = self._on_log
        return client

    def _session(self) -> bool:
        """Connect once and serve until the connection ends; whether it was subscribed."""
        self._granted = False
        try:
            client = self._new_client()
        except (OSError, ValueError) as exc:  # TLS files missing or unreadable
            self._fail(connect_failure(exc, self.cfg.host, self.cfg.port))
            return False
        props = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
        props.SessionExpiryInterval = self._session_expiry_s
        props.ReceiveMaximum = self._receive_maximum
        self._connack = None
        self._log_error = None
        self.subscribed.clear()
        try:
            client.connect(
                self.cfg.host,
                self.cfg.port,
                self.cfg.keepalive_s,
                clean_start=False,
                properties=props,
            )
        except (OSError, ValueError) as exc:
            client._reset_sockets()
            self._fail(connect_failure(exc, self.cfg.host, self.cfg.port))
            return False
        # paho's external-loop API: a packet queued from any thread (an ack, a publish)
        # asks for a write once; our loop waits on this socket pair and writes.
        wake, waker = socket.socketpair()
        wake.setblocking(False)
        waker.setblocking(False)

        def want_write(*_args: object) -> None:
            # Full (a write is asked for already), or closed: another thread (the
            # pipeline publishing a dead letter) may queue a packet on this client
            # while the network thread ends the session; that packet goes nowhere and
            # its receipt never says published.
            with contextlib.suppress(OSError):
                waker.send(b"w")

        client.on_socket_register_write = want_write
        client.on_socket_unregister_write = _noop
        if client.want_write():
            want_write()
        with self._lock:
            self._client = client
        try:
            self._serve(client, wake)
        finally:
            with self._lock:
                self._client = None
            if self._paused_at is not None:
                self._paused_total += time.monotonic() - self._paused_at
                self._paused_at = None
            self.subscribed.clear()
            client._reset_sockets()
            wake.close()
            waker.close()
        return self._granted

    def _serve(self, client: Any, wake: socket.socket) -> None:
        deadline = time.monotonic() + _CONNACK_TIMEOUT_S
        where = f"{self.cfg.host}:{self.cfg.port}"
        while True:
            sock = client.socket()
            if sock is None:
                if self._connack is None:
                    # A TLS peer refusing our certificate does it after the handshake.
                    why = f": {self._log_error}" if self._log_error else ""
                    self._fail(f"{where} closed the connection before CONNACK{why}")
                return
            if self._stop.is_set():
                self._shutdown(client)
                return
            if self._connack is None and time.monotonic() > deadline:
                self._fail(f"no CONNACK from {where} in {_CONNACK_TIMEOUT_S:.0f} s")
                return
            readable = self._can_read()
            if readable and self._paused_at is not None:
                self._paused_total += time.monotonic() - self._paused_at
                self._paused_at = None
            elif not readable and self._paused_at is None:
                self._paused_at = time.monotonic()
            rlist = [sock, wake] if readable else [wake]
            wlist = [sock] if client.want_write() else []
            pending_tls = readable and _has_pending(client, sock)
            timeout = 0.0 if pending_tls else (_IDLE_POLL_S if readable else _PAUSED_POLL_S)
            try:
                ready_r, ready_w, _ = select.select(rlist, wlist, [], timeout)
            except (OSError, ValueError):
                return  # the socket was closed under us
            if wake in ready_r:
                with contextlib.suppress(BlockingIOError):
                    wake.recv(10_000)
            if (sock in ready_r or pending_tls) and not self._read(client):
                return
            write = sock in ready_w or client.want_write()
            if write and client.loop_write() != paho.MQTT_ERR_SUCCESS:
                return
            if client.loop_misc() != paho.MQTT_ERR_SUCCESS:
                return

    def _read(self, client: Any) -> bool:
        """Read the packets received (up to a burst); False when the connection closed.

        paho reads one packet per call: reading on while the client's buffer holds
        bytes saves a select and a keepalive check per message.
        """
        for _ in range(_READ_BURST):
            if client.loop_read() != paho.MQTT_ERR_SUCCESS:
                return False
            if client._in_packet["command"] == 0 and not self._can_read():
                break  # at a packet boundary and over the byte bound
            if not _has_pending(client, client.socket()):
                break
        self._on_burst()
        return True

    def _shutdown(self, client: Any) -> None:
        """DISCONNECT (the persistent session stays unless retiring), flushing acks first."""
        props = None
        if self._retire:
            props = Properties(PacketTypes.DISCONNECT)  # type: ignore[no-untyped-call]
            props.SessionExpiryInterval = 0  # the broker deletes the session now
        flush_until = time.monotonic() + 2.0  # the acks queued last go out first
        while client.want_write() and client.socket() is not None:
            if client.loop_write() != paho.MQTT_ERR_SUCCESS or time.monotonic() > flush_until:
                break
        client.disconnect(properties=props)
        deadline = time.monotonic() + 1.0
        while client.socket() is not None and time.monotonic() < deadline:
            if client.loop(timeout=0.05) != paho.MQTT_ERR_SUCCESS:
                break

    # -- paho callbacks (network thread; short) -------------------------------------

    def _on_connect(self, client: Any, _u: Any, flags: Any, reason: Any, _p: Any) -> None:
        self._connack = reason
        # paho formats a log line for every packet while on_log is set: only the
        # connection phase needs it (its first error is the cause of a failure).
        client.on_log = None
        if reason.is_failure:
            self._fail(f"the broker refused the connection: {reason}")
            client.disconnect()
            return
        self._on_connected_cb()
        if self._retire:
            client.on_unsubscribe = self._on_unsubscribe
            client.unsubscribe(self.filters)
            return
        # Always (re)subscribe: a restarted Mosquitto keeps the session, not the $share.
        client.subscribe([(f, SubscribeOptions(qos=1)) for f in self.filters])
        log.debug("connected (session present: %s), subscribing", flags.session_present)

    def _on_subscribe(self, client: Any, _u: Any, _mid: int, reasons: Any, _p: Any) -> None:
        refused = [f"{f}: {r}" for f, r in zip(self.filters, reasons, strict=False) if r.is_failure]
        if refused:
            self._fail(f"the broker refused the subscription ({'; '.join(refused)})")
            client.disconnect()
            return
        self._granted = True
        self.connects += 1
        self.last_error = None
        if self._failed_since is not None:
            log.info(
                "connected to MQTT broker %s:%s and subscribed after %d failed attempts "
                "over %.1f s",
                self.cfg.host,
                self.cfg.port,
                self._failures,
                time.monotonic() - self._failed_since,
            )
        else:
            log.info(
                "connected to MQTT broker %s:%s, subscribed to %s",
                self.cfg.host,
                self.cfg.port,
                ", ".join(self.filters),
            )
        self._failed_since, self._failures = None, 0
        self._ratelog = RateLimitedLog(log)
        self.subscribed.set()
        self._on_subscribed()

    def _on_unsubscribe(self, _c: Any, _u: Any, _mid: int, _reasons: Any, _p: Any) -> None:
        log.info(
            "retiring: unsubscribed from %s; draining what the broker queued for %s",
            ", ".join(self.filters),
            self.client_id,
        )
        self._granted = True
        self.connects += 1
        self.subscribed.set()

    def _on_disconnect(self, _c: Any, _u: Any, flags: Any, reason: Any, _p: Any) -> None:
        was_up = self.subscribed.is_set()
        self.subscribed.clear()
        if was_up and not self._stop.is_set():
            where = f"{self.cfg.host}:{self.cfg.port}"
            self._fail(f"connection to {where} lost: {disconnect_cause(flags, reason)}")

    def _on_log(self, _c: Any, _u: Any, level: int, text: str) -> None:
        if level == paho.MQTT_LOG_ERR and self._log_error is None:
            self._log_error = text  # the first error of an attempt is its cause

    def _on_message(self, _c: Any, _u: Any, message: Any) -> None:
        try:
            topic = message.topic
        except UnicodeDecodeError:  # brokers check this; be safe all the same
            topic = bytes(message._topic).decode("utf-8", "backslashreplace")
        try:
            self._on_message_cb(topic, message.payload, message.mid, message.qos)
        except Exception:
            log.exception("handing over a message from %s failed", topic)


def _has_pending(client: Any, sock: Any) -> bool:
    """Bytes received but not read yet: in the client's buffer or TLS's (no system call)."""
    if sock is None:
        return False
    return bool(client.buffered() or (hasattr(sock, "pending") and sock.pending() > 0))


def _noop(*_args: object) -> None:
    """A paho socket callback that needs no action (our loop selects on paho's wake-up)."""
