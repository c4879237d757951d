"""A fleet PKI made by the test, a Mosquitto run from the generated config, and a TLS client.

:class:`Fleet` issues identities through :class:`gateway.security.pki.FleetCA` (the
code under test); :class:`SecureBroker` runs Mosquitto 2.x with exactly the
``roadside.conf`` and ACL that ``gateway pki broker-config`` writes, plus logging of
everything so a test can assert the broker's own line; :class:`TlsClient` is a
paho client with one identity's certificate that records CONNACK, SUBACK and PUBACK
reason codes.
"""

from __future__ import annotations

import datetime as dt
import signal
import ssl
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from gateway.localservers import Server, find_binary, free_port
from gateway.security import identity
from gateway.security.broker import BrokerLayout, acl_text, mosquitto_conf
from gateway.security.files import PRIVATE, write_secure
from gateway.security.pki import FleetCA, Issued

PASSPHRASE = b"correct horse battery"


class Fleet:
    """A CA in ``root/pki`` and the identities' files in ``root/ids``."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.ids = root / "ids"
        self.ca = FleetCA.create(root / "pki", PASSPHRASE)

    def _save(self, stem: str, issued: Issued) -> Path:
        write_secure(self.ids / f"{stem}.crt", issued.cert_pem, 0o644)
        write_secure(self.ids / f"{stem}.key", issued.key_pem, PRIVATE)
        return self.ids / stem

    def unit(self, site: str, gateway: str, **kw: Any) -> Path:
        issued = self.ca.issue_with_key(identity.unit(site, gateway), PASSPHRASE, **kw)
        return self._save(f"{site}.{gateway}", issued)

    def operator(self, name: str, role: identity.Role = "admin") -> Path:
        issued = self.ca.issue_with_key(identity.operator(name, role), PASSPHRASE)
        return self._save(f"operator.{name}", issued)

    def ingest(self, name: str) -> Path:
        issued = self.ca.issue_with_key(identity.ingest(name), PASSPHRASE)
        return self._save(f"ingest.{name}", issued)

    def broker(self) -> Path:
        issued = self.ca.issue_with_key(
            identity.broker("localhost"), PASSPHRASE, hosts=("127.0.0.1",)
        )
        return self._save("broker", issued)

    def expired_unit(self, site: str, gateway: str) -> Path:
        now = dt.datetime.now(dt.UTC)
        return self.unit(
            site,
            gateway,
            not_before=now - dt.timedelta(days=10),
            not_after=now - dt.timedelta(days=1),
        )

    def tls(self, stem: Path) -> dict[str, Any]:
        """``tls`` section of a gateway config for identity files ``stem``.{crt,key}."""
        return {
            "ca_file": str(self.ca.cert_path),
            "cert_file": f"{stem}.crt",
            "key_file": f"{stem}.key",
        }


class SecureBroker(Server):
    """Mosquitto with the generated listener and ACL, bound to 127.0.0.1, logging everything."""

    def __init__(self, workdir: Path, fleet: Fleet, prefix: str = "city") -> None:
        super().__init__(workdir, free_port())
        self.fleet = fleet
        self.prefix = prefix
        self.broker_files = fleet.broker()
        self.layout = BrokerLayout(
            prefix=prefix,
            port=self.port,
            bind="127.0.0.1",
            ca_file=fleet.ca.cert_path,
            cert_file=Path(f"{self.broker_files}.crt"),
            key_file=Path(f"{self.broker_files}.key"),
            crl_file=workdir / "crl.pem",
            acl_file=workdir / "acl",
        )

    def write_files(self) -> None:
        """(Re)generate the ACL and copy the CRL, as an operator does after a change."""
        self.workdir.mkdir(parents=True, exist_ok=True)
        (self.workdir / "acl").write_text(acl_text(self.layout, self.fleet.ca.records()))
        (self.workdir / "crl.pem").write_bytes(self.fleet.ca.crl_path.read_bytes())

    def command(self) -> list[str]:
        self.write_files()
        conf = self.workdir / "mosquitto.conf"
        conf.write_text(
            "persistence false\nlog_dest stderr\nlog_type all\nconnection_messages true\n"
            # Keep root's rights when started as root: the keys sit in pytest's private
            # temporary directory (ignored when not running as root).
            "user root\n"
            f"include_dir {self.workdir / 'inc'}\n"
        )
        inc = self.workdir / "inc"
        inc.mkdir(exist_ok=True)
        (inc / "roadside.conf").write_text(mosquitto_conf(self.layout))
        return [find_binary("mosquitto"), "-c", str(conf)]

    def wait_log(self, needle: str, timeout: float = 10.0, start: int = 0) -> str:
        """Wait for ``needle`` in the broker's log (after offset ``start``); return the line."""
        deadline = time.monotonic() + timeout
        while True:
            text = self.log_text()[start:]
            for line in text.splitlines():
                if needle in line:
                    return line
            if time.monotonic() > deadline:
                raise AssertionError(f"broker log has no {needle!r}:\n{text[-3000:]}")
            time.sleep(0.05)

    def reload(self) -> None:
        """Regenerate the files and SIGHUP the broker; wait until it has reloaded."""
        assert self.proc is not None
        mark = len(self.log_text())
        self.write_files()
        self.proc.send_signal(signal.SIGHUP)
        self.wait_log("Reloading config", start=mark)
        time.sleep(0.2)  # the reload finishes right after the line


def tls_alert(port: int, ca: Path, stem: Path | None) -> str:
    """Do a TLS handshake with identity ``stem`` and read: the broker's alert, or ``"open"``.

    With TLS 1.3 the client finishes its handshake before the broker has checked
    the client certificate; the broker's verdict (an alert naming the reason) comes
    with the first read.
    """
    import socket

    context = ssl.create_default_context(cafile=str(ca))
    if stem is not None:
        context.load_cert_chain(f"{stem}.crt", f"{stem}.key")
    with socket.create_connection(("127.0.0.1", port), timeout=10) as raw:
        try:
            with context.wrap_socket(raw, server_hostname="localhost") as tls:
                tls.settimeout(2)
                tls.recv(1)
        except ssl.SSLError as exc:
            return str(exc)
        except TimeoutError:
            return "open"
    return "closed"


def secure_broker(workdir: Path, fleet: Fleet) -> Iterator[SecureBroker]:
    """A started :class:`SecureBroker`, stopped afterwards (``yield from`` it in a fixture)."""
    server = SecureBroker(workdir, fleet)
    server.start()
    try:
        yield server
    finally:
        server.stop()


class TlsClient:
    """A paho client with one identity; records what the broker answers."""

    def __init__(
        self,
        broker: SecureBroker,
        stem: Path | None,
        client_id: str = "",
        protocol: int = mqtt.MQTTv5,
        ca: Path | None = None,
    ) -> None:
        self.broker = broker
        self.protocol = protocol
        self.client = mqtt.Client(
            CallbackAPIVersion.VERSION2, client_id=client_id, protocol=protocol
        )
        self.client.tls_set(
            ca_certs=str(ca or broker.fleet.ca.cert_path),
            certfile=f"{stem}.crt" if stem else None,
            keyfile=f"{stem}.key" if stem else None,
        )
        self.lock = threading.Lock()
        self.connack: Any = None
        self.session_present: bool | None = None
        self.connected = threading.Event()
        self.disconnected = threading.Event()
        self.disconnect_reason: Any = None
        self.pubacks: dict[int, Any] = {}
        self.subacks: dict[int, list[Any]] = {}
        self.messages: list[mqtt.MQTTMessage] = []
        self.client.on_connect = self._on_connect
        self.client.on_disconnect = self._on_disconnect
        self.client.on_publish = self._on_publish
        self.client.on_subscribe = self._on_subscribe
        self.client.on_message = self._on_message

    # -- callbacks -----------------------------------------------------------------

    def _on_connect(self, _c: Any, _u: Any, flags: Any, reason: Any, _p: Any) -> None:
        self.connack = reason
        self.session_present = bool(flags.session_present)
        self.connected.set()

    def _on_disconnect(self, _c: Any, _u: Any, _f: Any, reason: Any, _p: Any) -> None:
        self.disconnect_reason = reason
        self.disconnected.set()

    def _on_publish(self, _c: Any, _u: Any, mid: int, reason: Any, _p: Any) -> None:
        with self.lock:
            self.pubacks[mid] = reason

    def _on_subscribe(self, _c: Any, _u: Any, mid: int, reasons: Any, _p: Any) -> None:
        with self.lock:
            self.subacks[mid] = list(reasons)

    def _on_message(self, _c: Any, _u: Any, msg: mqtt.MQTTMessage) -> None:
        with self.lock:
            self.messages.append(msg)

    # -- actions -------------------------------------------------------------------

    def connect(
        self, clean_start: bool = True, session_expiry: int | None = None, timeout: float = 10.0
    ) -> str:
        """Connect; ``"connected"``, or the TLS/connection failure as text."""
        props = None
        if self.protocol == mqtt.MQTTv5 and session_expiry is not None:
            props = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
            props.SessionExpiryInterval = session_expiry
        try:
            if self.protocol == mqtt.MQTTv5:
                self.client.connect(
                    "127.0.0.1", self.broker.port, 30, clean_start=clean_start, properties=props
                )
            else:
                self.client.connect("127.0.0.1", self.broker.port, 30)
        except (ssl.SSLError, OSError) as exc:
            return f"refused: {exc}"
        self.client.loop_start()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.connected.is_set():
                return "connected" if not self.connack.is_failure else f"refused: {self.connack}"
            if self.disconnected.is_set():
                return f"refused: {self.disconnect_reason}"
            time.sleep(0.02)
        return "refused: no CONNACK"

    def publish(self, topic: str, payload: bytes = b"x", qos: int = 1) -> Any:
        """Publish and wait for the PUBACK; return its reason code (v5) or ``"acked"``."""
        info = self.client.publish(topic, payload, qos=qos)
        if qos == 0:
            return None
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            with self.lock:
                if info.mid in self.pubacks:
                    reason = self.pubacks[info.mid]
                    return reason.value if self.protocol == mqtt.MQTTv5 else "acked"
            time.sleep(0.02)
        raise AssertionError(f"no PUBACK for {topic}")

    def subscribe(self, topic: str, qos: int = 1) -> list[int]:
        """Subscribe and wait for the SUBACK; return the reason codes' values."""
        _rc, mid = self.client.subscribe(topic, qos)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            with self.lock:
                if mid in self.subacks:
                    return [r.value for r in self.subacks[mid]]
            time.sleep(0.02)
        raise AssertionError(f"no SUBACK for {topic}")

    def received(self, topic_part: str = "") -> list[mqtt.MQTTMessage]:
        with self.lock:
            return [m for m in self.messages if topic_part in m.topic]

    def wait_received(self, topic_part: str, count: int = 1, timeout: float = 10.0) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if len(self.received(topic_part)) >= count:
                return True
            time.sleep(0.02)
        return False

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()
