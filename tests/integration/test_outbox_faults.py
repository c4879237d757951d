"""The outbox under faults: a damaged file, a rolled-back WAL, kill -9, a full disk.

Each test breaks the outbox the way the field does and checks that no seq is reused,
that the loss is counted persistently with its cause, and that the outbox goes on.
The full-disk tests run on a real 2 MiB tmpfs (``small_volume``; mounting needs root, as in CI).
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from gateway.app import App
from gateway.events import Topics, validate_event
from gateway.localservers import Mosquitto
from gateway.transport.outbox import SEQ_RESERVE, Outbox, OutboxWriteError
from gateway.transport.outbox_files import read_record
from tests.support.transport import Collector, sensor_draft, settings_for
from tests.support.volumes import fill
from tests.unit.transport.test_outbox import draft

BASE = "city/sejong-1/rsu-0001"

TOPICS = Topics("city", "sejong-1", "rsu-0001")


def filled(path: Path, n: int = 20) -> int:
    """An outbox with ``n`` undelivered events, closed; returns its last seq."""
    with Outbox(path, TOPICS) as box:
        box.add([draft(i) for i in range(n)])
        box.ack([1, 2])  # the first two were delivered
        return box.last_seq


def _garbage(path: Path) -> None:
    path.write_bytes(os.urandom(8192))


def _zero(path: Path) -> None:
    path.write_bytes(b"")


def _truncate(path: Path) -> None:
    size = path.stat().st_size
    with path.open("r+b") as f:
        f.truncate(size // 2)


def _scribble(path: Path) -> None:
    data = bytearray(path.read_bytes())
    for page in range(1, len(data) // 4096):  # every page but the header: b-trees broken
        data[page * 4096 + 10 : page * 4096 + 200] = os.urandom(190)
    path.write_bytes(bytes(data))


@pytest.mark.parametrize("damage", [_zero, _garbage, _truncate, _scribble])
def test_a_damaged_file_is_quarantined_and_seqs_continue(tmp_path: Path, damage: object) -> None:
    path = tmp_path / "outbox.sqlite3"
    last = filled(path, n=300)
    assert callable(damage)
    damage(path)
    with Outbox(path, TOPICS) as box:
        recovery = box.recovered
        assert recovery is not None and recovery.cause == "damaged"
        assert recovery.quarantined is not None and recovery.quarantined.exists()
        assert ".damaged-" in recovery.quarantined.name
        assert box.last_seq >= last  # never back to seq 1
        stored = box.add([draft(1000)])
        assert stored.seqs[0] > last
        assert box.damaged == 1
        records = [r for r in box.loss_records() if r.cause == "damaged"]
        assert records and records[0].first_seq <= 3 and records[0].last_seq >= last
        # What waited and could not be read back is counted; what was salvaged is kept.
        assert box.losses()["lost_damaged"] + recovery.salvaged >= last - 2
        salvaged = [r.seq for r in box.fetch(0, 10_000)][:-1]
        assert salvaged == sorted(salvaged) and all(3 <= s <= last for s in salvaged)
    # The count survives a restart and the outbox opens cleanly now.
    with Outbox(path, TOPICS) as box:
        assert box.recovered is None
        assert box.damaged == 1 and box.losses()["lost_damaged"] == max(last - 2 - len(salvaged), 0)


def test_damage_without_a_seq_record_still_recovers(tmp_path: Path) -> None:
    path = tmp_path / "outbox.sqlite3"
    filled(path)
    (tmp_path / "outbox.sqlite3.state").unlink()
    _garbage(path)
    with Outbox(path, TOPICS) as box:
        assert box.recovered is not None
        assert box.add([draft(0)]).seqs  # it runs (the seqs may repeat: logged)


def test_only_the_newest_damaged_files_are_kept(tmp_path: Path) -> None:
    path = tmp_path / "outbox.sqlite3"
    for _ in range(5):
        filled(path)
        _garbage(path)
        Outbox(path, TOPICS).close()
    kept = [p for p in tmp_path.glob("outbox.sqlite3.damaged-*") if "-wal" not in p.name]
    assert len([p for p in kept if not p.name.endswith("-shm")]) == 3


def test_a_rolled_back_wal_does_not_reuse_seqs(tmp_path: Path) -> None:
    # A power loss under synchronous=normal (or a truncated WAL) can lose the last
    # transactions; their seqs were handed out, so they must not be handed out again.
    path = tmp_path / "outbox.sqlite3"
    box = Outbox(path, TOPICS)
    box.add([draft(i) for i in range(10)])
    snapshot = tmp_path / "snap"
    snapshot.mkdir()
    for suffix in ("", "-wal"):
        shutil.copy(str(path) + suffix, str(snapshot / path.name) + suffix)
    box.add([draft(i) for i in range(10, 50)])
    box.enforce()  # the periodic tick records seq 50 beside the database
    record, _ = read_record(path)
    assert record is not None and record.last_seq == 50
    shutil.copy(path.with_name(path.name + ".state"), snapshot / (path.name + ".state"))
    box.close()
    restored = snapshot / path.name  # the database as it was at seq 10, the record at 50
    with Outbox(restored, TOPICS) as again:
        assert again.recovered is not None and again.recovered.cause == "rolled_back"
        assert again.add([draft(0)]).seqs[0] > 50
        assert again.losses()["lost_damaged"] == 40
        assert [r.cause for r in again.loss_records()] == ["rolled_back"]


WRITER = """
import sys
from pathlib import Path
from gateway.app import App
from gateway.events import Draft, Topics, validate_event
from gateway.transport.outbox import Outbox
box = Outbox(Path(sys.argv[1]), Topics("city", "s", "g"))
i = 0
while True:
    drafts = [Draft("sensor_reading", "pm", 1.7e9, {"sensor": "pm", "protocol": "t",
              "values": {"i": i + k}, "extra": {}}) for k in range(20)]
    stored = box.add(drafts)
    print(stored.seqs[-1], flush=True)
    i += 20
"""


def test_kill_9_mid_write_never_reuses_a_seq(tmp_path: Path) -> None:
    path = tmp_path / "outbox.sqlite3"
    script = tmp_path / "writer.py"
    script.write_text(WRITER)
    seen = 0
    for round_ in range(4):
        proc = subprocess.Popen(
            [sys.executable, str(script), str(path)], stdout=subprocess.PIPE, text=True
        )
        assert proc.stdout is not None
        printed = 0
        deadline = time.monotonic() + 30
        while printed < seen + 200 + 100 * round_ and time.monotonic() < deadline:
            line = proc.stdout.readline()
            if not line:
                break
            printed = int(line)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(10)
        proc.stdout.close()
        assert printed > seen, "the writer made no progress"
        with Outbox(path, TOPICS) as box:
            assert box.recovered is None  # kill -9 damages nothing in WAL mode
            assert box.last_seq >= printed  # every seq the writer was told about is taken
            seen = box.last_seq
            assert [r.seq for r in box.fetch(0, 1_000_000)] == list(range(1, seen + 1))


# -- a real full disk ---------------------------------------------------------------


def test_max_bytes_bounds_the_files_on_disk(small_volume: Path) -> None:
    bound = 1536 * 1024
    with Outbox(small_volume / "o.db", TOPICS, max_bytes=bound) as box:
        for i in range(3000):
            box.add([draft(i, pad=1000)])
            assert box.disk_bytes <= bound
        assert box.dropped > 0 and box.losses()["lost_store"] == 0
        assert box.last_seq == 3000


def test_a_volume_smaller_than_max_bytes_shrinks_the_bound(small_volume: Path) -> None:
    with Outbox(small_volume / "o.db", TOPICS) as box:  # 256 MiB by default
        assert box.limit_bytes < 2 * 1024 * 1024
        for i in range(3000):
            box.add([draft(i, pad=1000)])  # never fails: the oldest are dropped, counted
        assert box.dropped > 0 and box.dropped + box.depth == 3000
        assert box.losses()["lost_store"] == 0


def test_a_volume_filled_by_another_writer_loses_nothing_silently(small_volume: Path) -> None:
    path = small_volume / "o.db"
    with Outbox(path, TOPICS, max_bytes=1024 * 1024) as box:
        box.add([draft(i, pad=500) for i in range(50)])
        assert box.reserve.present
        filler = fill(small_volume)
        failed = 0
        for i in range(300):
            try:
                box.add([draft(i, pad=500)])
            except OutboxWriteError:
                failed += 1
        assert not box.reserve.present  # released to make room
        losses = box.losses()
        assert losses["lost_store"] == failed
        assert box.dropped + box.depth + failed == 350  # every seq accounted for
        assert box.last_seq == 350
        filler.unlink()
        box.enforce()
        assert box.add([draft(0)]).seqs == [351]
    with Outbox(path, TOPICS, max_bytes=1024 * 1024) as box:
        assert box.losses()["lost_store"] == failed  # persistent


def test_the_bounds_tick_on_a_volume_kept_full_logs_once_and_raises_nothing(
    small_volume: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # The app applies the bounds every 30 s; while another writer keeps the volume full
    # that must not be a traceback a tick (nor stop the next tick from trying again).
    with Outbox(small_volume / "o.db", TOPICS, max_bytes=1024 * 1024) as box:
        box.add([draft(i, pad=500) for i in range(50)])
        box.reserve.release()
        filler = fill(small_volume)
        for i in range(100):
            with contextlib.suppress(OutboxWriteError):
                box.add([draft(i, pad=500)])
        fill(small_volume)  # take back what the failed writes freed
        caplog.clear()
        for _ in range(5):
            box.enforce()
        lines = [r for r in caplog.records if r.levelno >= logging.WARNING]
        assert len(lines) <= 2, [r.getMessage() for r in lines]
        assert not any(r.exc_info for r in lines)
        # a failed COMMIT kept every row: the counts say so (the health event reads them)
        (rows,) = box._db.execute("SELECT COUNT(*) FROM events").fetchone()
        assert box.depth == rows == sum(box.lane_depths().values())
        filler.unlink()
        box.enforce()
        assert box.add([draft(0)]).seqs == [box.last_seq]


def test_losses_not_yet_written_are_counted_and_written_later(small_volume: Path) -> None:
    path = small_volume / "o.db"
    box = Outbox(path, TOPICS, max_bytes=512 * 1024)
    try:
        box.add([draft(0)])
        box.reserve.release()
        filler = fill(small_volume)
        box.count_lost(7)  # even the record may fail now: kept in memory meanwhile
        assert box.losses()["lost_store"] == 7
        filler.unlink()
        stored = box.add([draft(1)])
        assert stored.seqs[0] == 1 + 7 + 1  # the 7 lost consumed their seqs
        assert box.losses()["lost_store"] == 7
        assert [r.cause for r in box.loss_records()] == ["store_failed"]
    finally:
        box.close()
    assert SEQ_RESERVE > 0


def test_a_full_disk_is_one_log_line_and_health_still_reaches_the_centre(
    tmp_path: Path, small_volume: Path, mosquitto: Mosquitto, caplog: pytest.LogCaptureFixture
) -> None:
    settings = settings_for(
        tmp_path, mosquitto.port, gateway={"data_dir": str(small_volume / "data")}
    )
    collector = Collector(mosquitto.port, [f"{BASE}/#"])
    app = App(settings)
    try:
        app.start()
        assert collector.wait_for(lambda: bool(collector.payloads("/health")))
        assert collector.wait_for(lambda: app.outbox.depth == 0)
        app.outbox.reserve.release()
        fill(small_volume)
        caplog.clear()
        failed = 0
        for i in range(500):  # a camera thread keeps producing on a full disk
            failed += not app._emit_safely([sensor_draft(i)])
        assert failed > 0  # the volume is full: not everything fits (what fits is stored)
        app.publish_health()  # stored when it fits, else published directly (seq 0)

        def reports() -> list[dict[str, Any]]:
            return [
                h
                for h in collector.payloads("/health")
                if h["data"]["outbox"].get("lost_store", 0) >= failed
            ]

        assert collector.wait_for(lambda: bool(reports())), "no health event while full"
        health = reports()[-1]
        validate_event(health)
        assert health["data"]["dropped_events"] >= failed
        assert app.outbox.losses()["lost_store"] >= failed  # (+ health events that failed)
    finally:
        app.stop()
        collector.close()
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert 1 <= len(errors) <= 5, [r.getMessage() for r in errors]
    assert not any(r.exc_info for r in errors)  # no traceback flood


def test_loss_counters_outlive_the_damaged_file_that_held_them(tmp_path: Path) -> None:
    path = tmp_path / "outbox.sqlite3"
    with Outbox(path, TOPICS, max_bytes=256 * 1024) as box:
        for i in range(400):
            box.add([draft(i, pad=1000)])  # the bound drops some: counted in this file
        dropped = box.dropped
    assert dropped > 0
    _zero(path)  # the counters in the file are gone: the side record still has them
    with Outbox(path, TOPICS) as box:
        assert box.dropped == dropped and box.damaged == 1
        box.count_lost(3)
    _scribble(path)
    with Outbox(path, TOPICS) as box:
        assert box.damaged == 2
        assert box.dropped == dropped and box.losses()["lost_store"] == 3
