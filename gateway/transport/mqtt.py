"""The MQTT link: one paho-mqtt 2.x client per connection, our own reconnect loop.

* MQTT v5 first; if the broker refuses v5 with CONNACK "unsupported protocol version",
  the next attempt uses v3.1.1 at once. A connection closed (or left unanswered) before
  any CONNACK is what a v3-only broker does to a v5 CONNECT, but also what a v5 broker
  does while it shuts down, starts or is stopped: v3.1.1 hides every refusal (PUBACK has
  no reason code), so a session on it after a broker restart would delete events the
  broker dropped for want of a subscriber. The link falls back on those only after two
  in a row (:data:`V5_CLOSES_BEFORE_FALLBACK`; at once when the broker has taken v3.1.1
  after that before), and never once the broker has accepted v5 in this process. After
  any v3.1.1 session the next connection tries v5 again.
* TLS with a CA, a client certificate and key; username and password.
* Reconnects with exponential back-off and jitter. Every connection starts a new
  paho client, so nothing is resent from paho's memory: after a reconnect the
  forwarder replays the outbox, which is the only source of truth.
* A retained ``birth`` message (availability ``online``) on every connect, a retained
  last will (``offline``), and a ``final`` message (``offline``) on a clean stop.
* Callbacks run on this module's network thread and only record state or hand work on.
"""

from __future__ import annotations

import logging
import ssl
import threading
import time
from collections.abc import Callable
from typing import Any, Literal

import paho.mqtt.client as paho
from paho.mqtt.properties import Properties

from gateway.backoff import Backoff
from gateway.config.transport import MqttConfig
from gateway.errors import TransportError
from gateway.health import LinkHealth, LinkState
from gateway.transport.paho_client import (
    Incoming,
    Message,
    disconnect_cause,
    ip_bytes,
    make_client,
    publish_first,
    reply_properties,
    wire_bytes,
)
from gateway.transport.urgency import Urgency

__all__ = ["Incoming", "LinkState", "Message", "MqttLink", "reply_properties"]

log = logging.getLogger(__name__)

_Counter = Callable[[paho.Client], tuple[int, int]]  # wire_bytes or ip_bytes of a client

_CONNACK_TIMEOUT_S = 10.0
_V5_UNSUPPORTED = 132  # CONNACK reason "Unsupported Protocol Version"
V5_CLOSES_BEFORE_FALLBACK = 2  # v5 CONNECTs ended without a CONNACK in a row, then v3.1.1


def _write_on_network_thread(_client: paho.Client, _userdata: object, _sock: object) -> None:
    """Nothing to do: the network thread's loop() writes whatever is queued."""


class MqttLink:
    """A supervised connection to one broker; publish from any thread."""

    def __init__(
        self,
        cfg: MqttConfig,
        client_id: str,
        *,
        birth: Callable[[], Message] | None = None,
        will: Callable[[], Message] | None = None,
        subscriptions: tuple[str, ...] = (),
        on_connected: Callable[[int], None] | None = None,
        on_published: Callable[[int, int, int], None] | None = None,
        on_message: Callable[[Incoming], None] | None = None,
        max_inflight: int = 100,
        urgency: Urgency | None = None,
    ) -> None:
        self.cfg = cfg
        self.client_id = client_id
        self.birth = birth
        self.will = will
        self.subscriptions = subscriptions
        self.on_connected = on_connected
        self.on_published = on_published
        self.on_message = on_message
        self.max_inflight = max_inflight
        self.urgency = urgency  # alerts in passage: the client's reading steps aside
        self.state: LinkState = "disconnected"
        self.protocol: Literal["5", "3.1.1"] | None = None
        self.last_error: str | None = None
        self.connects = 0
        self.generation = 0
        self.window = max_inflight
        self.max_packet: int | None = None  # the broker's Maximum Packet Size (v5 CONNACK)
        self._use_v311 = cfg.protocol == "3.1.1"
        self.spoke_v5 = False  # the broker accepted a v5 CONNECT (in this process)
        self._v5_closes = 0  # v5 CONNECTs ended without a CONNACK since the last CONNACK
        self._took_v311 = False  # it accepted v3.1.1 and never v5: a v3-only broker
        self._client: paho.Client | None = None
        self._lock = threading.Lock()
        self._connected = threading.Event()
        self._stop = threading.Event()
        self._reconfigure = threading.Event()
        self._final: Message | None = None
        self._connack: int | None = None
        self._log_error: str | None = None
        self._thread: threading.Thread | None = None
        self._backoff = Backoff(cfg.reconnect_min_s, cfg.reconnect_max_s)
        self.subscribed = False
        self.subscription_error: str | None = None
        self._sub_mids: dict[int, tuple[str, ...]] = {}
        self._sub_backoff = Backoff(cfg.reconnect_min_s, cfg.reconnect_max_s)
        self._resubscribe_at: float | None = None
        # (sent, received) of the clients of past connections, per counter
        self._closed: dict[_Counter, tuple[int, int]] = {wire_bytes: (0, 0), ip_bytes: (0, 0)}
        self._ip_seen = (0, 0)  # the largest IP-layer totals reported (never goes back)

    # -- public API ------------------------------------------------------------------

    @property
    def connected(self) -> bool:
        """Whether a CONNACK accepted the current connection."""
        return self._connected.is_set()

    def start(self) -> None:
        """Start the network thread (it connects and reconnects on its own)."""
        self._thread = threading.Thread(target=self._run, name="mqtt-link", daemon=True)
        self._thread.start()

    def wait_connected(self, timeout: float) -> None:
        """Block until connected; raise :class:`TransportError` with the last error otherwise."""
        if not self._connected.wait(timeout):
            where = f"{self.cfg.host}:{self.cfg.port}"
            raise TransportError(
                f"not connected to MQTT broker {where}: {self.last_error or 'no answer'}"
            )

    def publish(
        self,
        topic: str,
        payload: bytes,
        qos: int = 1,
        retain: bool = False,
        properties: Properties | None = None,
        *,
        first: bool = False,
    ) -> tuple[int, int] | None:
        """Publish; return ``(generation, mid)``, or ``None`` when not connected.

        ``first``: written before every packet queued earlier that has not begun to go
        out, and without waiting for the PUBACKs of a window to be read (an alert
        behind a draining backlog; :func:`~gateway.transport.paho_client.publish_first`).
        """
        with self._lock:
            client = self._client
            generation = self.generation
            if client is None or not self._connected.is_set():
                return None
            if first:
                info = publish_first(
                    client, topic, payload, qos=qos, retain=retain, properties=properties
                )
            else:
                info = client.publish(topic, payload, qos=qos, retain=retain, properties=properties)
        if info.rc != paho.MQTT_ERR_SUCCESS:
            return None
        return generation, int(info.mid)

    def stop(self, final: Message | None = None, timeout: float = 5.0) -> None:
        """Publish ``final`` (waiting for its PUBACK), disconnect cleanly and stop."""
        self._final = final
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout + 2.0)
            self._thread = None

    def wire_bytes(self) -> tuple[int, int]:
        """MQTT bytes sent and received on every connection of this link so far.

        Whole packets as they went over the socket: fixed header, topic, properties,
        payload, the PUBACKs, PINGs and the CONNECT/CONNACK of every attempt.
        """
        return self._total(wire_bytes)

    def ip_bytes(self) -> tuple[int, int]:
        """IP-layer bytes sent and received on every connection of this link so far.

        What a metered plan bills: the MQTT bytes, the TLS records around them and the
        TCP/IP headers of every segment (acknowledgements and retransmissions too), from
        the kernel's counters; ``(0, 0)`` on a system without them.
        """
        sent, received = self._total(ip_bytes)
        with self._lock:
            self._ip_seen = (max(self._ip_seen[0], sent), max(self._ip_seen[1], received))
            return self._ip_seen

    def _total(self, count: _Counter) -> tuple[int, int]:
        """``count``'s bytes over the past connections and the current one."""
        with self._lock:
            client = self._client
            sent, received = self._closed[count]
        if client is not None:
            now_sent, now_received = count(client)
            sent, received = sent + now_sent, received + now_received
        return sent, received

    def health(self) -> LinkHealth:
        """State, protocol, connects, the last error and the bytes on the wire."""
        sent, received = self.wire_bytes()
        ip_sent, ip_received = self.ip_bytes()
        return LinkHealth(
            state=self.state,
            protocol=self.protocol,
            connects=self.connects,
            last_error=self.last_error or self.subscription_error,
            subscribed=self.subscribed,
            bytes_sent=sent,
            bytes_received=received,
            ip_bytes_sent=ip_sent,
            ip_bytes_received=ip_received,
        )

    # -- network thread --------------------------------------------------------------

    def reconfigure(self, cfg: MqttConfig) -> None:
        """Use ``cfg`` from now on: leave the current connection cleanly and connect anew.

        The caller watches :attr:`connects` and :attr:`last_error` to see whether the new
        settings work (``set_config``'s health-gated rollback).
        """
        self.cfg = cfg
        self._use_v311 = cfg.protocol == "3.1.1"
        self._backoff = Backoff(cfg.reconnect_min_s, cfg.reconnect_max_s)
        self._sub_backoff = Backoff(cfg.reconnect_min_s, cfg.reconnect_max_s)
        self._reconfigure.set()

    def _run(self) -> None:
        while not self._stop.is_set():
            v311 = self._use_v311
            accepted, refused_protocol = self._session(v311)
            if self._stop.is_set():
                break
            if self._reconfigure.is_set():
                self._reconfigure.clear()
                continue
            if accepted:
                self._backoff.reset()
                self._took_v311 = self._took_v311 or (v311 and not self.spoke_v5)
                if v311 and self.cfg.protocol == "auto":
                    # A v5 broker that closed a connection before its CONNACK (it was
                    # shutting down) must not leave the unit on v3.1.1 for good, where
                    # refusals are invisible: try v5 first on every new connection.
                    self._use_v311 = False
            if self.cfg.protocol == "auto" and not v311 and self._falls_back(refused_protocol):
                log.warning("broker refused MQTT v5 (%s); retrying with v3.1.1", self.last_error)
                self._use_v311 = True
                continue
            delay = self._backoff.next_delay()
            log.info("MQTT reconnect in %.1f s (%s)", delay, self.last_error)
            end = time.monotonic() + delay
            while not self._stop.is_set() and not self._reconfigure.is_set():
                left = end - time.monotonic()
                if left <= 0:
                    break
                self._stop.wait(min(left, 0.1))
            self._reconfigure.clear()  # the next attempt uses the new settings already
        self.state = "disconnected"

    def _falls_back(self, refused: Literal["connack", "no_connack"] | None) -> bool:
        """Whether a v5 attempt that ended with ``refused`` means "use v3.1.1"."""
        if refused == "connack":
            return True
        if refused != "no_connack":
            return False
        self._v5_closes += 1
        if self.spoke_v5:  # a v5 broker restarting, not a v3-only one
            if self._v5_closes == V5_CLOSES_BEFORE_FALLBACK:
                log.warning(
                    "%d MQTT v5 connections in a row ended without a CONNACK; the broker "
                    'accepted v5 before, so the link stays on v5 (set [mqtt] protocol = "3.1.1" '
                    "if it now speaks only v3.1.1)",
                    self._v5_closes,
                )
            return False
        return self._took_v311 or self._v5_closes >= V5_CLOSES_BEFORE_FALLBACK

    def _new_client(self, v311: bool) -> paho.Client:
        client = make_client(
            self.cfg,
            self.client_id,
            v311,
            self.will() if self.will is not None else None,
            urgency=self.urgency,
        )
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_publish = self._on_publish
        client.on_subscribe = self._on_subscribe
        client.on_message = self._on_message
        client.on_log = self._on_log
        # Without a paho-managed loop thread, paho writes a packet on the publishing
        # thread while this link's network thread may be reading the same socket: with
        # TLS that corrupts the stream ("bad record mac") and the broker drops us. A
        # write-registration callback makes paho leave every write to loop().
        client.on_socket_register_write = _write_on_network_thread
        return client

    def _session(self, v311: bool) -> tuple[bool, Literal["connack", "no_connack"] | None]:
        """Connect once and serve until the connection ends; (accepted, how v5 was refused).

        v5 is refused by ``"connack"`` (reason 132) or maybe by ``"no_connack"`` (the
        connection closed, or left unanswered, before any CONNACK); ``None`` when not.
        """
        client = self._new_client(v311)
        if self.state != "error":  # an error stays visible while we retry
            self.state = "connecting"
        self._connack = None
        self._log_error = None
        self.subscribed = False
        self._sub_mids.clear()
        self._resubscribe_at = None
        where = f"{self.cfg.host}:{self.cfg.port}"
        try:
            client.connect(self.cfg.host, self.cfg.port, keepalive=self.cfg.keepalive_s)
        except ssl.SSLError as exc:
            client._reset_sockets()
            self._close_wire(client)
            return self._failed(f"TLS handshake with {where} failed: {exc}", error=True)
        except (OSError, ValueError) as exc:
            client._reset_sockets()
            self._close_wire(client)
            return self._failed(f"cannot connect to {where}: {exc}")
        with self._lock:
            self._client = client
        deadline = time.monotonic() + _CONNACK_TIMEOUT_S
        timed_out = False
        try:
            while not self._stop.is_set() and not self._reconfigure.is_set():
                rc = client.loop(timeout=0.05)
                if self._resubscribe_due():
                    self._subscribe(client)
                if self._connack_code() not in (None, 0):
                    break
                if rc != paho.MQTT_ERR_SUCCESS:
                    break
                if self._connack_code() is None and time.monotonic() > deadline:
                    timed_out = True
                    break
            leaving = self._stop.is_set() or self._reconfigure.is_set()
            if leaving and self._connected.is_set():
                self._shutdown(client)
        finally:
            with self._lock:
                self._connected.clear()
                self._client = None
                self._add_wire(client)
            client._reset_sockets()  # close the socket and paho's wake-up pair now, not at GC
        connack = self._connack_code()
        accepted = connack == 0
        if connack is None:
            # Closed or unanswered before CONNACK: a v3-only broker does this to a v5
            # CONNECT (amqtt leaves one carrying a will unanswered), and so do a TLS peer
            # that rejects our certificate after the handshake, a v5 broker that shuts
            # down or starts (closed) and one that is stopped or overloaded (unanswered).
            if timed_out:
                self._failed(f"no CONNACK from {where} in {_CONNACK_TIMEOUT_S:.0f} s", True)
            else:
                reason = self._log_error or "connection closed before CONNACK"
                self._failed(f"{where}: {reason}", error=True)
            return False, None if v311 else "no_connack"
        self._v5_closes = 0
        if not accepted:
            return False, "connack" if connack == _V5_UNSUPPORTED else None
        self.state = "disconnected"
        if not self._stop.is_set():
            self.last_error = f"connection to {where} lost: {self._log_error or 'closed'}"
        return True, None

    def _close_wire(self, client: paho.Client) -> None:
        """Count the bytes of a client that never became the current one."""
        with self._lock:
            self._add_wire(client)

    def _add_wire(self, client: paho.Client) -> None:
        """Add a finished client's bytes to the link's (hold the lock)."""
        for count, (sent, received) in self._closed.items():
            now_sent, now_received = count(client)
            self._closed[count] = (sent + now_sent, received + now_received)

    def _subscribe(self, client: paho.Client) -> None:
        """Subscribe to the command topics (network thread); SUBACK checked on arrival."""
        self._resubscribe_at = None
        if not self.subscriptions:
            return
        result, mid = client.subscribe([(topic, 1) for topic in self.subscriptions])
        if result == paho.MQTT_ERR_SUCCESS and mid is not None:
            self._sub_mids[int(mid)] = self.subscriptions

    def _resubscribe_due(self) -> bool:
        """Whether a refused subscription should be tried again now (set on SUBACK)."""
        at = self._resubscribe_at
        return at is not None and time.monotonic() >= at

    def _connack_code(self) -> int | None:
        """Return the CONNACK reason of the current attempt (set on the network thread)."""
        return self._connack

    def _failed(self, message: str, error: bool = False) -> tuple[bool, None]:
        self.last_error = message
        self.state = "error" if error else "disconnected"
        return False, None

    def _shutdown(self, client: paho.Client) -> None:
        """Publish the final message, wait for its PUBACK, then DISCONNECT (no will)."""
        if self._final is not None:
            info = client.publish(
                self._final.topic, self._final.payload, qos=1, retain=self._final.retain
            )
            deadline = time.monotonic() + 3.0
            while not info.is_published() and time.monotonic() < deadline:
                if client.loop(timeout=0.05) != paho.MQTT_ERR_SUCCESS:
                    break
        client.disconnect()
        deadline = time.monotonic() + 1.0
        while self._connected.is_set() and time.monotonic() < deadline:
            if client.loop(timeout=0.05) != paho.MQTT_ERR_SUCCESS:
                break

    # -- paho callbacks (network thread; short) -------------------------------------

    def _on_connect(
        self,
        client: paho.Client,
        _userdata: object,
        _flags: object,
        reason: Any,
        properties: Properties | None,
    ) -> None:
        code = int(reason.value) if hasattr(reason, "value") else int(reason)
        self._connack = code
        if reason.is_failure:
            self.last_error = f"broker refused the connection: {reason}"
            self.state = "error"
            return
        v311 = client.protocol == paho.MQTTv311
        self.protocol = "3.1.1" if v311 else "5"
        self.spoke_v5 = self.spoke_v5 or not v311
        receive_max = getattr(properties, "ReceiveMaximum", None) if properties else None
        self.window = min(self.max_inflight, int(receive_max)) if receive_max else self.max_inflight
        max_packet = getattr(properties, "MaximumPacketSize", None) if properties else None
        self.max_packet = int(max_packet) if max_packet else None
        self._subscribe(client)
        if v311:
            log.warning(
                "MQTT v3.1.1: the broker cannot report refused events (no reason codes); "
                "give the central subscriber a persistent session and allow this unit's topics"
            )
        if self.birth is not None:
            birth = self.birth()
            client.publish(birth.topic, birth.payload, qos=1, retain=birth.retain)
        with self._lock:
            self.generation += 1
            generation = self.generation
            self.connects += 1
            self.state = "connected"
            self.last_error = None
            self._connected.set()
        log.info(
            "connected to MQTT broker %s:%s (v%s)", self.cfg.host, self.cfg.port, self.protocol
        )
        if self.on_connected is not None:
            self.on_connected(generation)

    def _on_disconnect(
        self,
        _client: paho.Client,
        _userdata: object,
        flags: object,
        reason: Any,
        _properties: Properties | None,
    ) -> None:
        self._connected.clear()
        if self._connack == 0 and not self._stop.is_set():
            log.warning("MQTT connection lost: %s", disconnect_cause(flags, reason))

    def _on_publish(
        self,
        _client: paho.Client,
        _userdata: object,
        mid: int,
        reason: Any,
        _properties: Properties | None,
    ) -> None:
        # v3.1.1 PUBACKs carry no reason: paho reports success (0) for them.
        if self.on_published is not None:
            self.on_published(self.generation, mid, int(getattr(reason, "value", 0) or 0))

    def _on_subscribe(
        self,
        _client: paho.Client,
        _userdata: object,
        mid: int,
        reasons: list[Any],
        _properties: Properties | None,
    ) -> None:
        topics = self._sub_mids.pop(mid, ())
        failed = []
        for topic, reason in zip(topics, reasons, strict=False):
            code = int(getattr(reason, "value", 0) or 0)
            if code >= 128:
                failed.append(f"{topic}: {code} ({reason})")
            elif code == 0:
                log.warning("broker granted only QoS 0 on %s: commands may be lost", topic)
        if failed:
            self.subscription_error = "; ".join(failed)
            self.subscribed = False
            self._resubscribe_at = time.monotonic() + self._sub_backoff.next_delay()
            log.error(
                "broker refused the subscription (%s): no commands until it is accepted; "
                "retrying in %.1f s",
                self.subscription_error,
                self._resubscribe_at - time.monotonic(),
            )
        elif topics:
            if self.subscription_error is not None:
                log.info("subscription accepted: %s", ", ".join(topics))
            self.subscription_error = None
            self.subscribed = True
            self._sub_backoff.reset()

    def _on_message(self, _client: paho.Client, _userdata: object, msg: paho.MQTTMessage) -> None:
        if self.on_message is None:
            return
        props = msg.properties
        response = getattr(props, "ResponseTopic", None) if props is not None else None
        correlation = getattr(props, "CorrelationData", None) if props is not None else None
        self.on_message(Incoming(msg.topic, bytes(msg.payload), response, correlation))

    def _on_log(self, _client: paho.Client, _userdata: object, level: int, text: str) -> None:
        if level == paho.MQTT_LOG_ERR and self._log_error is None:
            self._log_error = text  # the first error of an attempt is the cause
