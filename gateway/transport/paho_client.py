"""paho-mqtt 2.x pieces shared by every MQTT user: the one client factory, message types.

:func:`make_client` builds the client of the gateway's link and of the ingest worker
alike (protocol, credentials, TLS with the handshake-failure socket fix);
:func:`connect_failure` turns a failed connection attempt into one readable cause,
:func:`disconnect_cause` a lost connection.
"""

from __future__ import annotations

import collections
import socket
import ssl
from dataclasses import dataclass
from typing import Any

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion, MQTTErrorCode
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from gateway.config.transport import MqttConfig
from gateway.transport.tcpinfo import ip_totals
from gateway.transport.urgency import Urgency


class _Client(paho.Client):
    """paho's client, closing the TLS socket when the handshake fails (no leaked socket).

    It also counts the MQTT bytes it writes to and reads from its socket
    (:attr:`wire_sent`, :attr:`wire_received`): every packet whole, fixed header,
    topic, properties, payload, PUBACKs, PINGs, CONNECT and CONNACK (TLS records and
    TCP/IP headers are below it and not counted).
    """

    wire_sent = 0
    wire_received = 0
    ip_closed = (0, 0)  # IP-layer bytes (out, in) of this client's closed sockets
    urgency: Urgency | None = None  # set by make_client: PUBACK reading steps aside

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # mids published with publish_first() that the network loop has not moved yet
        self._first_mids: collections.deque[int] = collections.deque()
        self._first_waiting: set[int] = set()  # moved to the front, not yet written

    def publish_first(
        self,
        topic: str,
        payload: bytes,
        qos: int = 1,
        retain: bool = False,
        properties: Properties | None = None,
    ) -> paho.MQTTMessageInfo:
        """Publish; the network loop writes it before the packets queued earlier.

        paho writes its packets in the order they were queued, and its network loop
        reads every waiting packet (up to one per message in flight) before it
        writes: a packet queued behind a window of bulk events waits for all of them
        and for the reading of their PUBACKs. A packet published with this method is
        moved, on the network thread, ahead of every queued packet that has not begun
        to go out (a packet half written stays first; earlier ``publish_first``
        packets keep their order), and written between two reads.

        Only for a client whose packets are written by one network thread (an
        ``on_socket_register_write`` callback set, as :class:`MqttLink` does): that
        thread alone takes packets off the queue, so moving them there is safe.
        """
        info = self.publish(topic, payload, qos=qos, retain=retain, properties=properties)
        if info.rc == paho.MQTT_ERR_SUCCESS:
            self._first_mids.append(info.mid)
        return info

    def _move_first(self) -> None:
        """Move the packets of publish_first() to the front of the queue (network thread)."""
        while self._first_mids:
            self._first_waiting.add(self._first_mids.popleft())
        queue = self._out_packet
        snapshot = list(queue)  # other threads only append on the right meanwhile
        present = {p["mid"] for p in snapshot if p["command"] & 0xF0 == paho.PUBLISH}
        self._first_waiting &= present
        at = 1 if snapshot and snapshot[0]["pos"] > 0 else 0  # never split a packet
        while at < len(snapshot) and self._is_first(snapshot[at]):
            at += 1  # already moved: keep their order
        for packet in snapshot[at:]:
            if self._is_first(packet):
                queue.remove(packet)
                queue.insert(at, packet)
                at += 1

    def _no_socket(self) -> bool:
        return self._sock is None

    def _has_first(self) -> bool:
        return bool(self._first_mids)

    def _is_first(self, packet: Any) -> bool:
        return bool(
            packet["command"] & 0xF0 == paho.PUBLISH and packet["mid"] in self._first_waiting
        )

    def loop_write(self) -> MQTTErrorCode:
        """Write what is queued (paho's loop_write), publish_first() packets first."""
        if self._first_mids:
            self._move_first()
        return super().loop_write()

    def loop_read(self, max_packets: int = 1) -> MQTTErrorCode:
        """Read what arrived (paho's loop_read), writing publish_first() packets at once.

        paho reads up to one packet per message in flight in one call (a hundred
        PUBACKs while a backlog drains) before its loop writes anything. While an
        alert is in passage (:mod:`gateway.transport.urgency`) the reading waits for
        it to be handed over (and then writes it first).
        """
        urgency = self.urgency
        for _ in range(max(len(self._out_messages) + len(self._in_messages), 1)):
            if self._no_socket():  # closed by a packet handled just now
                return MQTTErrorCode.MQTT_ERR_NO_CONN
            if urgency is not None and urgency.active() and not self._first_mids:
                urgency.step_aside(self._has_first)  # checked first: once per PUBACK
            if self._first_mids:
                written = self.loop_write()
                if written != MQTTErrorCode.MQTT_ERR_SUCCESS:
                    return written
            rc = self._packet_read()
            if rc > 0:
                return self._loop_rc_handle(rc)
            if rc == MQTTErrorCode.MQTT_ERR_AGAIN:
                return MQTTErrorCode.MQTT_ERR_SUCCESS
        return MQTTErrorCode.MQTT_ERR_SUCCESS

    def _sock_send(self, buf: bytes | bytearray) -> int:
        sent = super()._sock_send(buf)
        self.wire_sent += sent
        return sent

    def _sock_recv(self, bufsize: int) -> bytes:
        data = super()._sock_recv(bufsize)
        self.wire_received += len(data)
        return data

    def _sock_close(self) -> None:
        # The kernel's counters of the socket, read before it goes; added after, so that
        # a reader (ip_bytes) sees a total that is at worst a little short, never doubled.
        sock = self._sock
        got = ip_totals(sock) if sock is not None else None
        super()._sock_close()
        if got is not None:
            self.ip_closed = (self.ip_closed[0] + got[0], self.ip_closed[1] + got[1])

    def _ssl_wrap_socket(self, tcp_sock: socket.socket) -> ssl.SSLSocket:
        context = self._ssl_context
        if context is None:
            raise ValueError("TLS requested without a TLS context")
        ssl_sock = context.wrap_socket(
            tcp_sock, server_hostname=self._host, do_handshake_on_connect=False
        )
        try:
            ssl_sock.settimeout(self._connect_timeout)
            ssl_sock.do_handshake()
        except BaseException:
            ssl_sock.close()
            raise
        return ssl_sock


class _BufferedClient(_Client):
    """paho's client reading its socket in large chunks (a high-rate subscriber).

    paho reads a packet with several small ``recv`` calls (its type byte, each length
    byte, then the body): a few system calls per message, each releasing the GIL
    while other threads wait for it. This client takes up to :data:`READ_CHUNK`
    bytes per system call and serves paho's small reads from that buffer; the
    owner's network loop must read on while :meth:`buffered` is not zero (the socket
    itself may have nothing left to say).
    """

    READ_CHUNK = 256 * 1024

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._rbuf = b""
        self._rpos = 0

    def buffered(self) -> int:
        """Bytes received from the socket that paho has not read yet."""
        return len(self._rbuf) - self._rpos

    def _sock_recv(self, bufsize: int) -> bytes:
        if self._rpos >= len(self._rbuf):
            data = super()._sock_recv(max(bufsize, self.READ_CHUNK))
            if len(data) <= bufsize:  # also the empty read that means end of stream
                return data
            self._rbuf, self._rpos = data, 0
        start = self._rpos
        self._rpos = min(start + bufsize, len(self._rbuf))
        return self._rbuf[start : self._rpos]


@dataclass(frozen=True, slots=True)
class Message:
    """A retained-or-not message to publish (birth, will, final)."""

    topic: str
    payload: bytes
    retain: bool = True


@dataclass(frozen=True, slots=True)
class Incoming:
    """A received message, copied out of paho (so it can cross threads)."""

    topic: str
    payload: bytes
    response_topic: str | None
    correlation_data: bytes | None


def wire_bytes(client: paho.Client) -> tuple[int, int]:
    """MQTT bytes ``client`` (made by :func:`make_client`) sent and received so far."""
    if isinstance(client, _Client):
        return client.wire_sent, client.wire_received
    return 0, 0


def ip_bytes(client: paho.Client) -> tuple[int, int]:
    """IP-layer bytes ``client`` (made by :func:`make_client`) sent and received so far.

    The MQTT bytes with the TLS records and the TCP/IP headers of every segment, from
    the kernel's counters (:mod:`gateway.transport.tcpinfo`); ``(0, 0)`` where they
    cannot be read. Read from another thread, the total may be a little short for a
    moment while the socket closes (callers keep the largest they saw).
    """
    if not isinstance(client, _Client):
        return 0, 0
    sock = client._sock  # paho keeps the socket there: read, never used
    closed = client.ip_closed
    live = ip_totals(sock) if sock is not None else None
    if live is None:
        return closed
    return closed[0] + live[0], closed[1] + live[1]


def publish_first(
    client: paho.Client,
    topic: str,
    payload: bytes,
    *,
    qos: int = 1,
    retain: bool = False,
    properties: Properties | None = None,
) -> paho.MQTTMessageInfo:
    """Publish ahead of the packets ``client`` has queued and not begun to write.

    See :meth:`_Client.publish_first`; a client not made by :func:`make_client`
    publishes in order.
    """
    if isinstance(client, _Client):
        return client.publish_first(topic, payload, qos, retain, properties)
    return client.publish(topic, payload, qos=qos, retain=retain, properties=properties)


def make_client(
    cfg: MqttConfig,
    client_id: str,
    v311: bool,
    will: Message | None,
    *,
    buffered_reads: bool = False,
    urgency: Urgency | None = None,
) -> paho.Client:
    """Build one paho client for one connection attempt (callbacks are set by the caller).

    ``buffered_reads``: a client for a high-rate subscriber with its own network loop
    (see :class:`_BufferedClient`; the loop must read while ``client.buffered()``).
    ``urgency``: the unit's alerts in passage, for which its reading steps aside.
    """
    protocol = paho.MQTTv311 if v311 else paho.MQTTv5
    kwargs: dict[str, Any] = {"clean_session": True} if v311 else {}
    client = (_BufferedClient if buffered_reads else _Client)(
        CallbackAPIVersion.VERSION2,
        client_id=client_id,
        protocol=protocol,
        reconnect_on_failure=False,
        **kwargs,
    )
    # The forwarder keeps the in-flight window; paho's own limit would rescan its
    # whole message table on every PUBACK.
    client.max_inflight_messages_set(0)
    client.max_queued_messages_set(0)
    client.urgency = urgency
    if cfg.username:
        password = cfg.password.get_secret_value() if cfg.password else None
        client.username_pw_set(cfg.username, password)
    tls = cfg.tls
    if tls is not None:
        client.tls_set(
            ca_certs=str(tls.ca_file) if tls.ca_file else None,
            certfile=str(tls.cert_file) if tls.cert_file else None,
            keyfile=str(tls.key_file) if tls.key_file else None,
        )
        client.tls_insecure_set(tls.insecure)
    if will is not None:
        client.will_set(will.topic, will.payload, qos=1, retain=will.retain)
    return client


def connect_failure(exc: BaseException, host: str, port: int) -> str:
    """One line naming why connecting to ``host:port`` failed (DNS, refused, TLS, timeout)."""
    where = f"{host}:{port}"
    if isinstance(exc, socket.gaierror):
        return f"cannot resolve the broker host {host!r}: {exc.strerror or exc}"
    if isinstance(exc, ssl.SSLCertVerificationError):
        return f"TLS: the broker {where} certificate is not trusted: {exc.verify_message or exc}"
    if isinstance(exc, ssl.SSLError):
        return f"TLS handshake with {where} failed: {exc.reason or exc}"
    if isinstance(exc, ConnectionRefusedError):
        return f"connection refused by {where} (no broker listening there?)"
    if isinstance(exc, TimeoutError | socket.timeout):
        return f"no answer from {where} (timed out)"
    if isinstance(exc, FileNotFoundError):
        return f"TLS file not found: {exc.filename or exc}"
    if isinstance(exc, OSError):
        return f"cannot connect to {where}: {exc.strerror or exc}"
    return f"cannot connect to {where}: {type(exc).__name__}: {exc}"


def disconnect_cause(flags: Any, reason: Any) -> str:
    """Why a connection ended, from paho's ``on_disconnect`` flags and reason code.

    paho reports a socket closed under it (the broker stopped or was killed, the
    network dropped) as reason "Unspecified error", which reads like a broker's
    DISCONNECT; only ``flags.is_disconnect_packet_from_server`` tells them apart.
    """
    name = str(getattr(reason, "getName", lambda: reason)())
    if getattr(flags, "is_disconnect_packet_from_server", False):
        return f"the broker disconnected us: {name}"
    if name == "Keep alive timeout":
        return "no answer from the broker within the keepalive"
    if name == "Unspecified error":
        return "the connection closed (the broker stopped or the network dropped it)"
    return name


def reply_properties(correlation: bytes | None) -> Properties | None:
    """PUBLISH properties of an MQTT v5 reply carrying ``correlation`` data."""
    if correlation is None:
        return None
    props = Properties(PacketTypes.PUBLISH)  # type: ignore[no-untyped-call]
    props.CorrelationData = correlation
    return props
