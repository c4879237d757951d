"""``gateway run`` as a process: signals, exit codes, systemd notifications, bad input."""

from __future__ import annotations

import os
import signal
import socket
import uuid
from pathlib import Path

import pytest

from gateway.localservers import Mosquitto
from gateway.runtime import sdnotify
from tests.support.cli import start_gateway
from tests.support.transport import Collector, write_config

BASE = "city/sejong-1/rsu-0001"


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_signal_flushes_and_exits_0_with_systemd_notifications(
    tmp_path: Path, mosquitto: Mosquitto, sig: signal.Signals
) -> None:
    name = f"@roadside-test-{uuid.uuid4().hex}"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind("\0" + name[1:])
    sock.settimeout(20)
    config = write_config(tmp_path, mosquitto.port, events={"synthetic_events_per_s": 100})
    collector = Collector(mosquitto.port, [f"{BASE}/#"])
    proc = start_gateway(config, {"NOTIFY_SOCKET": name, "WATCHDOG_USEC": "1000000"})
    try:
        got = [sock.recv(256).decode()]
        assert got == ["READY=1"]
        got.append(sock.recv(256).decode())
        assert got[-1] == "WATCHDOG=1"
        assert collector.wait_for(lambda: len(collector.payloads("/sensors/synthetic")) > 50)
        proc.send_signal(sig)
        _out, err = proc.communicate(timeout=30)
        while "STOPPING=1" not in got:
            got.append(sock.recv(256).decode())
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
        sock.close()
        collector.close()
    assert proc.returncode == 0, err.decode()[-2000:]
    assert "gateway stopped" in err.decode()
    assert collector.wait_for(
        lambda: [s["data"]["state"] for s in collector.payloads("/status")] == ["online", "offline"]
    )
    # Everything stored before the signal was flushed to the broker.
    seqs = {e["seq"] for e in collector.payloads() if e["type"] != "availability"}
    assert seqs == set(range(1, max(seqs) + 1))


def test_bad_config_exits_2_with_the_field(tmp_path: Path) -> None:
    config = tmp_path / "bad.toml"
    config.write_text('[mqtt]\nport = "not a port"\n[outbox]\nmax_inflight = 0\n')
    proc = start_gateway(config)
    _out, err = proc.communicate(timeout=30)
    assert proc.returncode == 2
    assert "error:" in err.decode()
    assert "mqtt.port" in err.decode() and "outbox.max_inflight" in err.decode()


def test_missing_config_exits_2(tmp_path: Path) -> None:
    proc = start_gateway(tmp_path / "nope.toml")
    _out, err = proc.communicate(timeout=30)
    assert proc.returncode == 2 and "config file not found" in err.decode()


def test_unusable_outbox_exits_1(tmp_path: Path, mosquitto: Mosquitto) -> None:
    (tmp_path / "data").write_text("a file where the data directory should be")
    config = write_config(tmp_path, mosquitto.port)
    proc = start_gateway(config)
    _out, err = proc.communicate(timeout=30)
    assert proc.returncode == 1
    assert "error: cannot open outbox" in err.decode()


def test_sdnotify_is_a_no_op_outside_systemd(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NOTIFY_SOCKET", raising=False)
    assert sdnotify.notify("READY=1") is False
    monkeypatch.setenv("NOTIFY_SOCKET", "relative/path")
    assert sdnotify.notify("READY=1") is False


def test_sdnotify_path_socket_and_watchdog_interval(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = Path("/tmp") / f"rg-{uuid.uuid4().hex[:12]}.sock"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(path))
    try:
        monkeypatch.setenv("NOTIFY_SOCKET", str(path))
        assert sdnotify.notify("STATUS=ok") is True
        assert sock.recv(64) == b"STATUS=ok"
    finally:
        sock.close()
        path.unlink()
    monkeypatch.setenv("WATCHDOG_USEC", "30000000")
    monkeypatch.delenv("WATCHDOG_PID", raising=False)
    assert sdnotify.watchdog_interval_s() == 15.0
    monkeypatch.setenv("WATCHDOG_PID", "1")  # meant for another process
    assert sdnotify.watchdog_interval_s() is None
    monkeypatch.setenv("WATCHDOG_PID", str(os.getpid()))
    monkeypatch.setenv("WATCHDOG_USEC", "garbage")
    assert sdnotify.watchdog_interval_s() is None
