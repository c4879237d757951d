"""The console's server on its own: TLS, listen failures, and a gateway that runs on without it."""

from __future__ import annotations

import http.client
import json
import logging
import socket
import ssl
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from gateway.config.console import ConsoleConfig
from gateway.config.settings import GatewaySettings, validate_settings
from gateway.console.passwords import hash_password
from gateway.console.server import ConsoleError, ConsoleServer
from gateway.console.unit import ConsoleUnit
from gateway.localservers import free_port
from gateway.runtime.live_settings import ApplyResult, SettingsChange
from tests.support.security import Fleet

PASSWORD = "a long tls password"
USERS = {"crew": {"password_hash": hash_password(PASSWORD)}}


def unit(settings: GatewaySettings) -> ConsoleUnit:
    def refuse(change: SettingsChange) -> ApplyResult:
        raise AssertionError("nothing is saved here")

    return ConsoleUnit(
        name="test/tls",
        settings=lambda: settings,
        cameras={},
        health=lambda: {},
        readings=dict,
        apply_settings=refuse,
        audit=lambda record: None,
        config_path=None,
    )


@pytest.fixture(scope="module")
def fleet(tmp_path_factory: pytest.TempPathFactory) -> Fleet:
    return Fleet(tmp_path_factory.mktemp("console-pki"))


def console_settings(tmp_path: Path, **console: Any) -> GatewaySettings:
    return validate_settings(
        {
            "gateway": {"data_dir": str(tmp_path)},
            "console": {"enabled": True, "bind": "127.0.0.1", "port": 0, "users": USERS, **console},
        }
    )


@pytest.fixture
def tls_server(tmp_path: Path, fleet: Fleet) -> Iterator[ConsoleServer]:
    stem = fleet.broker()  # a server certificate for 127.0.0.1 from the test CA
    settings = console_settings(tmp_path, tls_cert=f"{stem}.crt", tls_key=f"{stem}.key")
    server = ConsoleServer(settings.console, unit(settings))
    server.start()
    yield server
    server.stop()


def test_tls_console_sets_a_secure_cookie(tls_server: ConsoleServer, fleet: Fleet) -> None:
    assert tls_server.url.startswith("https://127.0.0.1:")
    context = ssl.create_default_context(cafile=str(fleet.ca.cert_path))
    conn = http.client.HTTPSConnection("127.0.0.1", tls_server.port, timeout=30, context=context)
    body = json.dumps({"user": "crew", "password": PASSWORD})
    conn.request("POST", "/api/login", body, {"Content-Type": "application/json"})
    response = conn.getresponse()
    response.read()
    conn.close()
    assert response.status == 200
    cookie = [p.strip().lower() for p in (response.getheader("set-cookie") or "").split(";")]
    assert {"secure", "httponly", "samesite=strict"} <= set(cookie)


def test_plain_http_to_the_tls_port_gets_no_page(tls_server: ConsoleServer) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", tls_server.port, timeout=10)

    def get() -> bytes:
        conn.request("GET", "/")
        return conn.getresponse().read()

    with pytest.raises((ConnectionError, http.client.HTTPException, OSError)):
        get()
    conn.close()


def test_unreadable_tls_files_are_a_clear_error(tmp_path: Path) -> None:
    (tmp_path / "cert.pem").write_text("not a certificate")
    (tmp_path / "key.pem").write_text("not a key")
    settings = console_settings(
        tmp_path, tls_cert=str(tmp_path / "cert.pem"), tls_key=str(tmp_path / "key.pem")
    )
    server = ConsoleServer(settings.console, unit(settings))
    with pytest.raises(ConsoleError, match="cannot use the TLS certificate or key"):
        server.start()
    server.stop()


def test_a_busy_port_is_a_clear_error(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        settings = console_settings(tmp_path, port=port)
        server = ConsoleServer(settings.console, unit(settings))
        with pytest.raises(ConsoleError, match=f"cannot listen on 127.0.0.1:{port}"):
            server.start()
        server.stop()


def test_the_gateway_runs_on_without_a_console_that_cannot_listen(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    from gateway.app import App

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        settings = validate_settings(
            {
                "gateway": {"data_dir": str(tmp_path)},
                "mqtt": {"port": free_port()},
                "console": {"enabled": True, "bind": "127.0.0.1", "port": port, "users": USERS},
            }
        )
        app = App(settings)
        with caplog.at_level(logging.ERROR):
            app.start()
        try:
            assert app.console is None
            assert any("runs without its console" in r.getMessage() for r in caplog.records)
            assert app.health().mqtt is not None  # the rest runs
        finally:
            app.stop()


def test_console_config_defaults_listen_everywhere_on_8080() -> None:
    config = ConsoleConfig()
    assert (config.bind, config.port, config.enabled) == ("0.0.0.0", 8080, False)


def _login(port: int) -> tuple[int, str]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    body = json.dumps({"user": "crew", "password": PASSWORD})
    conn.request("POST", "/api/login", body, {"Content-Type": "application/json"})
    response = conn.getresponse()
    response.read()
    conn.close()
    cookie = (response.getheader("set-cookie") or "").split(";", 1)[0]
    return response.status, cookie


def _session_status(port: int, cookie: str) -> int:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    conn.request("GET", "/api/session", headers={"Cookie": cookie})
    response = conn.getresponse()
    response.read()
    conn.close()
    return response.status


def test_sessions_expire_and_are_bounded_on_a_real_server(tmp_path: Path) -> None:
    import time

    settings = console_settings(tmp_path, session_idle_s=1.0, max_sessions=2)
    server = ConsoleServer(settings.console, unit(settings))
    server.start()
    try:
        assert server.port is not None
        cookies = [_login(server.port)[1] for _ in range(3)]
        assert [_session_status(server.port, c) for c in cookies] == [401, 200, 200]  # oldest out
        time.sleep(1.5)
        assert _session_status(server.port, cookies[2]) == 401  # idle too long
    finally:
        server.stop()
