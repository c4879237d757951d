"""VictoriaMetrics' four series of a receipt put back together (no server needed)."""

from __future__ import annotations

from array import array

import pytest

from gateway.ingest.ledger_vm import _merge, _sorted
from gateway.ingest.ledgerdb import ManifestPart, collect_manifests
from gateway.ingest.receipts import pack_hex, unpack_hex, unpack_id

_SHIFT = 1 << 44


def series(samples: list[tuple[int, int, str]]) -> list[tuple[array[int], array[int]]]:
    """(ts, seq, id) samples as the four (key, value) arrays the reader keeps, in that order."""
    out = [(array("q"), array("q")) for _ in range(4)]
    for ts, seq, event_id in samples:
        for k, value in enumerate((seq, *pack_hex(event_id, seq))):
            tag = value % 512 if k == 0 else value // _SHIFT % 512
            out[k][0].append(ts * 512 + tag)
            out[k][1].append(value)
    return [_sorted(keys, values) for keys, values in out]


A, B, C = "a" * 32, "b" * 32, "c" * 32


@pytest.mark.parametrize(
    ("samples", "expected"),
    [
        ([(10, 1, A), (11, 2, B)], [(1, A, 10, 1), (2, B, 11, 1)]),
        # two events in one millisecond, the later seq first: sorted by key
        ([(10, 3, B), (10, 2, A)], [(2, A, 10, 1), (3, B, 10, 1)]),
        # a copy written twice
        ([(10, 1, A), (10, 1, A), (11, 2, B)], [(1, A, 10, 2), (2, B, 11, 1)]),
        # a seq reused later with another id: two receipts
        ([(10, 5, A), (20, 5, C)], [(5, A, 10, 1), (5, C, 20, 1)]),
    ],
)
def test_receipts_are_paired_by_time_and_seq_tag(
    samples: list[tuple[int, int, str]], expected: list[tuple[int, str, int, int]]
) -> None:
    assert list(_merge(*series(samples))) == expected


def test_a_receipt_missing_a_part_is_not_made_up() -> None:
    seqs, id0, id1, id2 = series([(10, 1, A), (11, 2, B)])
    id1 = (array("q", id1[0][:1]), array("q", id1[1][:1]))  # id1 of seq 2 never arrived
    assert list(_merge(seqs, id0, id1, id2)) == [(1, A, 10, 1)]


@pytest.mark.parametrize("seq", [0, 1, 511, 512, 2**40 + 3])
@pytest.mark.parametrize("event_id", [A, "0" * 32, "f" * 32, "0123456789abcdef0123456789abcdef"])
def test_unpack_id_is_unpack_hex_for_an_id(seq: int, event_id: str) -> None:
    parts = pack_hex(event_id, seq)
    assert unpack_id(*parts) == unpack_hex(parts, 32) == (event_id, seq % 512)


def test_unpack_id_refuses_parts_of_two_events() -> None:
    a, b = pack_hex(A, 1), pack_hex(B, 2)
    with pytest.raises(ValueError, match="different events"):
        unpack_id(a[0], b[1], a[2])


def manifest_parts(seq: int, first: int, last: int, ts_ms: int) -> list[ManifestPart]:
    """A manifest's head fields one per part, as the VictoriaMetrics reader yields them."""
    fields = {"seq": seq, "seq_first": first, "seq_last": last, "events": last - first + 1}
    fields |= {"waiting": 0, "number": 1}
    fields |= {f"chain{i}": v for i, v in enumerate(pack_hex("1" * 64))}
    fields |= {f"from{i}": v for i, v in enumerate(pack_hex("0" * 64))}
    return [ManifestPart("head", "g", "s", "", ts_ms, {k: v}) for k, v in fields.items()]


def test_two_manifests_in_one_millisecond_are_not_mixed_into_one() -> None:
    alone = collect_manifests(manifest_parts(11, 1, 10, 5) + manifest_parts(33, 12, 32, 6))
    assert [m.seq for m in alone["g"].manifests] == [11, 33]
    # the same two in one ms: VictoriaMetrics holds their fields on one timestamp
    same_ms = collect_manifests(manifest_parts(11, 1, 10, 5) + manifest_parts(33, 12, 32, 5))
    assert same_ms == {}
    # a redelivered manifest (the very same values) is still one manifest
    again = collect_manifests(manifest_parts(11, 1, 10, 5) * 2)
    assert [m.seq for m in again["g"].manifests] == [11]
