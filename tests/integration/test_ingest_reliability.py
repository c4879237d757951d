"""Nothing is lost: the database or the broker goes away mid-run, bad messages interleave.

Each test publishes a paced stream of events while something fails, then reads the
``line_crossing_seq`` series back and asserts every sequence number is stored exactly
once after de-duplication (a redelivered duplicate has the same time and value).
"""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from gateway.localservers import Mosquitto, VictoriaMetrics
from tests.support.ingest import (
    Publisher,
    assert_exactly_once,
    line_event,
    seq_samples,
    settings_for,
    start_worker,
    topic_of,
)

OUTAGE_S = 15.0


class PacedPublisher(threading.Thread):
    """Publishes line crossings ``seqs`` at ``rate`` per second on its own thread."""

    def __init__(self, publisher: Publisher, seqs: range, rate: float) -> None:
        super().__init__(daemon=True)
        self.publisher = publisher
        self.seqs = seqs
        self.rate = rate

    def run(self) -> None:
        start = time.monotonic()
        for i, seq in enumerate(self.seqs):
            delay = start + i / self.rate - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            self.publisher.event(line_event(seq))


@pytest.mark.parametrize("spool", [True, False], ids=["spool", "hold-acks"])
def test_database_away_for_15_s_loses_nothing(
    mosquitto: Mosquitto, victoria: VictoriaMetrics, tmp_path: Path, spool: bool
) -> None:
    extra: dict[str, Any] = {"spool_path": str(tmp_path / "spool.sqlite3")} if spool else {}
    worker = start_worker(settings_for(mosquitto, victoria, tmp_path, **extra))
    publisher = Publisher(mosquitto.port)
    seqs = range(1, 2401)
    paced = PacedPublisher(publisher, seqs, rate=120.0)  # about 20 s
    try:
        paced.start()
        time.sleep(2.0)
        victoria.stop()
        time.sleep(OUTAGE_S)
        during = worker.stats.snapshot()
        victoria.start()
        paced.join(30)
        publisher.wait_all()
        samples = seq_samples(victoria, expected=len(seqs), timeout=30)
    finally:
        publisher.close()
        worker.stop()
    assert during["retries"] > 0
    if spool:
        assert during["spooled"] > 0  # acknowledged after the spool commit
    else:
        assert during["pending_acks"] > 0  # held: the broker keeps the messages
    assert_exactly_once(samples, seqs)
    stats = worker.stats.snapshot()
    assert stats["spool_depth"] == 0
    assert stats["dead_letter"]["db_rejected"] == 0


def test_broker_away_for_15_s_loses_nothing(victoria: VictoriaMetrics, tmp_path: Path) -> None:
    # A broker that keeps sessions across its restart (saved on SIGTERM).
    broker = Mosquitto(tmp_path / "broker", persistence=True)
    broker.start()
    worker = start_worker(settings_for(broker, victoria, tmp_path))
    # Mosquitto 2.0 restores sessions and their queued messages from its persistence
    # file but not shared subscriptions: until the worker has subscribed again, the
    # broker drops what publishers send (docs/ingest.md). The gate lets the publisher
    # reconnect only once the worker is subscribed again, as gateways with a longer
    # reconnect back-off than the ingest workers do.
    gate = threading.Event()
    gate.set()
    publisher = Publisher(broker.port, gate=gate)
    seqs = range(1, 2401)
    paced = PacedPublisher(publisher, seqs, rate=120.0)
    try:
        paced.start()
        time.sleep(2.0)
        gate.clear()
        broker.stop()
        time.sleep(OUTAGE_S)
        broker.start()
        assert worker.subscribed.wait(20), "the worker did not subscribe again"
        gate.set()
        paced.join(30)
        publisher.wait_all(timeout=40)
        samples = seq_samples(victoria, expected=len(seqs), timeout=30)
    finally:
        publisher.close()
        worker.stop()
        broker.stop()
    assert_exactly_once(samples, seqs)
    assert worker.stats.snapshot()["pending_acks"] == 0


class DeadLetterListener:
    """Collects the dead-letter topic."""

    def __init__(self, port: int, topic: str) -> None:
        self.messages: list[dict[str, Any]] = []
        self.ready = threading.Event()
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
        self.client.on_subscribe = lambda *a: self.ready.set()
        self.client.on_message = lambda c, u, m: self.messages.append(json.loads(m.payload))
        self.client.on_connect = lambda c, *a: c.subscribe(topic, qos=1)
        self.client.connect("127.0.0.1", port)
        self.client.loop_start()
        assert self.ready.wait(10)

    def wait_for(self, n: int, timeout: float = 15.0) -> list[dict[str, Any]]:
        deadline = time.monotonic() + timeout
        while len(self.messages) < n and time.monotonic() < deadline:
            time.sleep(0.05)
        return list(self.messages)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def test_bad_messages_go_to_the_dead_letter_topic_and_the_rest_is_written(
    mosquitto: Mosquitto, victoria: VictoriaMetrics, tmp_path: Path
) -> None:
    settings = settings_for(mosquitto, victoria, tmp_path, max_payload_bytes=1024)
    listener = DeadLetterListener(mosquitto.port, settings.ingest.dead_letter_topic)
    worker = start_worker(settings)
    publisher = Publisher(mosquitto.port)
    topic = topic_of(line_event(1))
    bad: list[tuple[bytes, str]] = [
        (b'{"schema": 1, "id": ', "malformed_json"),
        (b"\x89PNG\r\n\x1a\n\xff\xfe", "malformed_json"),
        (json.dumps(line_event(10_000, label="x" * 5000)).encode(), "oversized"),
        (json.dumps({**line_event(10_001), "schema": 2}).encode(), "unknown_schema"),
        (json.dumps({**line_event(10_002), "type": "teleport"}).encode(), "invalid_event"),
        (json.dumps(line_event(10_003, direction=None)).encode(), "invalid_event"),
    ]
    seqs = range(1, 301)
    try:
        for seq in seqs:
            publisher.event(line_event(seq))
            if seq % 50 == 0:
                publisher.publish(topic, bad[seq // 50 - 1][0])
        publisher.wait_all()
        letters = listener.wait_for(len(bad))
        samples = seq_samples(victoria, expected=len(seqs))
    finally:
        publisher.close()
        listener.close()
        worker.stop()
    assert_exactly_once(samples, seqs)
    assert [m["reason"] for m in letters] == [reason for _, reason in bad]
    assert all(m["topic"] == topic for m in letters)
    assert letters[0]["payload"] == '{"schema": 1, "id": '
    assert letters[1]["encoding"] == "base64"
    assert letters[2]["truncated"] is True
    assert "teleport" in letters[4]["detail"]
    stats = worker.stats.snapshot()
    assert stats["dead_letter"] == {
        "oversized": 1,
        "malformed_json": 2,
        "unknown_schema": 1,
        "invalid_event": 2,
        "out_of_range": 0,
        "db_rejected": 0,
        "ingest_error": 0,
        "identity_mismatch": 0,
    }
    assert stats["received"] == len(seqs) + len(bad)
    assert stats["events_written"] == len(seqs)
    assert stats["pending_acks"] == 0  # the bad ones were acknowledged too


def test_a_database_refusing_every_write_holds_the_messages_instead_of_dead_lettering(
    mosquitto: Mosquitto, victoria: VictoriaMetrics, tmp_path: Path
) -> None:
    # A path the server does not serve: VictoriaMetrics answers 400 to every write,
    # even a known-good point, so this is a configuration fault, not 20 bad messages.
    settings = settings_for(
        mosquitto, victoria, tmp_path, influx={"url": f"{victoria.url}/no-such-prefix"}
    )
    listener = DeadLetterListener(mosquitto.port, settings.ingest.dead_letter_topic)
    worker = start_worker(settings)
    publisher = Publisher(mosquitto.port)
    try:
        for seq in range(1, 21):
            publisher.event(line_event(seq))
        publisher.wait_all()
        deadline = time.monotonic() + 20
        while worker.stats.config_faults < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
        letters = listener.wait_for(1, timeout=1.0)
    finally:
        publisher.close()
        listener.close()
        worker.stop()
    assert letters == []
    stats = worker.stats.snapshot()
    assert stats["db_state"] == "config_fault"
    assert stats["dead_letter"]["db_rejected"] == 0
    assert stats["events_written"] == 0
    assert stats["pending_acks"] == 20  # unacknowledged: the broker redelivers them


def test_spool_left_by_a_stopped_worker_is_drained_by_the_next(
    mosquitto: Mosquitto, victoria: VictoriaMetrics, tmp_path: Path
) -> None:
    settings = settings_for(mosquitto, victoria, tmp_path, spool_path=str(tmp_path / "s.db"))
    victoria.stop()
    first = start_worker(settings, "w1")
    publisher = Publisher(mosquitto.port)
    seqs = range(1, 301)
    try:
        for seq in seqs:
            publisher.event(line_event(seq))
        publisher.wait_all()
        deadline = time.monotonic() + 20
        while first.stats.snapshot()["spooled"] < len(seqs) and time.monotonic() < deadline:
            time.sleep(0.05)
        first.stop()  # everything spooled and acknowledged: nothing left in the broker
        spooled = first.stats.snapshot()
        victoria.start()
        second = start_worker(settings, "w1")
        try:
            samples = seq_samples(victoria, expected=len(seqs))
        finally:
            second.stop()
    finally:
        publisher.close()
    assert spooled["spooled"] == len(seqs)
    assert spooled["pending_acks"] == 0
    assert spooled["spool_depth"] == len(seqs)
    assert second.stats.snapshot()["received"] == 0  # it all came from the spool
    assert second.stats.snapshot()["spool_depth"] == 0
    assert_exactly_once(samples, seqs)
