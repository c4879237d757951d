"""Mutual TLS against Mosquitto (``require_certificate true``); wrong certificates are refused."""

from __future__ import annotations

import re
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from gateway.app import App
from gateway.errors import TransportError
from gateway.localservers import Mosquitto, MqttTls
from tests.support.transport import Collector, sensor_draft, settings_for


def openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True)


def make_ca(d: Path, name: str) -> None:
    openssl(
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-days",
        "2",
        "-keyout",
        f"{name}.key",
        "-out",
        f"{name}.crt",
        "-subj",
        f"/CN={name}",
        cwd=d,
    )


def make_cert(d: Path, name: str, ca: str, ip_san: bool) -> None:
    openssl(
        "req",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        f"{name}.key",
        "-out",
        f"{name}.csr",
        "-subj",
        f"/CN={name}",
        cwd=d,
    )
    ext = d / f"{name}.ext"
    ext.write_text("subjectAltName=IP:127.0.0.1\n" if ip_san else "extendedKeyUsage=clientAuth\n")
    openssl(
        "x509",
        "-req",
        "-in",
        f"{name}.csr",
        "-CA",
        f"{ca}.crt",
        "-CAkey",
        f"{ca}.key",
        "-CAcreateserial",
        "-days",
        "2",
        "-out",
        f"{name}.crt",
        "-extfile",
        str(ext),
        cwd=d,
    )


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("pki")
    make_ca(d, "ca")
    make_ca(d, "rogue-ca")
    make_cert(d, "server", "ca", ip_san=True)
    make_cert(d, "client", "ca", ip_san=False)
    make_cert(d, "rogue", "rogue-ca", ip_san=False)
    return d


@pytest.fixture
def tls_broker(tmp_path: Path, pki: Path) -> Iterator[Mosquitto]:
    server = Mosquitto(
        tmp_path / "mosquitto",
        tls=MqttTls(pki / "ca.crt", pki / "server.crt", pki / "server.key"),
    )
    server.start()
    yield server
    server.stop()


def tls(pki: Path, client: str | None) -> dict[str, object]:
    out: dict[str, object] = {"ca_file": str(pki / "ca.crt")}
    if client:
        out |= {"cert_file": str(pki / f"{client}.crt"), "key_file": str(pki / f"{client}.key")}
    return out


def test_mutual_tls_delivers_events(tmp_path: Path, pki: Path, tls_broker: Mosquitto) -> None:
    collector = Collector(
        tls_broker.port,
        ["city/#"],
        tls={
            "ca_certs": str(pki / "ca.crt"),
            "certfile": str(pki / "client.crt"),
            "keyfile": str(pki / "client.key"),
        },
    )
    app = App(settings_for(tmp_path, tls_broker.port, mqtt={"tls": tls(pki, "client")}))
    try:
        app.start()
        app.link.wait_connected(10)
        stored = app.emit([sensor_draft(i) for i in range(10)])
        assert collector.wait_for(lambda: len(collector.payloads("/sensors/pm-1")) >= 10)
    finally:
        app.stop()
        collector.close()
    assert [e["seq"] for e in collector.payloads("/sensors/pm-1")] == stored.seqs


# The broker's TLS alert usually names the cause; when it closes first, the client sees EOF.
@pytest.mark.parametrize(
    ("client", "reason"),
    [("rogue", r"unknown ca|EOF occurred"), (None, r"certificate required|EOF occurred")],
)
def test_wrong_or_missing_client_certificate_is_refused(
    tmp_path: Path, pki: Path, tls_broker: Mosquitto, client: str | None, reason: str
) -> None:
    app = App(settings_for(tmp_path, tls_broker.port, mqtt={"tls": tls(pki, client)}))
    try:
        app.start()
        with pytest.raises(
            TransportError, match=f"not connected to MQTT broker 127.0.0.1:{tls_broker.port}"
        ):
            app.link.wait_connected(5)
        health = app.health_draft().data["mqtt"]
        assert health["state"] == "error"
        assert health["last_error"] and health["connects"] == 0
        assert re.search(reason, health["last_error"]), health["last_error"]
        assert "ssl" in health["last_error"].lower()
        stored = app.emit([sensor_draft(1)])  # events are still kept for later
        assert app.outbox.depth >= 2 and stored.seqs
        assert app.forwarder.alive
    finally:
        app.stop()


def test_server_not_signed_by_our_ca_is_refused(
    tmp_path: Path, pki: Path, tls_broker: Mosquitto
) -> None:
    settings = settings_for(
        tmp_path,
        tls_broker.port,
        mqtt={
            "tls": {
                "ca_file": str(pki / "rogue-ca.crt"),
                "cert_file": str(pki / "client.crt"),
                "key_file": str(pki / "client.key"),
            }
        },
    )
    app = App(settings)
    try:
        app.start()
        with pytest.raises(
            TransportError, match=r"TLS handshake .* failed.*certificate verify failed"
        ):
            app.link.wait_connected(5)
        assert app.link.health().state == "error"
    finally:
        app.stop()
