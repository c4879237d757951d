"""The worker's connection: back within seconds of the broker, bounded memory, clear failures.

Real Mosquitto 2.0 and VictoriaMetrics throughout; the memory test runs the real
``gateway ingest`` command and measures its RSS while 60 messages of 5 MiB arrive
during a database outage.
"""

from __future__ import annotations

import json
import logging
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import psutil
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from gateway.localservers import Mosquitto, VictoriaMetrics, free_port
from gateway.transport.paho_client import connect_failure
from tests.integration.test_ingest_workers import StatsWatcher, start_ingest, write_config
from tests.support.ingest import (
    Publisher,
    assert_exactly_once,
    line_event,
    seq_samples,
    settings_for,
    start_worker,
    topic_of,
)
from tests.support.polling import wait_until


def persistent_broker(tmp_path: Path) -> Mosquitto:
    """A Mosquitto that keeps sessions across its restart (saved on SIGTERM)."""
    return Mosquitto(tmp_path / "broker", persistence=True)


class ReasonPublisher:
    """A QoS 1 publisher that records each PUBACK's reason code."""

    def __init__(self, port: int) -> None:
        self.codes: dict[int, int] = {}
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
        self.client.on_publish = self._on_publish
        self.client.connect("127.0.0.1", port)
        self.client.loop_start()

    def _on_publish(self, _c: Any, _u: Any, mid: int, reason: Any, _p: Any) -> None:
        self.codes[mid] = int(reason.value)

    def publish(self, event: dict[str, Any]) -> int:
        """Publish ``event`` and return the broker's PUBACK reason code."""
        info = self.client.publish(topic_of(event), json.dumps(event), qos=1)
        deadline = time.monotonic() + 10
        while info.mid not in self.codes and time.monotonic() < deadline:
            time.sleep(0.01)
        return self.codes[info.mid]

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


@pytest.mark.slow
def test_worker_is_subscribed_again_within_seconds_of_the_broker_return(
    victoria: VictoriaMetrics, tmp_path: Path
) -> None:
    broker = persistent_broker(tmp_path)
    broker.start()
    # The gateways' reconnect settings (up to 60 s): the worker caps its own back-off.
    settings = settings_for(broker, victoria, tmp_path, mqtt={"reconnect_max_s": 60})
    worker = start_worker(settings)
    try:
        broker.stop()
        time.sleep(18.0)  # long enough for a doubling back-off to reach 16 s
        broker.start()
        back = time.monotonic()
        assert worker.subscribed.wait(30)
        took = time.monotonic() - back
        publisher = ReasonPublisher(broker.port)
        try:
            assert publisher.publish(line_event(1)) == 0  # a subscriber exists again
        finally:
            publisher.close()
        samples = seq_samples(victoria, expected=1)
    finally:
        worker.stop()
        broker.stop()
    assert took < 5.0, f"subscribed again {took:.1f} s after the broker came back"
    assert_exactly_once(samples, [1])


def test_restarted_mosquitto_refuses_publishes_until_a_worker_subscribes_again(
    victoria: VictoriaMetrics, tmp_path: Path
) -> None:
    # Mosquitto 2.0 keeps the worker's persistent session across its restart, but not the
    # session's shared subscription: publishes match nobody (PUBACK reason 16) until a
    # worker subscribes again. The gateway's outbox keeps what was refused with 16.
    broker = persistent_broker(tmp_path)
    broker.start()
    settings = settings_for(broker, victoria, tmp_path)
    start_worker(settings).stop()  # the session and its $share subscription exist
    broker.stop()
    broker.start()
    publisher = ReasonPublisher(broker.port)
    try:
        assert publisher.publish(line_event(1)) == 16  # "no matching subscribers"
        worker = start_worker(settings)  # subscribes on every connect
        try:
            assert publisher.publish(line_event(2)) == 0
            samples = seq_samples(victoria, expected=1)
        finally:
            worker.stop()
    finally:
        publisher.close()
        broker.stop()
    assert_exactly_once(samples, [2])


def test_an_offline_members_share_waits_in_its_session_until_it_returns(
    mosquitto: Mosquitto, victoria: VictoriaMetrics, tmp_path: Path
) -> None:
    # Mosquitto 2.0 deals shared messages round-robin to every member with a session,
    # online or not: a stopped worker's share is queued for it, not given to the others.
    settings = settings_for(mosquitto, victoria, tmp_path)
    first = start_worker(settings, "w1")
    start_worker(settings, "w2").stop()
    publisher = Publisher(mosquitto.port)
    seqs = range(1, 201)
    try:
        for seq in seqs:
            publisher.event(line_event(seq))
        publisher.wait_all()
        deadline = time.monotonic() + 5
        while first.stats.events_written < len(seqs) and time.monotonic() < deadline:
            time.sleep(0.1)
        alone = first.stats.events_written
        second = start_worker(settings, "w2")  # its queued share arrives now
        samples = seq_samples(victoria, expected=len(seqs))
        second.stop()
    finally:
        publisher.close()
        first.stop()
    assert alone < len(seqs), "the stopped worker's share went to the other worker"
    assert second.stats.events_written == len(seqs) - alone
    assert_exactly_once(samples, seqs)


def _rss_mb(pid: int) -> float:
    return float(psutil.Process(pid).memory_info().rss) / 2**20


@pytest.mark.slow
def test_worker_memory_is_bounded_by_bytes_during_a_database_outage(
    mosquitto: Mosquitto, victoria: VictoriaMetrics, tmp_path: Path
) -> None:
    config = write_config(tmp_path / "ingest.toml", mosquitto, victoria)
    bound = "max_queue_bytes = 16777216"  # 16 MiB
    config.write_text(config.read_text().replace("[ingest]\n", f"[ingest]\n{bound}\n", 1))
    watcher = StatsWatcher(mosquitto.port)
    publisher = Publisher(mosquitto.port)
    proc = start_ingest(config, "m1", tmp_path / "ingest.log")
    try:
        watcher.wait("m1", lambda s: True)
        for seq in range(1, 51):
            publisher.event(line_event(seq))
        watcher.wait("m1", lambda s: s["events_written"] == 50)
        base = _rss_mb(proc.pid)
        victoria.stop()  # the worker holds its batch and retries
        for seq in range(51, 61):
            publisher.event(line_event(seq))
        watcher.wait("m1", lambda s: s["retries"] > 0)
        big = b"x" * (5 * 2**20)
        topic = topic_of(line_event(1))
        for _ in range(60):
            publisher.publish(topic, big)
        peak = base
        deadline = time.monotonic() + 8
        while time.monotonic() < deadline:
            peak = max(peak, _rss_mb(proc.pid))
            time.sleep(0.05)
        during = watcher.latest["m1"]
        victoria.start()
        publisher.wait_all(timeout=60)
        stats = watcher.wait(
            "m1", lambda s: s["dead_letter"]["oversized"] == 60 and s["pending_acks"] == 0, 60
        )
        samples = seq_samples(victoria, expected=60)
    finally:
        if proc.poll() is None:
            proc.terminate()
            proc.wait(20)
        publisher.close()
        watcher.close()
    print(f"RSS {base:.0f} -> peak {peak:.0f} MiB")
    # The 16 MiB queue, the 5 MiB message read past the bound and paho's copies of the
    # one being read (3 x 5 MiB), and 25 MiB for the allocator; unbounded, the 60
    # messages took 300 MiB.
    assert peak - base < 16 + 15 + 25, f"RSS grew {peak - base:.0f} MiB ({base:.0f} -> {peak:.0f})"
    assert during["mqtt"]["paused_reading_s"] > 0
    assert stats["events_written"] == 60
    assert_exactly_once(samples, range(1, 61))


def _password_broker(tmp_path: Path) -> Mosquitto:
    passwords = tmp_path / "passwords"
    subprocess.run(
        ["mosquitto_passwd", "-b", "-c", str(passwords), "ingest", "right"],
        check=True,
        capture_output=True,
    )
    return Mosquitto(
        tmp_path / "broker",
        extra_config=f"allow_anonymous false\npassword_file {passwords}\n",
    )


@pytest.mark.parametrize(
    ("case", "cause"),
    [
        ("nothing-listening", "connection refused by 127.0.0.1:"),
        ("bad-password", "the broker refused the connection: Not authorized"),
    ],
)
def test_connection_failures_are_logged_with_their_cause_once_not_per_attempt(
    victoria: VictoriaMetrics,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
    case: str,
    cause: str,
) -> None:
    broker = _password_broker(tmp_path) if case != "nothing-listening" else None
    if broker is not None:
        broker.start()
    port = broker.port if broker is not None else free_port()
    try:
        mqtt_section = {"port": port, "username": "ingest", "password": "wrong"}
        _assert_logged_once(victoria, tmp_path, caplog, mqtt_section, cause)
    finally:
        if broker is not None:
            broker.stop()


@pytest.mark.parametrize(
    ("case", "cause"),
    [
        ("other-fleets-ca", "TLS: the broker 127.0.0.1:"),
        ("no-client-certificate", "closed the connection before CONNACK"),
    ],
)
def test_tls_failures_are_logged_with_their_cause(
    victoria: VictoriaMetrics,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
    case: str,
    cause: str,
) -> None:
    from tests.support.security import Fleet, SecureBroker

    fleet = Fleet(tmp_path / "fleet")
    ingest = fleet.ingest("w1")
    broker = SecureBroker(tmp_path / "broker", fleet)
    broker.start()
    tls = fleet.tls(ingest)
    if case == "other-fleets-ca":
        tls["ca_file"] = str(Fleet(tmp_path / "other").ca.cert_path)
    else:
        del tls["cert_file"], tls["key_file"]
    try:
        _assert_logged_once(victoria, tmp_path, caplog, {"port": broker.port, "tls": tls}, cause)
    finally:
        broker.stop()


def _assert_logged_once(
    victoria: VictoriaMetrics,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
    mqtt_section: dict[str, Any],
    cause: str,
) -> None:
    from gateway.ingest.worker import IngestWorker

    unused = Mosquitto(tmp_path / "unused", port=mqtt_section["port"])  # only its port
    settings = settings_for(unused, victoria, tmp_path, mqtt={**mqtt_section, "reconnect_max_s": 1})
    caplog.set_level(logging.INFO, logger="gateway.ingest.connection")
    worker = IngestWorker(settings, "w1")
    worker.start()
    try:
        deadline = time.monotonic() + 20
        while worker._conn is not None and worker._conn._failures < 4:
            assert time.monotonic() < deadline, "fewer than 4 attempts in 20 s"
            time.sleep(0.05)
        last_error = worker._conn.last_error if worker._conn else None
    finally:
        worker.stop()
    records = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert any(cause in r for r in records), records
    assert len(records) == 1, records  # 4 attempts, one line (then one a minute)
    assert last_error is not None and cause in last_error


@pytest.mark.parametrize(
    ("exc", "text"),
    [
        (OSError(-2, "Name or service not known"), "cannot connect to h:1: Name or service"),
        (ConnectionRefusedError(111, "refused"), "connection refused by h:1"),
        (TimeoutError("timed out"), "no answer from h:1"),
        (FileNotFoundError(2, "No such file", "/etc/ca.pem"), "TLS file not found: /etc/ca.pem"),
    ],
)
def test_connect_failure_text(exc: BaseException, text: str) -> None:
    assert text in connect_failure(exc, "h", 1)


def test_dns_failure_text() -> None:
    import socket

    assert "cannot resolve the broker host 'h'" in connect_failure(
        socket.gaierror(-2, "Name or service not known"), "h", 1
    )


def test_a_full_session_queue_drops_in_silence(tmp_path: Path, victoria: VictoriaMetrics) -> None:
    # Why docs/reliability.md asks for a large max_queued_messages: over it, Mosquitto
    # drops what it would queue for an offline worker and still answers 0.
    # (appended after the test broker's 100000: the later line wins)
    broker = Mosquitto(tmp_path / "broker", extra_config="max_queued_messages 5\n")
    broker.start()
    settings = settings_for(broker, victoria, tmp_path)
    start_worker(settings).stop()  # a session with the shared subscription, offline
    publisher = ReasonPublisher(broker.port)
    try:
        codes = [publisher.publish(line_event(seq)) for seq in range(1, 11)]
        worker = start_worker(settings)
        samples = seq_samples(victoria, expected=5)
        time.sleep(1.0)
        worker.stop()
    finally:
        publisher.close()
        broker.stop()
    assert codes == [0] * 10
    assert len({seq for _, seq in samples}) == 5  # the other 5 are gone, unseen


def test_a_retiring_worker_drains_its_queued_share_and_removes_its_session(
    mosquitto: Mosquitto, victoria: VictoriaMetrics, tmp_path: Path
) -> None:
    # A stopped worker's share queues in its session (see above); `--retire` writes it
    # and removes the session, after which the others get every message.
    settings = settings_for(mosquitto, victoria, tmp_path)
    config = write_config(tmp_path / "ingest.toml", mosquitto, victoria)
    first = start_worker(settings, "w1")
    start_worker(settings, "w2").stop()
    publisher = Publisher(mosquitto.port)
    try:
        for seq in range(1, 201):
            publisher.event(line_event(seq))
        publisher.wait_all()
        command = ["ingest", "-c", str(config), "--worker", "w2", "--retire"]
        retired = subprocess.run(
            [sys.executable, "-m", "gateway", *command],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        before = first.stats.events_written
        for seq in range(201, 301):
            publisher.event(line_event(seq))
        publisher.wait_all()
        samples = seq_samples(victoria, expected=300)
        deadline = time.monotonic() + 10
        while first.stats.events_written < before + 100 and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        publisher.close()
        first.stop()
    assert retired.returncode == 0, retired.stderr[-2000:]
    assert "retired" in retired.stdout
    assert 0 < before < 200  # the rest was w2's queued share, written by the retiring run
    assert first.stats.events_written == before + 100  # no session left to take a share
    assert_exactly_once(samples, range(1, 301))


def test_a_publish_racing_the_end_of_its_session_is_not_published_and_raises_nothing(
    tmp_path: Path,
) -> None:
    """The pipeline publishes (a dead-letter notice) on the client it took just as the
    network thread ends the session and closes its wake-up socket: paho then asks that
    closed socket for a write. That raised EBADF through the pipeline and ended the
    worker (seen in a fault campaign: the broker stopped while poison arrived)."""
    from gateway.config.transport import MqttConfig
    from gateway.ingest.connection import IngestConnection

    broker = Mosquitto(tmp_path / "broker")
    broker.start()
    cfg = MqttConfig.model_validate({"host": "127.0.0.1", "port": broker.port})
    conn = IngestConnection(
        cfg,
        "race",
        filters=["city/#"],
        session_expiry_s=0,
        receive_maximum=10,
        reconnect_max_s=1.0,
        on_message=lambda *_a: None,
        on_connected=lambda: None,
        can_read=lambda: True,
    )
    conn.start()
    try:
        assert conn.subscribed.wait(10)
        client = conn._client
        assert client is not None
        ask_for_write = client.on_socket_register_write
        broker.stop()
        wait_until(lambda: conn._client is None, 10, "the session to end")
        ask_for_write(client, None, None)  # what paho does for a packet queued now
        assert not conn.publish("city/x/dead-letter", b"{}").is_published()
    finally:
        conn.stop()
        broker.stop()
