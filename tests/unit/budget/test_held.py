"""What the budget gate holds outlives it: rows in the outbox's SQLite file, one transaction.

Each test runs the gate over a real outbox file as the app does (each step stored with
its rows' changes in one transaction), abandons gate and database without a flush, as
``kill -9`` would, and opens a new gate on the same file.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from gateway.budget import gate as gate_module
from gateway.budget import held
from gateway.errors import TransportError
from gateway.events.envelope import Draft
from gateway.transport.outbox import Outbox
from tests.support.budget import Unit, rows
from tests.unit.budget.test_budget import NOON, _aggregate, _crossing, _reading


def _types(events: list[dict[str, object]]) -> list[object]:
    return [e["type"] for e in events]


def test_held_crossings_and_an_open_summary_outlive_a_killed_gate(tmp_path: Path) -> None:
    path = tmp_path / "outbox.sqlite3"
    unit = Unit(path)
    held_north = [_crossing(n) for n in range(1, 4)]
    assert unit.admit([held_north[0], _crossing(10, "cam-south")]) == []
    assert unit.admit([*held_north[1:], _crossing(11, "cam-south")]) == []
    (agg,) = unit.admit([_aggregate(2, "cam-south")])  # counts cam-south's two: let go
    assert agg.data["crossings_withheld"] == 2
    readings = [_reading("pm-1", NOON + i, float(i)) for i in range(5)]
    for reading in readings:
        assert unit.admit([reading]) == []
    assert rows(path) == (3, 1)
    unit.crash()

    again = Unit(path)
    assert (again.loaded.crossings, again.loaded.summaries) == (3, 1)
    assert again.gate.health().recovered_held == 4
    stored = again.store(again.gate.recover())
    assert stored[:3] == held_north  # as they were held, in order
    (summary,) = stored[3:]
    assert summary.type == "sensor_reading" and summary.data["sensor"] == "pm-1"
    assert summary.data["summary"]["count"] == 5  # type: ignore[index]
    assert summary.data["values"]["pm2_5"] == pytest.approx(2.0)  # type: ignore[index]
    assert rows(path) == (0, 0)
    types = _types(again.events())
    assert types == [
        "aggregate",
        "line_crossing",
        "line_crossing",
        "line_crossing",
        "sensor_reading",
    ]
    again.crash()
    third = Unit(path)  # stored once: nothing comes back a second time
    assert third.loaded.events == [] and third.store(third.gate.recover()) == []
    third.outbox.close()


def test_a_kill_right_after_the_aggregate_counts_nothing_twice(tmp_path: Path) -> None:
    path = tmp_path / "outbox.sqlite3"
    unit = Unit(path, level=1)
    unit.admit([_crossing(n) for n in range(4)])
    unit.admit([_aggregate(4)])
    unit.crash()
    again = Unit(path, level=1)
    assert again.loaded.events == []  # the aggregate that counts them took their rows
    assert again.store(again.gate.recover()) == []
    (agg,) = again.events()
    assert agg["data"]["crossings_withheld"] == 4  # type: ignore[index]
    again.outbox.close()


class _Failing:
    """Outbox writes that fail once, after the step's own rows were written (rolled back)."""

    def __init__(self, outbox: Outbox) -> None:
        self.add = outbox.add
        self.armed = False

    def __call__(
        self, drafts: list[Draft], *, also: held.Write | None, unstored: int | None
    ) -> None:
        def write(db: sqlite3.Connection) -> None:
            if also is not None:
                also(db)
            raise sqlite3.OperationalError("disk I/O error")

        self.add(drafts, also=write if self.armed else also, unstored=unstored)


def test_an_aggregate_not_stored_sends_the_crossings_it_counted_as_they_are(
    tmp_path: Path,
) -> None:
    path = tmp_path / "outbox.sqlite3"
    unit = Unit(path, level=1)
    unit.admit([_crossing(n) for n in range(3)])
    failing = _Failing(unit.outbox)
    unit.outbox.add = failing  # type: ignore[method-assign,assignment]
    failing.armed = True
    with pytest.raises(TransportError):
        unit.admit([_aggregate(3), _crossing(9)])
    failing.armed = False
    assert unit.outbox.losses()["lost_store"] == 2  # the aggregate and the crossing with it
    assert rows(path) == (3, 0)  # rolled back with it: still held
    # The next step stores them as they are: the next aggregate counts only its own.
    assert unit.store(unit.gate.tick(0)) == [_crossing(n) for n in range(3)]
    unit.gate.policy.index = 1  # (the tick read an unused budget)
    assert unit.admit([_crossing(20)]) == []
    (agg,) = unit.admit([_aggregate(1)])
    assert agg.data["crossings_withheld"] == 1
    assert rows(path) == (0, 0)
    unit.outbox.close()


def test_a_failed_hold_is_undone_and_counted(tmp_path: Path) -> None:
    path = tmp_path / "outbox.sqlite3"
    unit = Unit(path)
    unit.admit([_crossing(1), _reading("pm-1", NOON, 1.0)])
    failing = _Failing(unit.outbox)
    unit.outbox.add = failing  # type: ignore[method-assign,assignment]
    failing.armed = True
    with pytest.raises(TransportError):
        unit.admit([_crossing(2), _reading("pm-1", NOON + 1, 3.0)])
    failing.armed = False
    assert unit.outbox.losses()["lost_store"] == 2  # not held, not stored: counted lost
    assert unit.gate.health().crossings_held == 1 and rows(path) == (1, 1)
    unit.crash()
    again = Unit(path)
    stored = again.store(again.gate.recover())
    assert stored[0] == _crossing(1)
    assert stored[1].data["summary"]["count"] == 1  # type: ignore[index]
    again.outbox.close()


def test_the_held_rows_are_bounded_like_the_gate(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(gate_module, "MAX_HELD", 5)
    monkeypatch.setattr(gate_module, "MAX_CAMERAS", 2)
    path = tmp_path / "outbox.sqlite3"
    unit = Unit(path, level=1)
    out = unit.admit([_crossing(n) for n in range(8)])
    assert out == [_crossing(n) for n in range(5, 8)]  # beyond the bound: passed, not lost
    unit.admit([_crossing(1, "cam-south"), _crossing(1, "cam-east")])
    assert rows(path) == (6, 0)  # 5 + cam-south's; a third camera passes
    unit.outbox.close()
    size = len(held.encode_draft(_crossing(1)))
    small = Unit(tmp_path / "small.sqlite3", level=1, max_bytes=3 * size)
    assert len(small.admit([_crossing(n) for n in range(1, 6)])) == 2
    assert rows(tmp_path / "small.sqlite3") == (3, 0)
    small.outbox.close()


def test_nothing_is_written_at_level_full(tmp_path: Path) -> None:
    path = tmp_path / "outbox.sqlite3"
    unit = Unit(path, level=0)
    with unit.gate.admit([_crossing(1), _reading("pm-1", NOON, 1.0), _aggregate(1)]) as step:
        assert step.write is None and len(step.drafts) == 3
    unit.outbox.close()


def test_unreadable_rows_are_removed_and_counted(tmp_path: Path) -> None:
    path = tmp_path / "outbox.sqlite3"
    unit = Unit(path)
    unit.admit([_crossing(1), _reading("pm-1", NOON, 1.0)])
    unit.outbox.close()
    with sqlite3.connect(path) as db:
        db.execute("INSERT INTO budget_held (id, source, draft) VALUES (99, 'x', '{\"type\":1}')")
        db.execute("INSERT INTO budget_summaries (sensor, state) VALUES ('pm-2', '[1]')")
        db.execute("INSERT INTO budget_summaries (sensor, state) VALUES ('pm-3', '{\"a\":1}')")
    again = Unit(path)
    assert again.loaded.unreadable == again.gate.health().unreadable_held == 3
    assert [d.type for d in again.store(again.gate.recover())] == [
        "line_crossing",
        "sensor_reading",
    ]
    assert rows(path) == (0, 0)
    again.outbox.close()


def test_a_camera_restart_after_a_crash_sends_each_crossing_once(tmp_path: Path) -> None:
    path = tmp_path / "outbox.sqlite3"
    unit = Unit(path, level=1)
    unit.admit([_crossing(1), _crossing(2)])
    unit.crash()
    again = Unit(path, level=1)  # the run before's two are waiting to be stored
    assert again.admit([_crossing(3)]) == [_crossing(1), _crossing(2)]  # first, as they are
    assert again.admit([_crossing(4)]) == []
    # The camera's pipeline restarts (a new config): its interval starts over.
    assert again.store(again.gate.release("cam-north")) == [_crossing(3), _crossing(4)]
    assert rows(path) == (0, 0)
    assert again.admit([_crossing(5)]) == []
    (agg,) = again.admit([_aggregate(1)])
    assert agg.data["crossings_withheld"] == 1
    crossings = [e for e in again.events() if e["type"] == "line_crossing"]
    assert [e["data"]["track_id"] for e in crossings] == [1, 2, 3, 4]  # type: ignore[index]
    again.outbox.close()


def test_a_damaged_outbox_file_gives_up_the_held_rows_that_still_read(tmp_path: Path) -> None:
    path = tmp_path / "outbox.sqlite3"
    unit = Unit(path)
    unit.admit([_crossing(1), _crossing(2), _reading("pm-1", NOON, 4.0)])
    unit.admit([_aggregate(0, "cam-south")])  # an event, so the events' pages exist
    unit.outbox.close()
    with sqlite3.connect(path) as db:
        (page,) = db.execute("SELECT rootpage FROM sqlite_master WHERE name = 'events'").fetchone()
        (size,) = db.execute("PRAGMA page_size").fetchone()
    with path.open("r+b") as f:  # the events table's page scribbled over: the file is damaged
        f.seek((page - 1) * size + 8)
        f.write(b"\xff" * 512)
    again = Unit(path)
    assert again.outbox.recovered is not None and again.outbox.recovered.cause == "damaged"
    assert (again.loaded.crossings, again.loaded.summaries) == (2, 1)
    stored = again.store(again.gate.recover())
    assert stored[:2] == [_crossing(1), _crossing(2)]
    assert stored[2].data["summary"]["count"] == 1  # type: ignore[index]
    assert rows(path) == (0, 0)
    again.outbox.close()


def test_a_database_that_lost_its_last_transactions_says_what_they_held(
    tmp_path: Path,
) -> None:
    """A power loss under synchronous=normal: the file comes back as it was some commits ago."""
    path = tmp_path / "outbox.sqlite3"
    unit = Unit(path)
    unit.admit([_crossing(1), _crossing(2), _reading("pm-1", NOON, 1.0)])
    on_disk = tmp_path / "on-disk.sqlite3"  # what had reached the disk at the loss
    with sqlite3.connect(on_disk) as copy:
        unit.outbox._db.backup(copy)
    unit.admit([_crossing(3), _reading("pm-1", NOON + 1, 2.0), _reading("pm-1", NOON + 2, 3.0)])
    unit.gate.usage.save()  # the usage file (fsynced every 30 s) saw the later commits
    unit.crash()
    for leftover in tmp_path.glob("outbox.sqlite3*"):
        if not leftover.name.endswith(".state"):
            leftover.unlink()
    on_disk.rename(path)
    again = Unit(path)
    assert again.gate.rolled_back == (1, 2)  # crossing 3 and two readings: lost, said so
    health = again.gate.health()
    assert (health.rolled_back_crossings, health.rolled_back_readings) == (1, 2)
    stored = again.store(again.gate.recover())  # what the file kept is stored as ever
    assert stored[:2] == [_crossing(1), _crossing(2)]
    assert stored[2].data["summary"]["count"] == 1  # type: ignore[index]
    again.admit([_crossing(4)])
    again.crash()
    third = Unit(path)  # reported once; the kill -9 after it loses nothing
    assert third.gate.rolled_back == (0, 0)
    assert [d.data["track_id"] for d in third.store(third.gate.recover())] == [4]
    third.outbox.close()
