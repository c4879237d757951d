"""Several workers on one shared subscription; a killed worker's messages come back.

The kill and SIGTERM tests run the real ``gateway ingest`` command as a child process
and watch it through its retained stats topic.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from gateway.localservers import Mosquitto, VictoriaMetrics
from tests.support.ingest import (
    Publisher,
    assert_exactly_once,
    line_event,
    seq_samples,
    settings_for,
    start_worker,
)


def test_two_workers_split_the_load_and_write_every_event_once(
    mosquitto: Mosquitto, victoria: VictoriaMetrics, tmp_path: Path
) -> None:
    settings = settings_for(mosquitto, victoria, tmp_path)
    first = start_worker(settings, "w1")
    second = start_worker(settings, "w2")
    publisher = Publisher(mosquitto.port)
    seqs = range(1, 2001)
    try:
        for seq in seqs:
            publisher.event(line_event(seq))
        publisher.wait_all()
        samples = seq_samples(victoria, expected=len(seqs))
    finally:
        publisher.close()
        first.stop()
        second.stop()
    assert_exactly_once(samples, seqs)
    written = [w.stats.snapshot()["events_written"] for w in (first, second)]
    assert sum(written) == len(seqs)  # each event went to exactly one worker
    assert min(written) > len(seqs) // 4  # and both did a real share


def write_config(path: Path, broker: Mosquitto, db: VictoriaMetrics, **influx: Any) -> Path:
    values = {
        "batch_size": 100,
        "flush_interval_s": 0.2,
        "retry_min_s": 0.2,
        "retry_max_s": 1.0,
        **influx,
    }
    lines = [
        "[mqtt]",
        'host = "127.0.0.1"',
        f"port = {broker.port}",
        "reconnect_min_s = 1",
        "reconnect_max_s = 1",
        "",
        "[ingest]",
        "stats_interval_s = 0.5",
        f'dead_letter_path = "{path.parent / "deadletters.sqlite3"}"',
        "",
        "[ingest.influx]",
        f'url = "{db.url}"',
        'token = "test"',
    ]
    lines += [f"{key} = {json.dumps(value)}" for key, value in values.items()]
    path.write_text("\n".join(lines) + "\n")
    return path


class StatsWatcher:
    """Latest retained stats of each worker (``city/ingest/stats/<worker>``)."""

    def __init__(self, port: int) -> None:
        self.latest: dict[str, dict[str, Any]] = {}
        self.ready = threading.Event()
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
        self.client.on_connect = lambda c, *a: c.subscribe("city/ingest/stats/+", qos=0)
        self.client.on_subscribe = lambda *a: self.ready.set()
        self.client.on_message = self._on_message
        self.client.connect("127.0.0.1", port)
        self.client.loop_start()
        assert self.ready.wait(10)

    def _on_message(self, client: Any, userdata: Any, message: Any) -> None:
        stats = json.loads(message.payload)
        self.latest[stats["worker"]] = stats

    def wait(self, worker: str, check: Any, timeout: float = 20.0) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            stats = self.latest.get(worker)
            if stats is not None and check(stats):
                return stats
            time.sleep(0.05)
        raise AssertionError(f"stats of {worker} never matched: {self.latest.get(worker)}")

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def start_ingest(config: Path, worker: str, log: Path) -> subprocess.Popen[bytes]:
    with log.open("ab") as out:
        return subprocess.Popen(
            [
                sys.executable,
                "-m",
                "gateway",
                "ingest",
                "--config",
                str(config),
                "--worker",
                worker,
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )


def test_killed_worker_gets_its_unacknowledged_messages_again(
    mosquitto: Mosquitto, victoria: VictoriaMetrics, tmp_path: Path
) -> None:
    config = write_config(tmp_path / "ingest.toml", mosquitto, victoria)
    watcher = StatsWatcher(mosquitto.port)
    publisher = Publisher(mosquitto.port)
    proc = start_ingest(config, "k1", tmp_path / "ingest.log")
    try:
        watcher.wait("k1", lambda s: True)
        for seq in range(1, 201):
            publisher.event(line_event(seq))
        watcher.wait("k1", lambda s: s["events_written"] == 200)
        victoria.stop()  # the worker now holds its acknowledgements
        for seq in range(201, 501):
            publisher.event(line_event(seq))
        publisher.wait_all()
        watcher.wait("k1", lambda s: s["received"] == 500 and s["pending_acks"] == 300)
        proc.kill()  # no flush, no disconnect: 300 messages received, none acknowledged
        proc.wait(10)
        victoria.start()
        proc = start_ingest(config, "k1", tmp_path / "ingest.log")  # same client id
        samples = seq_samples(victoria, expected=500)
        stats = watcher.wait("k1", lambda s: s["events_written"] == 300)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(20) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
        publisher.close()
        watcher.close()
    assert_exactly_once(samples, range(1, 501))
    assert stats["received"] == 300  # exactly the unacknowledged ones came back


def test_sigterm_flushes_the_open_batch_and_exits_0(
    mosquitto: Mosquitto, victoria: VictoriaMetrics, tmp_path: Path
) -> None:
    # A batch that would wait a minute: only the SIGTERM flush can write it in time.
    config = write_config(
        tmp_path / "ingest.toml", mosquitto, victoria, batch_size=100_000, flush_interval_s=60.0
    )
    watcher = StatsWatcher(mosquitto.port)
    publisher = Publisher(mosquitto.port)
    proc = start_ingest(config, "t1", tmp_path / "ingest.log")
    try:
        watcher.wait("t1", lambda s: True)
        for seq in range(1, 51):
            publisher.event(line_event(seq))
        publisher.wait_all()
        watcher.wait("t1", lambda s: s["received"] == 50 and s["events_written"] == 0)
        proc.send_signal(signal.SIGTERM)
        code = proc.wait(20)
        samples = seq_samples(victoria, expected=50)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
        publisher.close()
        watcher.close()
    assert code == 0, (tmp_path / "ingest.log").read_text()
    assert_exactly_once(samples, range(1, 51))
    assert "stopped" in (tmp_path / "ingest.log").read_text()
