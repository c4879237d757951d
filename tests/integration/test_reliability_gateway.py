"""``gateway run`` killed with SIGKILL mid-run: nothing lost, seqs continue, last will seen."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
from pathlib import Path

from gateway.events import validate_event
from gateway.localservers import Mosquitto
from tests.support.transport import Collector, write_config

BASE = "city/sejong-1/rsu-0001"
GATEWAY = [sys.executable, "-m", "gateway"]


def start_gateway(config: Path, log: Path) -> subprocess.Popen[bytes]:
    with log.open("ab") as out:
        return subprocess.Popen(
            [*GATEWAY, "run", "--config", str(config)], stdout=out, stderr=subprocess.STDOUT
        )


def last_seq(db: Path) -> int:
    con = sqlite3.connect(db)
    try:
        return int(con.execute("SELECT value FROM meta WHERE key = 'last_seq'").fetchone()[0])
    finally:
        con.close()


def test_kill_9_then_restart_publishes_every_seq_once(tmp_path: Path, mosquitto: Mosquitto) -> None:
    config = write_config(
        tmp_path, mosquitto.port, events={"synthetic_events_per_s": 200, "health_interval_s": 1}
    )
    log = tmp_path / "gateway.log"
    collector = Collector(mosquitto.port, [f"{BASE}/#"])
    procs: list[subprocess.Popen[bytes]] = []
    try:
        first = start_gateway(config, log)
        procs.append(first)
        assert collector.wait_for(lambda: len(collector.payloads("/sensors/synthetic")) > 300)
        first.send_signal(signal.SIGKILL)
        first.wait(10)
        killed_at = last_seq(tmp_path / "data" / "outbox.sqlite3")
        # The broker publishes the retained last will once the socket closes.
        assert collector.wait_for(
            lambda: [s["data"]["state"] for s in collector.payloads("/status")][-1:] == ["offline"],
            10,
        ), log.read_text()[-3000:]

        second = start_gateway(config, log)
        procs.append(second)
        assert collector.wait_for(
            lambda: (
                max(e["seq"] for e in collector.payloads("/sensors/synthetic")) > killed_at + 300
            )
        ), log.read_text()[-3000:]
        assert [s["data"]["state"] for s in collector.payloads("/status")][-1] == "online"
        second.send_signal(signal.SIGTERM)
        assert second.wait(30) == 0, log.read_text()[-3000:]
        final = last_seq(tmp_path / "data" / "outbox.sqlite3")
        assert collector.wait_for(
            lambda: (
                {e["seq"] for e in collector.payloads() if e["seq"]} >= set(range(1, final + 1))
            ),
            10,
        )
    finally:
        collector.close()
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait(5)
    by_seq: dict[int, set[str]] = {}
    for event in collector.payloads():
        if event["type"] != "availability":
            by_seq.setdefault(event["seq"], set()).add(event["id"])
    assert set(by_seq) == set(range(1, final + 1))  # complete, nothing extra
    assert all(len(ids) == 1 for ids in by_seq.values())  # one event per seq after de-dup by id
    assert final > killed_at  # the sequence continued after the restart
    assert [s["data"]["state"] for s in collector.payloads("/status")][-1] == "offline"
    for event in collector.payloads()[:50]:
        validate_event(event)
    assert os.path.getsize(tmp_path / "data" / "outbox.sqlite3") > 0
