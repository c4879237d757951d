"""A real ``gateway run`` with its console on a loopback port, and a small HTTP client for it."""

from __future__ import annotations

import http.client
import json
import signal
import subprocess
import sys
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gateway.config.patch import to_toml
from gateway.config.settings import validate_settings
from gateway.console.passwords import hash_password
from gateway.demo.scenario import detector_config
from gateway.localservers import free_port, wait_port
from tests.support.polling import wait_value

ADMIN, ADMIN_PASSWORD = "crew", "crew-password-1"
VIEWER, VIEWER_PASSWORD = "viewer", "viewer-password-1"
# Vertical line across the simulated road: the traffic (left/right) crosses it.
ROAD_LINE = [[0.5, 0.45], [0.5, 0.97]]


def write_config(tmp_path: Path, **console: Any) -> Path:
    """A gateway on the simulated camera (demo detector) with the console on a free port."""
    detector = {k: v for k, v in detector_config().model_dump(mode="json").items() if v is not None}
    data: dict[str, Any] = {
        "gateway": {"id": "rsu-console", "site": "test", "data_dir": str(tmp_path / "data")},
        "detector": detector,
        "cameras": [
            {
                "id": "cam",
                "source": {"type": "simulator", "seed": 7, "density": 2.0},
                "stall_timeout_s": 30,
                "lines": [{"id": "upper", "points": [[0.05, 0.3], [0.95, 0.3]]}],
            }
        ],
        # Nothing listens here: the broker is away for the whole run (events wait in the outbox).
        "mqtt": {"host": "127.0.0.1", "port": free_port(), "reconnect_max_s": 2},
        "events": {"health_interval_s": 3600},
        "console": {
            "enabled": True,
            "bind": "127.0.0.1",
            "port": free_port(),
            "users": {
                ADMIN: {"password_hash": hash_password(ADMIN_PASSWORD)},
                VIEWER: {"role": "read-only", "password_hash": hash_password(VIEWER_PASSWORD)},
            },
            **console,
        },
    }
    validate_settings(data)
    path = tmp_path / "gateway.toml"
    path.write_text(to_toml(data))
    return path


@dataclass
class Gateway:
    """``gateway run -c path`` as a child process."""

    path: Path
    proc: subprocess.Popen[bytes] | None = None
    stderr: Path | None = None

    @property
    def port(self) -> int:
        return int(tomllib.loads(self.path.read_text())["console"]["port"])

    def start(self) -> Gateway:
        self.stderr = self.path.with_suffix(".log")
        with self.stderr.open("wb") as err:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "gateway", "run", "--config", str(self.path)],
                stdout=subprocess.DEVNULL,
                stderr=err,
            )
        try:
            wait_port(self.port, timeout=60)
        except TimeoutError:
            self.stop()
            raise AssertionError(f"the console did not come up:\n{self.log()}") from None
        return self

    def log(self) -> str:
        return self.stderr.read_text(errors="replace") if self.stderr else ""

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        self.proc = None


@dataclass
class Reply:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class Client:
    """An HTTP client with its own cookies (one browser, as the server sees it)."""

    port: int
    cookies: dict[str, str] = field(default_factory=dict)
    csrf: str | None = None
    source: str | None = None  # the client's own loopback address (127.0.0.2, ...)

    def request(
        self,
        method: str,
        path: str,
        *,
        json_body: Any = None,
        data: bytes | None = None,
        headers: dict[str, str] | None = None,
        csrf: bool = True,
    ) -> Reply:
        sent = dict(headers or {})
        body = data
        if json_body is not None:
            body = json.dumps(json_body).encode()
            sent.setdefault("Content-Type", "application/json")
        if self.cookies:
            sent["Cookie"] = "; ".join(f"{k}={v}" for k, v in self.cookies.items())
        if csrf and self.csrf and method != "GET":
            sent["X-CSRF-Token"] = self.csrf
        source = (self.source, 0) if self.source else None
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30, source_address=source)
        try:
            conn.request(method, path, body=body, headers=sent)
            response = conn.getresponse()
            payload = response.read()
            got = {k.lower(): v for k, v in response.getheaders()}
            for key, value in response.getheaders():
                if key.lower() == "set-cookie":
                    name, _, rest = value.partition("=")
                    cookie_value = rest.split(";", 1)[0]
                    if cookie_value in ('""', ""):
                        self.cookies.pop(name, None)
                    else:
                        self.cookies[name] = cookie_value
            return Reply(response.status, got, payload)
        finally:
            conn.close()

    def login(self, user: str = ADMIN, password: str = ADMIN_PASSWORD) -> Reply:
        reply = self.request("POST", "/api/login", json_body={"user": user, "password": password})
        if reply.status == 200:
            self.csrf = reply.json()["csrf"]
        return reply


def wait_for(condition: Any, timeout: float = 60.0, interval: float = 0.2) -> Any:
    """Poll ``condition()`` until it returns something true; that value (the one poll loop)."""
    return wait_value(condition, timeout, interval)
