"""Publishing from several threads over TLS while the link reads: the TLS stream stays intact.

paho writes a packet on the calling thread when no paho-managed loop thread runs;
the link runs its own loop, so a publish from the forwarder or the command thread
wrote to the TLS socket while the network thread read from it. OpenSSL objects are
not safe for that: the broker saw "decryption failed or bad record mac" and dropped
the unit. All socket I/O must happen on the link's network thread.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from gateway.config.transport import MqttConfig
from gateway.transport.mqtt import MqttLink
from tests.support.security import Fleet, SecureBroker, TlsClient


@pytest.mark.slow
def test_concurrent_publishes_over_tls_keep_the_connection(tmp_path: Path) -> None:
    fleet = Fleet(tmp_path / "fleet")
    unit = fleet.unit("east", "rsu-a")
    operator = fleet.operator("alice")
    broker = SecureBroker(tmp_path / "broker", fleet)
    broker.start()
    cfg = MqttConfig.model_validate(
        {"host": "127.0.0.1", "port": broker.port, "tls": fleet.tls(unit), "reconnect_min_s": 0.2}
    )
    received = 0
    link = MqttLink(
        cfg,
        "east/rsu-a",
        subscriptions=("city/east/rsu-a/cmd/+",),
        on_message=lambda _m: None,
    )
    sender = TlsClient(broker, operator)
    stop = threading.Event()
    try:
        link.start()
        link.wait_connected(10)
        assert sender.connect() == "connected"

        def flood_in() -> None:  # keeps the network thread reading
            while not stop.is_set():
                sender.client.publish("city/east/rsu-a/cmd/ping", b"x" * 200, qos=1)
                time.sleep(0.001)

        def flood_out() -> None:
            nonlocal received
            while not stop.is_set():
                if link.publish("city/east/rsu-a/health", b"y" * 300, qos=1) is not None:
                    received += 1

        threads = [threading.Thread(target=flood_in)] + [
            threading.Thread(target=flood_out) for _ in range(3)
        ]
        for t in threads:
            t.start()
        time.sleep(2.0)
        stop.set()
        for t in threads:
            t.join(10)
        time.sleep(0.5)
        log = broker.log_text()
    finally:
        stop.set()
        sender.close()
        link.stop()
        broker.stop()
    assert received > 100  # the flood really ran
    assert "bad record mac" not in log
    # "Client <unknown> disconnected: Protocol error" is the broker's start-up probe (a
    # TCP connection closed before any TLS): only a named client's error counts here.
    errors = [line for line in log.splitlines() if "Protocol error" in line]
    assert all("Client <unknown> disconnected" in line for line in errors), errors
    assert link.connects == 1, link.last_error
