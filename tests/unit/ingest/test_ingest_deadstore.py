"""The dead-letter store: bounded, durable, shared; a full store holds messages, never drops."""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway.errors import IngestError
from gateway.ingest.acks import AckTracker
from gateway.ingest.deadletter import DeadLetterSink
from gateway.ingest.deadstore import MAX_STORED_PAYLOAD, DeadLetterStore
from gateway.ingest.stats import Stats


def _add(store: DeadLetterStore, payload: bytes, reason: str = "invalid_event") -> int | None:
    return store.add(
        worker="w1", kind="message", reason=reason, detail="d", topic="a/b", payload=payload
    )


def test_store_survives_reopening_and_filters(tmp_path: Path) -> None:
    path = tmp_path / "dl.sqlite3"
    store = DeadLetterStore(path, max_bytes=2**20)
    first = _add(store, b"one")
    _add(store, b"two", reason="out_of_range")
    store.close()
    store = DeadLetterStore(path, max_bytes=2**20)
    assert store.count() == 2
    assert [x.payload for x in store.letters(reason="out_of_range")] == [b"two"]
    assert first is not None
    store.refused_again(first, "db_rejected", "again")
    (letter,) = store.letters(ids=[first])
    assert (letter.reason, letter.detail, letter.attempts) == ("db_rejected", "again", 1)
    assert store.remove([first]) == 1
    assert store.count() == 1
    store.close()


def test_store_is_bounded_and_a_second_handle_sees_the_other_workers_letters(
    tmp_path: Path,
) -> None:
    path = tmp_path / "dl.sqlite3"
    mine = DeadLetterStore(path, max_bytes=2**20)
    other = DeadLetterStore(path, max_bytes=2**20)  # another worker on the same host
    assert _add(other, b"x" * 700_000) is not None
    assert _add(mine, b"y" * 400_000) is None  # over the bound with the other's letter
    assert _add(mine, b"y" * 300_000) is not None
    assert mine.bytes_used() == 1_000_000
    huge = b"z" * (MAX_STORED_PAYLOAD + 10)
    big = DeadLetterStore(tmp_path / "big.sqlite3", max_bytes=2**22)
    assert _add(big, huge) is not None
    (letter,) = big.letters()
    assert letter.truncated and letter.size == len(huge)
    assert len(letter.payload) == MAX_STORED_PAYLOAD
    for store in (mine, other, big):
        store.close()


def test_store_in_an_unusable_place_is_a_clear_error(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    with pytest.raises(IngestError, match="cannot open the dead-letter store"):
        DeadLetterStore(blocker / "dl.sqlite3", max_bytes=2**20)


def test_a_full_store_holds_the_message_unacknowledged_until_there_is_room(
    tmp_path: Path,
) -> None:
    store = DeadLetterStore(tmp_path / "dl.sqlite3", max_bytes=2**20)
    assert _add(store, b"f" * (2**20 - 10)) is not None  # nearly full
    acked: list[int] = []
    acks = AckTracker(lambda mid, qos: acked.append(mid), max_pending=10)
    notices: list[str] = []
    stats = Stats()
    sink = DeadLetterSink(
        store=store,
        notify=lambda reason, topic, payload, detail: notices.append(reason) or None,
        worker="w1",
        stats=stats,
    )
    first, second = acks.track(1, 1), acks.track(2, 1)
    assert first is not None and second is not None
    sink.reject("malformed_json", "a/b", b"{" * 100, "bad", first)
    sink.reject("malformed_json", "a/b", b"[", "bad", second)  # behind the held one
    acks.release()
    assert acked == []  # nothing is acknowledged: the broker keeps both
    assert sink.held == 2
    assert stats.snapshot()["dead_letter_held"] == 2
    assert notices == []
    store.remove([x.id for x in store.letters()])  # an operator purges
    sink.retry()
    acks.release()
    assert acked == [1, 2]
    assert sink.held == 0
    assert [x.payload for x in store.letters()] == [b"{" * 100, b"["]
    assert notices == ["malformed_json", "malformed_json"]
    store.close()
