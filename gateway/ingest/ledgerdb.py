"""The ledger in the database: what a reader gives back, how it is assembled, the accounts.

Receipts and manifests are read back through a :class:`LedgerReader`, one per query API
(``[ingest.influx] query_api``, :mod:`gateway.ingest.ledger_readers`): VictoriaMetrics'
``/api/v1/export`` or InfluxQL's ``/query``. A reader yields typed records
(:class:`StoredReceipt`, :class:`ManifestPart`) as it streams; :func:`collect_receipts`
and :func:`collect_manifests` assemble them per unit, the same way whatever the reader.
Every worker writes its share of the receipts to the one database, so any process
reading it sees the whole stream.

Accounts go back as points (``docs/ledger.md``): ``ledger_account`` per reconciled range
(tags ``gateway``, ``site``, ``status``) and ``ledger_gap`` per missing range (tag
``cause``), at the manifest's time (the i-th gap i ms later). Re-running an audit writes
the same points again (InfluxDB overwrites them; VictoriaMetrics keeps the copies).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Final, Literal, Protocol

from gateway.ingest.ledger_http import LedgerReadError
from gateway.ingest.points import Point, to_line
from gateway.ingest.receipts import unpack_hex
from gateway.ingest.reconcile import Account, Manifest, Receipt
from gateway.transport.ledger import LossRange

__all__ = [
    "ACCOUNT",
    "GAP",
    "LedgerReadError",
    "LedgerReader",
    "ManifestPart",
    "StoredReceipt",
    "UnitLedger",
    "account_lines",
    "collect_manifests",
    "collect_receipts",
]

ACCOUNT: Final = "ledger_account"
GAP: Final = "ledger_gap"


@dataclass(slots=True)
class UnitLedger:
    """What the database holds of one unit's ledger."""

    site: str = ""
    manifests: list[Manifest] = field(default_factory=list)
    receipts: list[Receipt] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class StoredReceipt:
    """One receipt as a reader found it: the unit, its site, and the receipt."""

    gateway: str
    site: str
    receipt: Receipt


@dataclass(frozen=True, slots=True)
class ManifestPart:
    """Fields of one manifest point (all of them, or one per record: readers differ).

    ``kind``: ``head`` (``ledger_manifest``), ``type`` (``ledger_manifest_type``, ``label``
    the event type) or ``loss`` (``ledger_manifest_loss``, ``label`` the cause).
    """

    kind: Literal["head", "type", "loss"]
    gateway: str
    site: str
    label: str
    ts_ms: int
    fields: dict[str, int]


class LedgerReader(Protocol):
    """Reads receipts and manifests stamped in ``[start_ms, end_ms]`` (both ms included).

    Each method streams; ``gateway`` restricts to one unit. Raises
    :class:`LedgerReadError` when the database cannot be read.
    """

    def receipts(self, start_ms: int, end_ms: int, gateway: str | None) -> Iterator[StoredReceipt]:
        """The ``ledger_event`` receipts (a copy stored twice counts in ``copies``)."""
        ...

    def manifests(self, start_ms: int, end_ms: int, gateway: str | None) -> Iterator[ManifestPart]:
        """The fields of the ``ledger_manifest*`` points."""
        ...

    def units(self, start_ms: int, end_ms: int) -> set[str]:
        """The units with receipts in the window (a few more is harmless, none fewer)."""
        ...


def collect_receipts(found: Iterable[StoredReceipt]) -> dict[str, UnitLedger]:
    """The receipts per unit."""
    out: dict[str, UnitLedger] = defaultdict(UnitLedger)
    for item in found:
        unit = out[item.gateway]
        unit.site = item.site
        unit.receipts.append(item.receipt)
    return dict(out)


def collect_manifests(parts: Iterable[ManifestPart]) -> dict[str, UnitLedger]:
    """The manifests per unit, oldest first (one whose fields did not all arrive is left out).

    A manifest's loss ranges are the ``loss`` points of its unit within 1 s after it.
    Two manifests of one unit stamped in the same millisecond cannot be told apart where
    the database stores milliseconds (VictoriaMetrics: their fields land on one
    timestamp); a head whose fields arrive with two different values is left out, so
    its range is reconciled as one no manifest covers, not against a mixed-up chain.
    """
    heads: dict[tuple[str, int], dict[str, int]] = defaultdict(dict)
    clashed: set[tuple[str, int]] = set()
    sites: dict[str, str] = {}
    types: dict[tuple[str, int], dict[str, int]] = defaultdict(dict)
    losses: dict[tuple[str, str, int], dict[str, int]] = defaultdict(dict)
    for part in parts:
        sites[part.gateway] = part.site
        if part.kind == "type":
            if "count" in part.fields:
                types[(part.gateway, part.ts_ms)][part.label] = part.fields["count"]
        elif part.kind == "loss":
            losses[(part.gateway, part.label, part.ts_ms)].update(part.fields)
        else:
            head = heads[(part.gateway, part.ts_ms)]
            if any(head.get(k, v) != v for k, v in part.fields.items()):
                clashed.add((part.gateway, part.ts_ms))
            head.update(part.fields)
    out: dict[str, UnitLedger] = defaultdict(UnitLedger)
    loss_by_unit: dict[str, list[tuple[int, LossRange]]] = defaultdict(list)
    for (gw, cause, ts), f in losses.items():
        if {"seq_first", "seq_last", "count"} <= f.keys():
            loss_by_unit[gw].append(
                (ts, LossRange(cause, f["seq_first"], f["seq_last"], f["count"]))
            )
    for (gw, ts), f in sorted(heads.items(), key=lambda item: item[0][1]):
        if (gw, ts) in clashed:
            continue
        try:
            chain, _ = unpack_hex([f[f"chain{i}"] for i in range(6)], 64)
            chain_from, _ = unpack_hex([f[f"from{i}"] for i in range(6)], 64)
            manifest = Manifest(
                seq=f["seq"],
                ts_ms=ts,
                first_seq=f["seq_first"],
                last_seq=f["seq_last"],
                events=f["events"],
                types=types.get((gw, ts), {}),
                chain_from=chain_from,
                chain=chain,
                losses=tuple(r for t, r in loss_by_unit[gw] if ts <= t < ts + 1000),
                waiting=f["waiting"],
                waiting_from=f.get("waiting_from"),
                number=f["number"],
            )
        except (KeyError, ValueError):
            continue  # a manifest whose fields did not all arrive (yet)
        out[gw].site = sites.get(gw, "")
        out[gw].manifests.append(manifest)
    return dict(out)


def account_lines(gateway: str, site: str, accounts: list[Account]) -> list[bytes]:
    """The ``ledger_account`` and ``ledger_gap`` points of a unit's accounts."""
    lines: list[bytes] = []
    for account in accounts:
        t = account.ts_ms * 1_000_000
        status = (
            "unexplained"
            if account.unexplained
            else "waiting"
            if account.missing("waiting")
            else "complete"
            if not account.gaps
            else "explained"
        )
        tags = {"gateway": gateway, "site": site, "status": status}
        fields: dict[str, int | float | bool | str] = {
            "seq_first": account.first_seq,
            "seq_last": account.last_seq,
            "expected": account.expected,
            "stored": account.stored,
            "missing": account.missing(),
            "missing_unit": account.missing("unit"),
            "missing_transit": account.missing("transit"),
            "waiting": account.missing("waiting"),
            "duplicates": account.duplicates,
            "reused": len(account.reused),
            "chain_ok": {"ok": 1, "mismatch": 0}.get(account.chain, -1),
        }
        lines.append(to_line(Point(ACCOUNT, tags, fields, t)).encode())
        for i, gap in enumerate(account.gaps):
            gap_tags = {
                "gateway": gateway,
                "site": site,
                "cause": f"unit:{gap.detail}" if gap.cause == "unit" else gap.cause,
            }
            gap_fields: dict[str, int | float | bool | str] = {
                "seq_first": gap.first_seq,
                "seq_last": gap.last_seq,
                "count": gap.count,
            }
            lines.append(
                to_line(Point(GAP, gap_tags, gap_fields, t + (i + 1) * 1_000_000)).encode()
            )
    return lines
