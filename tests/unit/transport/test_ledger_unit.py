"""The unit's delivery ledger: manifests cut in the outbox's own transactions."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from gateway.events import Draft, Topics, validate_event
from gateway.transport.ledger import ZERO_CHAIN, chain_over
from gateway.transport.outbox import Outbox

TOPICS = Topics("city", "sejong-1", "rsu-0001")


def reading(i: int, pad: int = 0) -> Draft:
    return Draft(
        "sensor_reading",
        "pm-1",
        1_795_545_600.0 + i,
        {"sensor": "pm-1", "protocol": "test", "values": {"i": i, "pad": "x" * pad}, "extra": {}},
    )


def health(i: int) -> Draft:
    return Draft("health", "gateway", 1_795_545_600.0 + i, {"uptime_s": float(i)})


def manifest_of(box: Outbox) -> dict[str, object]:
    stored = box.add_manifest(1_795_545_700.0, 300.0)
    (row,) = box.stored(stored.seqs[0] - 1, stored.seqs[0], 1)
    event = json.loads(row.payload)
    validate_event(event)
    assert row.topic == "city/sejong-1/rsu-0001/events/gateway/manifest"
    data: dict[str, object] = event["data"]
    data["seq"] = event["seq"]
    data["id"] = event["id"]
    return data


def test_manifests_cover_every_seq_once_with_counts_and_a_chain(tmp_path: Path) -> None:
    with Outbox(tmp_path / "o.db", TOPICS) as box:
        first = box.add([reading(i) for i in range(5)] + [health(5)])
        one = manifest_of(box)
        second = box.add([reading(i) for i in range(3)])
        two = manifest_of(box)
    assert (one["first_seq"], one["last_seq"], one["seq"]) == (1, 6, 7)
    assert one["types"] == {"health": 1, "sensor_reading": 5}
    assert one["events"] == 6 and one["number"] == 1
    assert one["chain_from"] == ZERO_CHAIN
    assert one["chain"] == chain_over(ZERO_CHAIN, first.ids)
    assert one["waiting"] == 6 and one["waiting_from"] == 1
    # The manifest is the first event of the next range: manifests account for each other.
    assert (two["first_seq"], two["last_seq"]) == (7, 10)
    assert two["types"] == {"manifest": 1, "sensor_reading": 3}
    assert two["chain_from"] == one["chain"]
    assert two["chain"] == chain_over(str(one["chain"]), [str(one["id"]), *second.ids])


def test_an_empty_account_still_gives_a_manifest(tmp_path: Path) -> None:
    with Outbox(tmp_path / "o.db", TOPICS) as box:
        one = manifest_of(box)
    assert (one["first_seq"], one["last_seq"], one["events"], one["types"]) == (1, 0, 0, {})
    assert "waiting_from" not in one and one["waiting"] == 0


def test_drops_by_the_bound_are_reported_by_the_next_manifest_whatever_their_seqs(
    tmp_path: Path,
) -> None:
    with Outbox(tmp_path / "o.db", TOPICS, max_bytes=256 * 1024) as box:
        box.add([reading(i, pad=200) for i in range(10)])
        assert manifest_of(box)["losses"] == []
        for start in range(0, 3000, 100):  # far beyond the bound: the oldest are dropped
            box.add([reading(i, pad=200) for i in range(start, start + 100)])
        dropped = box.dropped
        two = manifest_of(box)
        three = manifest_of(box)
    assert dropped > 0
    losses = two["losses"]
    assert isinstance(losses, list) and losses
    assert sum(r["count"] for r in losses) == dropped
    assert {r["cause"] for r in losses} == {"bound_size"}
    assert losses[0]["first_seq"] == 1  # seqs of the first manifest's range too
    assert two["lost"]["dropped"] == dropped  # type: ignore[index]
    assert three["losses"] == []  # reported once


def test_the_account_survives_a_process_that_never_closed(tmp_path: Path) -> None:
    path = tmp_path / "o.db"
    box = Outbox(path, TOPICS)
    stored = box.add([reading(i) for i in range(4)])
    shutil.copy(path, tmp_path / "copy.db")  # what a kill -9 leaves: the db and its WAL
    shutil.copy(path.with_name("o.db-wal"), tmp_path / "copy.db-wal")
    box.close()
    for suffix in ("", "-wal"):
        shutil.copy(tmp_path / f"copy.db{suffix}", tmp_path / f"o.db{suffix}")
    path.with_name("o.db-shm").unlink(missing_ok=True)
    with Outbox(path, TOPICS) as again:
        more = again.add([reading(9)])
        one = manifest_of(again)
    assert (one["first_seq"], one["last_seq"]) == (1, 5)
    assert one["chain"] == chain_over(ZERO_CHAIN, [*stored.ids, *more.ids])


def test_after_damage_the_next_manifest_starts_after_the_written_off_range(
    tmp_path: Path,
) -> None:
    path = tmp_path / "o.db"
    with Outbox(path, TOPICS) as box:
        box.add([reading(i) for i in range(5)])
        assert manifest_of(box)["last_seq"] == 5
        box.add([reading(i) for i in range(5)])
    path.write_bytes(b"garbage" * 1000)  # scribbled over: quarantined at the next open
    for suffix in ("-wal", "-shm"):
        path.with_name(path.name + suffix).unlink(missing_ok=True)
    with Outbox(path, TOPICS) as again:
        recovery = again.recovered
        assert recovery is not None and recovery.cause == "damaged"
        after = manifest_of(again)
    assert after["first_seq"] == recovery.last_seq + 1  # a fresh account after the mark
    damaged = [r for r in after["losses"] if r["cause"] == "damaged"]  # type: ignore[union-attr]
    assert damaged and damaged[0]["first_seq"] <= 7 and damaged[0]["last_seq"] == recovery.last_seq


def test_a_detected_roll_back_is_explained_by_the_next_manifest(tmp_path: Path) -> None:
    # Seqs 1..10 synced, 11..50 delivered and then lost by a power cut that the seq record
    # (written at 50) detects: the outbox continues after its mark, and the next manifest
    # accounts for the range with its rolled_back loss, so the audit explains every seq.
    from gateway.ingest.reconcile import Manifest, Receipt, reconcile
    from gateway.transport.ledger import LossRange

    path = tmp_path / "outbox.sqlite3"
    snapshot = tmp_path / "snap"
    snapshot.mkdir()
    box = Outbox(path, TOPICS)
    early = box.add([reading(i) for i in range(10)])
    for suffix in ("", "-wal"):
        shutil.copy(str(path) + suffix, str(snapshot / path.name) + suffix)
    late = box.add([reading(i) for i in range(10, 50)])
    box.enforce()  # the record says 50
    shutil.copy(path.with_name(path.name + ".state"), snapshot / (path.name + ".state"))
    box.close()
    with Outbox(snapshot / path.name, TOPICS) as again:
        assert again.recovered is not None and again.recovered.cause == "rolled_back"
        after = again.add([reading(i) for i in range(5)])
        data = manifest_of(again)
    assert data["first_seq"] == 1 and data["last_seq"] == after.seqs[-1]
    losses = [LossRange(**r) for r in data["losses"]]  # type: ignore[arg-type, union-attr]
    assert [r.cause for r in losses] == ["rolled_back"]
    manifest = Manifest(
        seq=int(data["seq"]),  # type: ignore[call-overload]
        ts_ms=0,
        first_seq=1,
        last_seq=after.seqs[-1],
        events=int(data["events"]),  # type: ignore[call-overload]
        types={},
        chain_from=str(data["chain_from"]),
        chain=str(data["chain"]),
        losses=tuple(losses),
        waiting=0,
        waiting_from=None,
        number=1,
    )
    # What reached the database: everything sent before the cut, and the events after it.
    runs = (early, late, after)
    stored = [
        Receipt(seq, event_id, "sensor_reading", seq)
        for run in runs
        for seq, event_id in zip(run.seqs, run.ids, strict=True)
    ]
    (account,) = reconcile([manifest], stored)
    assert account.missing("transit") == 0 and account.missing("waiting") == 0
    assert account.stored == 55 and account.missing("unit") == account.expected - 55
    assert not account.reused and account.chain == "unverifiable"
