"""The MQTT broker: TCP, the TLS handshake (and this unit's certificate), CONNACK.

The MQTT step connects with the same client factory ``gateway run`` uses, with the
configured credentials, under the client id ``<client id>-doctor`` so a running
gateway is not kicked off. A broker that takes the client id from the certificate
(the fleet's generated Mosquitto config does) replaces it: the running gateway then
sees one disconnect and reconnects by itself.
"""

from __future__ import annotations

import datetime as dt
import ssl
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from gateway import net
from gateway.config.transport import MqttConfig
from gateway.doctor.context import Context
from gateway.doctor.result import CheckResult, Status

TIMEOUT_S = 5.0
CERT_WARN_DAYS = 30
_V5_UNSUPPORTED = 132
_CONNACK_FIXES = {
    4: "check mqtt.username and mqtt.password (or GATEWAY_MQTT__PASSWORD)",
    134: "check mqtt.username and mqtt.password (or GATEWAY_MQTT__PASSWORD)",
    2: "the broker refuses the client id: set mqtt.client_id",
    133: "the broker refuses the client id: set mqtt.client_id",
    138: "the broker banned this client: ask its operator",
}
_NET_FIXES = {
    net.REFUSED: "is the broker running? check mqtt.host and mqtt.port (1883 plain, 8883 TLS)",
    net.DNS_FAILURE: "check mqtt.host, or the DNS server in /etc/resolv.conf",
    net.NO_ROUTE: "check mqtt.host and this unit's network (route, VLAN, modem)",
    net.TIMEOUT: "check mqtt.host and mqtt.port; a firewall may drop the connection",
}


def check_broker(ctx: Context) -> Iterator[CheckResult]:
    """TCP, then TLS when configured, then an MQTT CONNECT; stop at the first failure."""
    cfg = ctx.settings.mqtt
    timeout = ctx.timeout(TIMEOUT_S)
    where = f"{cfg.host}:{cfg.port}"
    tcp = _tcp(cfg, timeout)
    yield tcp
    if tcp.status == "fail":
        return
    if cfg.tls is not None:
        results = list(_tls(cfg, timeout))
        yield from results
        if any(r.status == "fail" for r in results):
            return
    client_id = f"{cfg.client_id or ctx.settings.gateway.id}-doctor"
    yield connack(cfg, client_id, timeout, where)


def _tcp(cfg: MqttConfig, timeout: float) -> CheckResult:
    start = time.monotonic()
    try:
        net.connect(cfg.host, cfg.port, timeout).close()
    except net.NetError as exc:
        fix = _NET_FIXES.get(exc.cause, "check mqtt.host, mqtt.port and the network")
        return CheckResult("broker", "broker tcp", "fail", f"{exc.cause}: {exc.detail}", fix)
    ms = (time.monotonic() - start) * 1000
    return CheckResult("broker", "broker tcp", "ok", f"{cfg.host}:{cfg.port} accepts ({ms:.0f} ms)")


def tls_context(cfg: MqttConfig) -> ssl.SSLContext:
    """A client context as paho's ``tls_set`` builds it from ``cfg.tls``."""
    tls = cfg.tls
    assert tls is not None
    context = ssl.create_default_context(cafile=str(tls.ca_file) if tls.ca_file else None)
    if tls.cert_file is not None and tls.key_file is not None:
        context.load_cert_chain(str(tls.cert_file), str(tls.key_file))
    if tls.insecure:
        context.check_hostname = False
    return context


def _tls(cfg: MqttConfig, timeout: float) -> Iterator[CheckResult]:
    tls = cfg.tls
    assert tls is not None
    if tls.cert_file is not None:
        yield _certificate(tls.cert_file)
    try:
        context = tls_context(cfg)
    except (OSError, ssl.SSLError, ValueError) as exc:
        yield CheckResult(
            "broker",
            "broker tls",
            "fail",
            f"cannot load the TLS files: {exc}",
            "check mqtt.tls.ca_file, cert_file and key_file (paths, permissions, and that "
            "the key belongs to the certificate)",
        )
        return
    try:
        sock = net.connect(cfg.host, cfg.port, timeout)
    except net.NetError as exc:
        yield CheckResult("broker", "broker tls", "fail", str(exc), _NET_FIXES.get(exc.cause))
        return
    try:
        sock.settimeout(timeout)
        with context.wrap_socket(sock, server_hostname=cfg.host) as tls_sock:
            version = tls_sock.version()
            alert = _late_alert(tls_sock)
    except ssl.SSLCertVerificationError as exc:
        yield CheckResult(
            "broker",
            "broker tls",
            "fail",
            f"the broker's certificate is not trusted: {exc.verify_message}",
            _verify_fix(exc.verify_message or ""),
        )
        return
    except (ssl.SSLError, OSError) as exc:
        yield _refused_certificate(str(exc))
        return
    finally:
        sock.close()
    if alert is not None:
        yield _refused_certificate(alert)
        return
    who = "with this unit's certificate" if tls.cert_file else "without a client certificate"
    yield CheckResult("broker", "broker tls", "ok", f"{version} handshake {who}")


def _late_alert(tls_sock: ssl.SSLSocket) -> str | None:
    """TLS 1.3 reports a refused client certificate after the handshake: read briefly."""
    tls_sock.settimeout(0.5)
    try:
        tls_sock.recv(1)
    except TimeoutError:
        return None  # waiting for our CONNECT: the broker took the certificate
    except (ssl.SSLError, OSError) as exc:
        return str(exc)
    return None


def _refused_certificate(detail: str) -> CheckResult:
    lowered = detail.lower()
    if "certificate required" in lowered:
        what = "the broker wants a client certificate and none is configured"
        fix = "set mqtt.tls.cert_file and key_file (gateway pki issues unit certificates)"
    elif "unknown ca" in lowered or "bad certificate" in lowered or "revoked" in lowered:
        what = "the broker refused this unit's certificate"
        fix = "use a certificate signed by the broker's CA (and not revoked)"
    elif "reset by peer" in lowered or "eof" in lowered:
        what = "the broker closed the connection during the TLS handshake"
        fix = (
            "use the broker's TLS port (usually 8883: this may be a plain MQTT port), and "
            "check that the broker accepts this unit's certificate"
        )
    elif "wrong version" in lowered or "record layer" in lowered:
        what = "this port does not speak TLS"
        fix = "use the broker's TLS port (usually 8883), or remove [mqtt.tls]"
    else:
        what = "the TLS handshake failed"
        fix = "check the broker's TLS settings and mqtt.tls"
    return CheckResult("broker", "broker tls", "fail", f"{what} ({detail})", fix)


def _verify_fix(message: str) -> str:
    if "hostname" in message.lower() or "ip address mismatch" in message.lower():
        return "connect by a name the broker's certificate lists (or tls.insecure for tests)"
    if "expired" in message.lower():
        return "the broker's certificate has expired: renew it"
    return "set mqtt.tls.ca_file to the CA that signed the broker's certificate"


def _certificate(path: Any) -> CheckResult:
    from cryptography import x509

    try:
        cert = x509.load_pem_x509_certificate(Path(path).read_bytes())
    except (OSError, ValueError) as exc:
        return CheckResult(
            "broker",
            "unit certificate",
            "fail",
            f"cannot read {path}: {exc}",
            "check mqtt.tls.cert_file",
        )
    now = dt.datetime.now(dt.UTC)
    left = cert.not_valid_after_utc - now
    subject = cert.subject.rfc4514_string()
    if cert.not_valid_before_utc > now:
        return CheckResult(
            "broker",
            "unit certificate",
            "fail",
            f"{subject} is valid only from {cert.not_valid_before_utc:%Y-%m-%d %H:%M} UTC",
            "check this unit's clock (see the clock check), or issue a new certificate",
        )
    if left.total_seconds() <= 0:
        return CheckResult(
            "broker",
            "unit certificate",
            "fail",
            f"{subject} expired on {cert.not_valid_after_utc:%Y-%m-%d}",
            "renew it (gateway pki renew)",
        )
    status: Status = "warn" if left.days < CERT_WARN_DAYS else "ok"
    return CheckResult(
        "broker",
        "unit certificate",
        status,
        f"{subject}, expires {cert.not_valid_after_utc:%Y-%m-%d} ({left.days} days)",
        "renew it soon (gateway pki renew)" if status == "warn" else None,
    )


def connack(cfg: MqttConfig, client_id: str, timeout: float, where: str) -> CheckResult:
    """CONNECT with the configured protocol and credentials; the CONNACK decides."""
    first = "3.1.1" if cfg.protocol == "3.1.1" else "5"
    code, reason = _connect(cfg, client_id, v311=first == "3.1.1", timeout=timeout)
    note = ""
    if cfg.protocol == "auto" and (code is None or code == _V5_UNSUPPORTED):
        code, reason = _connect(cfg, client_id, v311=True, timeout=timeout)
        first, note = "3.1.1", " (the broker refused MQTT v5; gateway run falls back to 3.1.1)"
    if code == 0:
        auth = "as " + cfg.username if cfg.username else "without credentials"
        return CheckResult(
            "broker", "broker mqtt", "ok", f"CONNACK accepted, MQTT {first} {auth}{note}"
        )
    if code is None:
        return CheckResult(
            "broker",
            "broker mqtt",
            "fail",
            f"{where}: {reason}",
            "is this an MQTT broker's port? check mqtt.port and the broker's log",
        )
    fix = _CONNACK_FIXES.get(code, "see the broker's log for why it refused the connection")
    if code in (5, 135):  # Mosquitto answers this for a wrong password too
        fix = (
            "check mqtt.username and mqtt.password (a wrong password is 'Not authorized' on "
            "Mosquitto), then the broker's ACL for this client"
            if cfg.username
            else "the broker wants credentials: set mqtt.username and mqtt.password, or a "
            "client certificate in [mqtt.tls]"
        )
    return CheckResult(
        "broker", "broker mqtt", "fail", f"CONNACK refused: {reason} (code {code})", fix
    )


def _connect(
    cfg: MqttConfig, client_id: str, *, v311: bool, timeout: float
) -> tuple[int | None, str]:
    """One CONNECT; ``(CONNACK code, reason)`` or ``(None, what happened instead)``."""
    import paho.mqtt.client as paho

    from gateway.transport.paho_client import make_client

    client = make_client(cfg, client_id, v311, None)
    got: list[tuple[int, str]] = []

    def on_connect(_c: Any, _u: Any, _f: Any, reason: Any, _p: Any = None) -> None:
        value = int(reason.value) if hasattr(reason, "value") else int(reason)
        got.append((value, str(reason)))

    client.on_connect = on_connect
    try:
        client.connect(cfg.host, cfg.port, keepalive=cfg.keepalive_s)
    except (OSError, ssl.SSLError, ValueError) as exc:
        client._reset_sockets()
        return None, f"connect failed: {exc}"
    deadline = time.monotonic() + timeout
    outcome: tuple[int | None, str] = (None, f"no CONNACK in {timeout:.1f} s")
    try:
        while time.monotonic() < deadline:
            rc = client.loop(timeout=0.05)
            if got:
                outcome = got[0]
                break
            if rc != paho.MQTT_ERR_SUCCESS:
                outcome = (None, "the broker closed the connection before CONNACK")
                break
        if got and got[0][0] == 0:
            client.disconnect()
            client.loop(timeout=0.1)
    finally:
        client._reset_sockets()
    return outcome
