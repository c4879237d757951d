"""Reconciling manifests with receipts: stored, unit losses, transit, waiting, reuse, chain."""

from __future__ import annotations

from dataclasses import replace

import pytest

from gateway.ingest.receipts import pack_hex, unpack_hex
from gateway.ingest.reconcile import Manifest, Receipt, reconcile
from gateway.transport.ledger import ZERO_CHAIN, LossRange, chain_over


def ident(seq: int, era: int = 0) -> str:
    return f"{era:04x}{seq:028x}"


def manifest(
    first: int,
    last: int,
    *,
    seq: int | None = None,
    ts: int = 1000,
    era: int = 0,
    losses: tuple[LossRange, ...] = (),
    waiting_from: int | None = None,
    store_failed: frozenset[int] = frozenset(),
) -> Manifest:
    ids = [ident(s, era) for s in range(first, last + 1) if s not in store_failed]
    return Manifest(
        seq=last + 1 if seq is None else seq,
        ts_ms=ts,
        first_seq=first,
        last_seq=last,
        events=len(ids),
        types={"sensor_reading": len(ids)},
        chain_from=ZERO_CHAIN,
        chain=chain_over(ZERO_CHAIN, ids),
        losses=losses,
        waiting=0,
        waiting_from=waiting_from,
        number=1,
    )


def receipts(seqs: range | list[int], era: int = 0, ts: int = 0, copies: int = 1) -> list[Receipt]:
    return [Receipt(s, ident(s, era), "sensor_reading", ts + s, copies) for s in seqs]


@pytest.mark.parametrize(
    ("name", "manifests", "stored", "expect"),
    [
        (
            "complete",
            [manifest(1, 10)],
            receipts(range(1, 11)),
            {"stored": 10, "gaps": [], "chain": "ok", "unexplained": False},
        ),
        (
            "transit",
            [manifest(1, 10)],
            receipts([1, 2, 3, 6, 7, 8, 9, 10]),
            {
                "stored": 8,
                "gaps": [(4, 5, "transit", "")],
                "chain": "unverifiable",
                "unexplained": True,
            },
        ),
        (
            "unit drop reported by a later manifest",
            [
                manifest(1, 10),
                manifest(11, 20, ts=2000, losses=(LossRange("bound_size", 1, 4, 4),)),
            ],
            receipts(range(5, 21)),
            {
                "stored": 6,
                "gaps": [(1, 4, "unit", "bound_size")],
                "chain": "unverifiable",
                "unexplained": False,
            },
        ),
        (
            "a range explains at most its count",
            [manifest(1, 10, losses=(LossRange("bound_size", 1, 4, 2),))],
            receipts(range(5, 11)),
            {
                "stored": 6,
                "gaps": [(1, 2, "unit", "bound_size"), (3, 4, "transit", "")],
                "chain": "unverifiable",
                "unexplained": True,
            },
        ),
        (
            "waiting in the outbox",
            [manifest(1, 10, waiting_from=8)],
            receipts(range(1, 8)),
            {
                "stored": 7,
                "gaps": [(8, 10, "waiting", "")],
                "chain": "unverifiable",
                "unexplained": False,
            },
        ),
        (
            "store_failed seqs keep the chain checkable",
            [
                manifest(
                    1, 10, store_failed=frozenset({5}), losses=(LossRange("store_failed", 5, 5, 1),)
                )
            ],
            receipts([1, 2, 3, 4, 6, 7, 8, 9, 10]),
            {
                "stored": 9,
                "gaps": [(5, 5, "unit", "store_failed")],
                "chain": "ok",
                "unexplained": False,
            },
        ),
        (
            "an id the unit never sent",
            [manifest(1, 3)],
            receipts([1, 2]) + receipts([3], era=7),
            {"stored": 3, "gaps": [], "chain": "mismatch", "unexplained": True},
        ),
    ],
)
def test_accounts(
    name: str, manifests: list[Manifest], stored: list[Receipt], expect: dict[str, object]
) -> None:
    account = reconcile(manifests, stored)[0]
    got = {
        "stored": account.stored,
        "gaps": [(g.first_seq, g.last_seq, g.cause, g.detail) for g in account.gaps],
        "chain": account.chain,
        "unexplained": account.unexplained,
    }
    assert got == expect, name


def test_the_written_off_range_is_the_unit_s_gap() -> None:
    ms = [manifest(1, 3), manifest(31, 40, losses=(LossRange("damaged", 4, 30, 2),))]
    uncovered = reconcile(ms, receipts(range(1, 4)) + receipts(range(31, 41)))[1]
    assert [(g.first_seq, g.last_seq, g.cause, g.detail) for g in uncovered.gaps] == [
        (4, 30, "unit", "damaged")
    ]


def test_duplicates_count_extra_copies_of_one_id() -> None:
    (account,) = reconcile([manifest(1, 5)], receipts(range(1, 6), copies=2))
    assert (account.stored, account.duplicates, account.chain) == (5, 5, "ok")


def test_reused_seqs_are_reported_and_the_chain_is_checked_with_the_later_ids() -> None:
    # Before the power cut seqs 1..10 went out (era 0); the outbox came back at seq 6
    # and gave 6..10 to new events (era 1): the manifest has the survivors and the new.
    ids = [ident(s) for s in range(1, 6)] + [ident(s, 1) for s in range(6, 11)]
    m = replace(manifest(1, 10), chain=chain_over(ZERO_CHAIN, ids))
    stored = receipts(range(1, 11)) + receipts(range(6, 11), era=1, ts=100)
    (account,) = reconcile([m], stored)
    assert [r.seq for r in account.reused] == [6, 7, 8, 9, 10]
    assert account.chain == "ok" and not account.gaps and account.duplicates == 0


def test_a_range_between_manifests_is_reconciled_without_a_chain() -> None:
    ms = [manifest(1, 10, ts=1000), manifest(21, 30, ts=3000)]
    accounts = reconcile(ms, receipts(range(1, 18)) + receipts(range(21, 31)))
    uncovered = accounts[1]
    assert (uncovered.first_seq, uncovered.last_seq, uncovered.manifest_seq) == (11, 20, None)
    assert [(g.first_seq, g.last_seq, g.cause) for g in uncovered.gaps] == [(18, 20, "transit")]
    assert uncovered.chain == "none"


def test_a_redelivered_manifest_counts_once() -> None:
    m = manifest(1, 3)
    assert len(reconcile([m, m], receipts(range(1, 4)))) == 1


@pytest.mark.parametrize("seq", [0, 1, 511, 512, 10**12])
def test_hex_packing_round_trips_within_53_bits(seq: int) -> None:
    text = "f" * 64
    parts = pack_hex(text, seq)
    assert all(p < 2**53 for p in parts)
    assert unpack_hex(parts, 64) == (text, seq % 512)


def test_an_implausible_range_is_one_unexplained_gap_not_a_walk() -> None:
    ms = [manifest(1, 3, ts=1000), manifest(10**15, 10**15 + 2, ts=2000)]
    accounts = reconcile(ms, receipts(range(1, 4)) + receipts(range(10**15, 10**15 + 3)))
    uncovered = accounts[1]
    assert uncovered.unexplained and uncovered.gaps[0].detail.startswith("implausible")
    assert accounts[2].chain == "ok"


def test_a_manifest_with_an_implausible_range_is_refused() -> None:
    from gateway.ingest.mapping import MappingError
    from gateway.ingest.receipts import map_manifest

    data = {
        "first_seq": 1,
        "last_seq": 10**12,
        "events": 0,
        "types": {},
        "chain": "0" * 64,
        "chain_from": "0" * 64,
        "losses": [],
        "lost": {},
        "waiting": 0,
        "number": 1,
    }
    with pytest.raises(MappingError, match="not a manifest"):
        map_manifest(data, {"gateway": "g", "site": "s", "source": "gateway"}, 5, 0)


def _manifest_payload(**data: object) -> bytes:
    import json

    body: dict[str, object] = {
        "first_seq": 1,
        "last_seq": 9,
        "events": 9,
        "types": {"health": 9},
        "chain_from": "0" * 64,
        "chain": "a" * 64,
        "losses": [],
        "lost": {"dropped": 0},
        "waiting": 0,
        "interval_s": 300.0,
        "number": 1,
    }
    body.update(data)
    event = {
        "schema": 1,
        "id": "0" * 31 + "1",
        "seq": 10,
        "gateway": "rsu-0001",
        "site": "sejong-1",
        "source": "gateway",
        "type": "manifest",
        "ts": "2026-11-18T00:00:00.000Z",
        "data": body,
    }
    return json.dumps(event).encode()


@pytest.mark.parametrize(
    ("name", "data", "reason"),
    [
        ("ok", {}, None),
        ("chain not hex", {"chain": "z" * 64}, "invalid_event"),
        ("short chain", {"chain_from": "0" * 63}, "invalid_event"),
        ("negative count", {"types": {"health": -1}}, "invalid_event"),
        ("count beyond 2^53", {"events": 2**60}, "invalid_event"),
        ("losses not a list", {"losses": {"a": 1}}, "invalid_event"),
        (
            "too many losses",
            {"losses": [{"cause": "bound_size", "first_seq": 1, "last_seq": 1, "count": 1}] * 201},
            "invalid_event",
        ),
        (
            "loss cause with a tag break",
            {"losses": [{"cause": "a b,c=d", "first_seq": 1, "last_seq": 1, "count": 1}]},
            "invalid_event",
        ),
        ("counter name", {"lost": {"Dropped!": 1}}, "invalid_event"),
        ("range of 10^12 seqs", {"last_seq": 10**12}, "invalid_event"),
        ("backwards range", {"first_seq": 50, "last_seq": 9}, "invalid_event"),
    ],
)
def test_hostile_manifests_are_dead_lettered_with_a_reason(
    name: str, data: dict[str, object], reason: str | None
) -> None:
    from gateway.ingest.convert import Limits, convert
    from gateway.ingest.decode import RejectedError

    payload = _manifest_payload(**data)
    if reason is None:
        assert convert(payload, Limits(), 1_795_000_000.0).points >= 3, name
        return
    with pytest.raises(RejectedError) as info:
        convert(payload, Limits(), 1_795_000_000.0)
    assert info.value.reason == reason, (name, info.value.detail)
