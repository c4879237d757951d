"""The campaign's reconciliation: every produced seq stored, dead-lettered, waiting or explained."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from gateway.bench.chaos.reconcile import (
    UNEXPLAINED,
    Departures,
    LossWindow,
    SeqRanges,
    UnitSnapshot,
    reconcile_unit,
)
from gateway.bench.chaos.records import (
    Letter,
    LossRange,
    Stored,
    UnitRecord,
    read_unit,
    stored_from_export,
)

TOPIC = "city/chaos/rsu-1/"


def unit(last_seq: int, losses: tuple[LossRange, ...] = (), waiting: set[int] | None = None):
    counters = {"dropped": sum(r.count for r in losses)}
    return UnitRecord("rsu-1", last_seq, counters, losses, frozenset(waiting or ()))


def stored(seqs: set[int], copies: dict[int, int] | None = None, ts: int = 1000) -> Stored:
    out = Stored()
    for seq in seqs:
        out.copies[seq] = Counter({("sensor_seq", ts + seq): (copies or {}).get(seq, 1)})
    return out


def letter(seq: int, topic: str = TOPIC + "sensors/synthetic", gateway: str = "rsu-1") -> Letter:
    return Letter("out_of_range", topic, gateway, seq, "id", b"{}")


def departed(last_seq: int, at_s: float) -> Departures:
    departures = Departures()
    departures.update(at_s, {"rsu-1": UnitSnapshot(0, frozenset())})
    departures.update(at_s + 1, {"rsu-1": UnitSnapshot(last_seq, frozenset())})
    return departures


def window(at_s: float, earliest_s: float, stored_before: set[int], last_seq: int) -> LossWindow:
    return LossWindow(
        "broker_kill@x",
        at_s,
        earliest_s,
        {"rsu-1": SeqRanges(stored_before)},
        {"rsu-1": UnitSnapshot(last_seq, frozenset())},
    )


def run(record, db, letters=(), windows=(), departures=None):
    return reconcile_unit(
        record,
        db,
        letters=list(letters),
        windows=list(windows),
        departures=departures or Departures(),
        unit_topic=TOPIC,
    )


def test_everything_stored_is_ok_and_duplicates_are_counted() -> None:
    result = run(unit(10), stored(set(range(1, 11)), copies={3: 2, 4: 3}))
    assert (result.produced, result.stored, result.missing, result.duplicates) == (10, 10, 0, 3)
    assert result.ok


@pytest.mark.parametrize(
    ("losses", "missing", "explained", "unexplained"),
    [
        # the unit dropped 4..6 and says so
        ((LossRange("bound_size", 4, 6, 3),), {4, 5, 6}, 3, 0),
        # the range is wider than the count (delivered rows inside it): at most 2 explained
        ((LossRange("bound_size", 3, 8, 2),), {4, 5, 6}, 2, 1),
        # a loss range elsewhere explains nothing
        ((LossRange("store_failed", 20, 25, 6),), {4}, 0, 1),
        ((), {4}, 0, 1),
    ],
)
def test_missing_seqs_are_explained_by_the_units_own_loss_ranges_within_their_count(
    losses: tuple[LossRange, ...], missing: set[int], explained: int, unexplained: int
) -> None:
    result = run(unit(30, losses), stored(set(range(1, 31)) - missing))
    assert result.missing == len(missing)
    assert result.unexplained == unexplained
    assert sum(n for c, n in result.causes.items() if c.startswith("unit:")) == explained
    assert result.ok is (unexplained == 0)


@pytest.mark.parametrize(
    ("left_at", "earliest", "stored_before", "explained"),
    [
        (50.0, 40.0, set(range(1, 5)), True),  # left recently, not yet stored: the broker had it
        (50.0, 55.0, set(range(1, 5)), False),  # left before the broker could still hold it
        (50.0, 40.0, set(range(1, 11)), False),  # was already stored before the fault
        (70.0, 40.0, set(range(1, 5)), False),  # left after the fault
    ],
)
def test_a_lossy_fault_explains_only_what_the_broker_can_have_held(
    left_at: float, earliest: float, stored_before: set[int], explained: bool
) -> None:
    missing = {5, 6, 7}
    result = run(
        unit(10),
        stored(set(range(1, 11)) - missing),
        windows=[window(60.0, earliest, stored_before, 10)],
        departures=departed(10, left_at),
    )
    assert result.unexplained == (0 if explained else 3)
    assert [r.cause for r in result.ranges] == ["fault:broker_kill@x" if explained else UNEXPLAINED]


def test_a_seq_still_in_the_outbox_is_waiting_not_missing() -> None:
    result = run(unit(10, waiting={9, 10}), stored(set(range(1, 9))))
    assert (result.waiting, result.missing, result.ok) == (2, 0, True)


def test_dead_letters_of_the_units_own_topics_count_others_do_not() -> None:
    letters = [letter(5), letter(6, topic="city/chaos/rogue/events/p1")]
    result = run(unit(10), stored(set(range(1, 11)) - {5, 6}), letters=letters)
    assert result.dead_lettered == 1
    assert result.letter_reasons == Counter({"out_of_range": 1})
    assert result.unexplained == 1  # seq 6's "letter" came from someone else's topic


def test_a_seq_stored_with_two_event_times_is_flagged_as_reused() -> None:
    db = stored(set(range(1, 6)))
    db.copies[3][("sensor_seq", 99)] += 1  # a second event claiming seq 3
    result = run(unit(5), db)
    assert result.reused == [3]
    assert not result.ok


def test_stored_seqs_the_unit_never_produced_are_flagged() -> None:
    result = run(unit(5), stored(set(range(1, 6)) | {10**9}))
    assert result.beyond_last_seq == [10**9]
    assert not result.ok


def test_missing_ranges_are_merged_per_cause() -> None:
    losses = (LossRange("bound_size", 2, 3, 2),)
    result = run(unit(10, losses), stored({1, 4, 7, 8, 9, 10}))
    assert [(r.first, r.last, r.cause) for r in result.ranges] == [
        (2, 3, "unit:bound_size"),
        (5, 6, UNEXPLAINED),
    ]


@pytest.mark.parametrize(
    ("seqs", "inside", "outside"),
    [({1, 2, 3, 7, 9, 10}, [1, 3, 7, 10], [0, 4, 8, 11]), (set(), [], [1])],
)
def test_seq_ranges(seqs: set[int], inside: list[int], outside: list[int]) -> None:
    ranges = SeqRanges(seqs)
    assert len(ranges) == len(seqs)
    assert all(s in ranges for s in inside)
    assert not any(s in ranges for s in outside)


def test_departures_keep_the_earliest_time_an_event_can_have_left() -> None:
    departures = Departures()
    departures.update(10.0, {"rsu-1": UnitSnapshot(3, frozenset({2, 3}))})
    departures.update(11.0, {"rsu-1": UnitSnapshot(5, frozenset({3, 5}))})
    departures.update(12.0, {"rsu-1": UnitSnapshot(5, frozenset())})
    assert [departures.left("rsu-1", s) for s in range(1, 7)] == [
        10.0, 10.0, 11.0, 10.0, 11.0, None
    ]  # fmt: skip


def _row(name: str, seq: int, ts: int, **tags: str) -> dict[str, object]:
    """One series of ``/api/v1/export`` as VictoriaMetrics answers it."""
    metric = {"__name__": name, "gateway": "rsu-3", "site": "chaos", **tags}
    return {"metric": metric, "values": [seq], "timestamps": [ts]}


@pytest.mark.parametrize(
    ("rows", "duplicates"),
    [
        # one aggregate event: one point per class and direction, same name, seq and time
        (
            [
                _row("aggregate_count_seq", 7, 1000, **{"class": "car", "direction": "in"}),
                _row("aggregate_count_seq", 7, 1000, **{"class": "bus", "direction": "in"}),
                _row("aggregate_count_seq", 7, 1000, **{"class": "car", "direction": "out"}),
            ],
            0,
        ),
        # the same point written twice (a redelivery): one duplicate
        ([_row("sensor_seq", 7, 1000), _row("sensor_seq", 7, 1000)], 1),
        # an aggregate redelivered whole: each of its points twice, still one duplicate
        (
            [
                _row("aggregate_count_seq", 7, 1000, **{"class": "car"}),
                _row("aggregate_count_seq", 7, 1000, **{"class": "bus"}),
                _row("aggregate_count_seq", 7, 1000, **{"class": "car"}),
                _row("aggregate_count_seq", 7, 1000, **{"class": "bus"}),
            ],
            1,
        ),
    ],
)
def test_duplicates_are_the_same_point_twice_not_the_points_of_one_event(
    rows: list[dict[str, object]], duplicates: int
) -> None:
    db = stored_from_export(rows)["rsu-3"]
    assert db.seqs() == {7}
    assert db.duplicates(7) == duplicates
    assert db.times(7) == {1000}


def test_an_outbox_file_without_its_tables_yet_reads_as_nothing_produced(tmp_path: Path) -> None:
    # A unit slow to start has created its outbox file but not its tables: the campaign
    # read it and stopped with "no such table: meta".
    import sqlite3

    path = tmp_path / "outbox.sqlite3"
    sqlite3.connect(path).close()
    record = read_unit("rsu-1", path)
    assert record.last_seq == 0
    assert record.waiting == frozenset()
