"""The SQLite outbox: order, removal only on ack, bounds dropping the oldest, durable seq."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest

from gateway.errors import TransportError
from gateway.events import Draft, Topics, validate_event
from gateway.transport.outbox import Outbox

TOPICS = Topics("city", "sejong-1", "rsu-0001")


def draft(i: int, pad: int = 0) -> Draft:
    return Draft(
        "sensor_reading",
        "pm-1",
        1_795_545_600.0 + i,
        {"sensor": "pm-1", "protocol": "test", "values": {"i": i, "pad": "x" * pad}, "extra": {}},
    )


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


def test_events_are_stored_in_order_with_valid_envelopes(tmp_path: Path) -> None:
    with Outbox(tmp_path / "o.db", TOPICS) as box:
        stored = box.add([draft(i) for i in range(5)])
        assert stored.seqs == [1, 2, 3, 4, 5]
        rows = box.fetch(0, 100)
        assert [r.seq for r in rows] == [1, 2, 3, 4, 5]
        assert [r.event_id for r in rows] == stored.ids
        assert len(set(stored.ids)) == 5
        for row in rows:
            event = validate_event(json.loads(row.payload))
            assert event["seq"] == row.seq and event["id"] == row.event_id
            assert row.topic == "city/sejong-1/rsu-0001/sensors/pm-1"
        assert [r.seq for r in box.fetch(2, 2)] == [3, 4]
        assert box.add([]).seqs == []


def test_rows_leave_only_when_acked(tmp_path: Path) -> None:
    with Outbox(tmp_path / "o.db", TOPICS) as box:
        box.add([draft(i) for i in range(4)])
        box.fetch(0, 10)  # reading does not remove
        assert box.depth == 4
        assert box.ack([2, 3]) == 2
        assert [r.seq for r in box.fetch(0, 10)] == [1, 4]
        assert box.ack([2, 99]) == 0  # unknown or already acked: nothing happens
        assert box.depth == 2
        assert box.size_bytes == sum(len(r.payload) + len(r.topic) for r in box.fetch(0, 10))


def test_seq_and_rows_survive_reopen(tmp_path: Path) -> None:
    path = tmp_path / "o.db"
    with Outbox(path, TOPICS) as box:
        box.add([draft(i) for i in range(3)])
        box.ack([1, 2, 3])
        box.add([draft(3)])
    with Outbox(path, TOPICS) as box:
        assert box.last_seq == 4
        assert [r.seq for r in box.fetch(0, 10)] == [4]
        assert box.depth == 1 and box.size_bytes > 0
        assert box.add([draft(4), draft(5)]).seqs == [5, 6]


def test_seq_survives_a_process_that_never_closed(tmp_path: Path) -> None:
    # No close(): the WAL is left as a crashed process would leave it.
    path = tmp_path / "o.db"
    box = Outbox(path, TOPICS)
    box.add([draft(i) for i in range(10)])
    other = Outbox(path, TOPICS)
    try:
        assert other.last_seq == 10
        assert other.depth == 10
    finally:
        other.close()
        box.close()


MAX = 256 * 1024


def test_size_bound_drops_oldest_and_counts(tmp_path: Path) -> None:
    drops: list[int] = []
    with Outbox(tmp_path / "o.db", TOPICS, max_bytes=MAX, on_drop=drops.append) as box:
        for i in range(400):
            box.add([draft(i, pad=1000)])
            assert box.disk_bytes <= MAX  # the files on disk, WAL included
        remaining = [r.seq for r in box.fetch(0, 1000)]
        assert remaining == list(range(remaining[0], 401))  # newest kept, contiguous
        assert remaining[0] > 1
        assert box.dropped == remaining[0] - 1 == sum(drops)
        records = box.loss_records()
        assert {r.cause for r in records} == {"bound_size"}
        assert sum(r.count for r in records) == box.dropped
        assert records[0].first_seq == 1 and records[-1].last_seq == remaining[0] - 1
    with Outbox(tmp_path / "o.db", TOPICS, max_bytes=MAX) as box:
        assert box.dropped == remaining[0] - 1  # the counter is persistent


def test_age_bound_drops_oldest(tmp_path: Path) -> None:
    clock = Clock()
    with Outbox(tmp_path / "o.db", TOPICS, max_age_s=60, monotonic=clock) as box:
        box.add([draft(0), draft(1)])
        clock.now += 30
        box.add([draft(2)])
        clock.now += 40  # the first two are 70 s old, the third 40 s
        assert box.enforce() == 2
        assert [r.seq for r in box.fetch(0, 10)] == [3]
        assert box.dropped == 2
        assert box.oldest_age_s() == pytest.approx(40)
        stats = box.stats()
        assert stats["depth"] == 1 and stats["dropped"] == 2 and stats["last_seq"] == 3


@pytest.mark.parametrize("step_s", [8 * 24 * 3600.0, -8 * 24 * 3600.0, 3e9])
def test_a_wall_clock_step_drops_nothing_and_keeps_the_age_bound(
    tmp_path: Path, step_s: float
) -> None:
    mono, wall = Clock(), Clock()
    wall.now = 1_795_545_600.0
    path = tmp_path / "o.db"
    with Outbox(path, TOPICS, max_age_s=3600, monotonic=mono, wall=wall) as box:
        box.add([draft(0), draft(1)])
        mono.now += 10
        wall.now += step_s  # NTP steps the clock of a unit without an RTC
        assert box.enforce() == 0
        assert box.oldest_age_s() == pytest.approx(10)
        box.add([draft(2)])
    # Across a restart too (the run clock is persisted, the wall clock is not used).
    wall.now += step_s
    mono.now = 5.0  # a reboot resets the monotonic clock
    with Outbox(path, TOPICS, max_age_s=3600, monotonic=mono, wall=wall) as box:
        assert box.enforce() == 0 and box.depth == 3
        mono.now += 3600 - 5  # an hour of running: the first two are due, the third not
        assert box.enforce() == 2
        assert [r.seq for r in box.fetch(0, 10)] == [3]


def test_unwritable_location_is_a_clear_error(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(TransportError, match="cannot open outbox"):
        Outbox(blocker / "sub" / "o.db", TOPICS)


def test_wal_mode_is_used(tmp_path: Path) -> None:
    with Outbox(tmp_path / "o.db", TOPICS) as box:
        box.add([draft(0)])
        db = sqlite3.connect(tmp_path / "o.db")
        try:
            assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        finally:
            db.close()


def test_memory_copy_serves_continuations_but_not_replays(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with Outbox(tmp_path / "o.db", TOPICS) as box:
        box.add([draft(i) for i in range(10)])
        assert box.ack([1, 2, 3, 4, 5]) == 5
        assert [r.seq for r in box.fetch(0, 100)] == [6, 7, 8, 9, 10]  # replay: SQLite
        assert [r.seq for r in box.fetch(7, 2)] == [8, 9]  # continuation
        assert box.fetch(10, 5) == []
        monkeypatch.setattr("gateway.transport.outbox.RECENT_MAX_BYTES", 2000)
        box.add([draft(i, pad=300) for i in range(10)])  # the memory copy keeps ~2 KB
        assert box._recent_bytes <= 2000
        assert len(box._recent) < 10
        # Older continuations fall back to SQLite and still see every row.
        assert [r.seq for r in box.fetch(10, 100)] == list(range(11, 21))


def test_memory_copy_is_dropped_with_the_rows(tmp_path: Path) -> None:
    with Outbox(tmp_path / "o.db", TOPICS, max_bytes=MAX) as box:
        for i in range(400):
            box.add([draft(i, pad=1000)])
        first = box.fetch(0, 1)[0].seq
        assert first > 1
        assert [r.seq for r in box.fetch(1, 3)] == [first, first + 1, first + 2]


def test_memory_copy_lets_go_of_taken_rows_when_acks_come_out_of_order(tmp_path: Path) -> None:
    with Outbox(tmp_path / "o.db", TOPICS) as box:
        box.add([draft(i, pad=100) for i in range(6)])
        assert [r.seq for r in box.fetch(0, 3)] == [1, 2, 3]  # replay path: SQLite
        assert [r.seq for r in box.fetch(3, 3)] == [4, 5, 6]  # continuation: memory
        box.ack([5, 6, 4])  # the front row (1) is still in flight
        box.add([draft(6, pad=100)])
        assert [r.seq for r in box.fetch(6, 10)] == [7]
        # Only the row not yet taken is held in memory, whatever the ack order.
        assert [r.seq for r in box._recent] == [7]
        assert box._recent_bytes == len(box._recent[0].payload)
        box.ack([1, 2, 3])
        assert [r.seq for r in box.fetch(0, 10)] == [7]


def test_acks_out_of_order_and_with_gaps_delete_exactly_those_rows(tmp_path: Path) -> None:
    with Outbox(tmp_path / "o.db", TOPICS) as box:
        box.add([draft(i) for i in range(20)])
        assert box.ack([5, 3, 4, 9, 10, 11, 20, 3]) == 7  # runs 3-5, 9-11, 20; a repeat
        assert [r.seq for r in box.fetch(0, 100)] == [1, 2, 6, 7, 8, *range(12, 20)]
        assert box.depth == 13


def test_batched_ids_are_unique_uuid4() -> None:
    import uuid

    from gateway.events.envelope import new_ids

    ids = new_ids(5000)
    assert len(set(ids)) == 5000
    assert all(uuid.UUID(i).version == 4 and uuid.UUID(i).hex == i for i in ids)
