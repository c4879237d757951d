"""Database faults: one refused message is isolated, configuration faults hold everything.

The isolation tests need InfluxDB's answers (a 400 for a whole request because of one
line, 401, 404 for a bucket): :class:`tests.support.strict_influx.StrictInflux` gives them in front
of a real VictoriaMetrics. A database that refuses every write (here a real VictoriaMetrics
behind a wrong URL, which answers 400 to everything) is a configuration fault: nothing is
dead-lettered, the messages are held and written once the fault is fixed.
"""

from __future__ import annotations

import json
import logging
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from gateway.config.ingest import InfluxConfig
from gateway.ingest.database import ConfigFaultError, Database
from gateway.ingest.deadstore import DeadLetterStore
from gateway.ingest.isolate import write_isolating
from gateway.localservers import Mosquitto, VictoriaMetrics
from tests.support.ingest import (
    Publisher,
    assert_exactly_once,
    line_event,
    seq_samples,
    settings_for,
    start_worker,
)
from tests.support.polling import wait_for
from tests.support.strict_influx import StrictInflux


@pytest.fixture
def strict(victoria: VictoriaMetrics) -> Iterator[StrictInflux]:
    front = StrictInflux(victoria.url)
    yield front
    front.close()


def sensor_event(seq: int, pm25: float) -> dict[str, Any]:
    data = {"sensor": "pm-1", "protocol": "pms5003", "values": {"pm25": pm25}}
    return {**line_event(seq), "type": "sensor_reading", "source": "pm-1", "data": data}


def test_one_refused_message_is_dead_lettered_and_the_rest_of_its_batch_written(
    mosquitto: Mosquitto, victoria: VictoriaMetrics, strict: StrictInflux, tmp_path: Path
) -> None:
    # Another tool wrote pm25 as an integer: InfluxDB now refuses every float pm25
    # with a 400 for the whole request.
    strict.schema[("sensor", "pm25")] = "integer"
    settings = settings_for(
        mosquitto, victoria, tmp_path, influx={"url": strict.url, "flush_interval_s": 0.5}
    )
    worker = start_worker(settings)
    publisher = Publisher(mosquitto.port)
    seqs = range(1, 301)
    bad = {50: 12.5, 150: 13.5, 250: 14.5}
    try:
        for seq in seqs:
            publisher.event(line_event(seq))
            if seq in bad:
                publisher.event(sensor_event(10_000 + seq, bad[seq]))
        publisher.wait_all()
        samples = seq_samples(victoria, expected=len(seqs))
        assert wait_for(lambda: worker.stats.dead_letter["db_rejected"] == len(bad))
    finally:
        publisher.close()
        worker.stop()
    assert_exactly_once(samples, seqs)
    stats = worker.stats.snapshot()
    assert stats["pending_acks"] == 0
    assert stats["events_written"] == len(seqs)
    assert stats["db_state"] == "ok"
    assert 400 in strict.answers  # the batches were refused whole, then split
    store = DeadLetterStore(settings.ingest.dead_letter_path or Path(), 2**30)
    letters = store.letters()
    store.close()
    assert sorted(json.loads(letter.payload)["seq"] for letter in letters) == [
        10_000 + seq for seq in bad
    ]
    assert {letter.reason for letter in letters} == {"db_rejected"}
    assert "field type conflict" in letters[0].detail


@pytest.mark.parametrize("fault", ["token", "bucket"])
def test_a_configuration_fault_holds_every_message_and_raises_an_alarm(
    mosquitto: Mosquitto,
    victoria: VictoriaMetrics,
    strict: StrictInflux,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
    fault: str,
) -> None:
    # A rotated token (401) or a bucket that does not exist (404).
    if fault == "token":
        strict.token = "rotated"
    else:
        strict.bucket = "renamed"
    settings = settings_for(mosquitto, victoria, tmp_path, influx={"url": strict.url})
    worker = start_worker(settings)
    publisher = Publisher(mosquitto.port)
    seqs = range(1, 101)
    caplog.set_level(logging.ERROR, logger="gateway.ingest.pipeline")
    try:
        for seq in seqs:
            publisher.event(line_event(seq))
        publisher.wait_all()
        assert wait_for(lambda: worker.stats.config_faults >= 2)
        during = worker.stats.snapshot()
        strict.token, strict.bucket = "test", "roadside"  # the operator fixes it
        samples = seq_samples(victoria, expected=len(seqs), timeout=30)
    finally:
        publisher.close()
        worker.stop()
    assert during["db_state"] == "config_fault"
    assert during["pending_acks"] == len(seqs)  # held: the broker keeps them
    assert sum(during["dead_letter"].values()) == 0
    assert_exactly_once(samples, seqs)
    assert sum(worker.stats.snapshot()["dead_letter"].values()) == 0
    assert worker.stats.snapshot()["db_state"] == "ok"
    alarms = [r for r in caplog.records if "configuration fault" in r.getMessage()]
    assert alarms, "no alarm logged"
    assert len(alarms) <= 2  # rate-limited, not one per retry


def test_a_database_that_refuses_everything_is_a_configuration_fault(
    victoria: VictoriaMetrics,
) -> None:
    # A wrong URL prefix: VictoriaMetrics answers 400 "unsupported path" to everything.
    db = Database(InfluxConfig(url=f"{victoria.url}/no-such-prefix", timeout_s=5))
    try:
        with pytest.raises(ConfigFaultError, match="known-good point"):
            write_isolating(db, [b"m f=1i 1795000000000000000", b"m f=2i 1795000000001000000"])
    finally:
        db.close()


def test_a_spooled_batch_with_a_refused_line_is_written_but_that_line(
    mosquitto: Mosquitto, victoria: VictoriaMetrics, strict: StrictInflux, tmp_path: Path
) -> None:
    settings = settings_for(
        mosquitto,
        victoria,
        tmp_path,
        spool_path=str(tmp_path / "spool.sqlite3"),
        influx={"url": strict.url},
    )
    strict.token = "not-yet"  # refused first: the batches go to the spool
    worker = start_worker(settings)
    publisher = Publisher(mosquitto.port)
    seqs = range(1, 51)
    try:
        for seq in seqs:
            publisher.event(line_event(seq))
        publisher.event(sensor_event(10_001, 9.5))
        publisher.wait_all()
        assert wait_for(lambda: worker.stats.spooled == len(seqs) + 1)
        strict.schema[("sensor", "pm25")] = "integer"
        strict.token = "test"
        samples = seq_samples(victoria, expected=len(seqs))
        assert wait_for(lambda: worker.stats.dead_letter["db_rejected"] == 1)
    finally:
        publisher.close()
        worker.stop()
    assert_exactly_once(samples, seqs)
    store = DeadLetterStore(settings.ingest.dead_letter_path or Path(), 2**30)
    (letter,) = store.letters()
    store.close()
    assert letter.kind == "line"
    assert letter.payload.startswith(b"sensor,")
    assert worker.stats.snapshot()["spool_depth"] == 0


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "gateway", "ingest", "deadletters", *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_dead_letters_are_listed_and_replayed_after_the_fix_with_the_real_cli(
    mosquitto: Mosquitto, victoria: VictoriaMetrics, tmp_path: Path
) -> None:
    # A too narrow time window sends every event to the dead-letter store.
    settings = settings_for(mosquitto, victoria, tmp_path, min_event_time="2030-01-01T00:00:00Z")
    worker = start_worker(settings)
    publisher = Publisher(mosquitto.port)
    seqs = range(1, 41)
    try:
        for seq in seqs:
            publisher.event(line_event(seq))
        publisher.publish("city/sejong-1/rsu-0001/events/x/y", b"[1, 2]")  # never replayable
        publisher.wait_all()
        assert wait_for(lambda: worker.stats.dead_letters_stored == len(seqs) + 1)
    finally:
        publisher.close()
        worker.stop()
    fixed = tmp_path / "fixed.toml"
    fixed.write_text(
        f'[ingest]\ndead_letter_path = "{settings.ingest.dead_letter_path}"\n'
        f'[ingest.influx]\nurl = "{victoria.url}"\ntoken = "test"\n'
        "batch_size = 7\n"  # replayed in pages of 7
    )
    listed = _cli("list", "-c", str(fixed), "--reason", "out_of_range", "--json")
    assert listed.returncode == 0, listed.stderr
    letters = [json.loads(line) for line in listed.stdout.splitlines()]
    assert len(letters) == len(seqs)
    assert "before 2030-01-01" in letters[0]["detail"]
    replayed = _cli("replay", "-c", str(fixed), "--json")
    assert replayed.returncode == 0, replayed.stderr
    summary = json.loads(replayed.stdout.splitlines()[-1])
    assert summary["written"] == len(seqs)
    assert summary["refused_again"] == 1  # the JSON array: malformed, kept
    assert_exactly_once(seq_samples(victoria, expected=len(seqs)), seqs)
    left = _cli("list", "-c", str(fixed), "--json")
    assert [json.loads(line)["reason"] for line in left.stdout.splitlines()] == ["malformed_json"]
    assert _cli("purge", "-c", str(fixed)).returncode == 2  # --yes is required
    purged = _cli("purge", "-c", str(fixed), "--yes")
    assert "1 letters deleted" in purged.stdout
    assert _cli("list", "-c", str(fixed), "--json").stdout == ""


def test_replay_against_a_database_that_is_away_removes_nothing(tmp_path: Path) -> None:
    from gateway.localservers import free_port

    store = DeadLetterStore(tmp_path / "dl.sqlite3", 2**20)
    store.add(
        worker="w",
        kind="line",
        reason="db_rejected",
        detail="x",
        topic="(spool)",
        payload=b"m f=1i 1795000000000000000",
    )
    store.close()
    config = tmp_path / "c.toml"
    config.write_text(
        f'[ingest]\ndead_letter_path = "{tmp_path / "dl.sqlite3"}"\n'
        f'[ingest.influx]\nurl = "http://127.0.0.1:{free_port()}"\ntimeout_s = 2\n'
    )
    out = _cli("replay", "-c", str(config))
    assert out.returncode == 1
    assert "after 0 letters written and removed (the rest stay in the store)" in out.stderr
    store = DeadLetterStore(tmp_path / "dl.sqlite3", 2**20)
    assert store.count() == 1
    store.close()
