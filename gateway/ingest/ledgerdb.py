"""Read the ledger (receipts and manifests) back from the database; write the accounts.

The reading side speaks VictoriaMetrics' ``/api/v1/export`` (JSON lines of raw samples,
duplicates included), at the ``[ingest.influx] url`` the workers write to. Every worker
writes its share of the receipts there, so any process reading it sees the whole stream.

Accounts go back as points (``docs/ledger.md``): ``ledger_account`` per reconciled range
(tags ``gateway``, ``site``, ``status``) and ``ledger_gap`` per missing range (tag
``cause``), at the manifest's time (the i-th gap i ms later). Re-running an audit writes
the same points again (InfluxDB overwrites them; VictoriaMetrics keeps the copies).
"""

from __future__ import annotations

import json
import urllib.error
import urllib.parse
import urllib.request
from collections import Counter, defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, Final

from gateway.errors import GatewayError
from gateway.ingest.points import Point, to_line
from gateway.ingest.receipts import MANIFEST, MANIFEST_LOSS, MANIFEST_TYPE, RECEIPT, unpack_hex
from gateway.ingest.reconcile import Account, Manifest, Receipt
from gateway.transport.ledger import LossRange

ACCOUNT: Final = "ledger_account"
GAP: Final = "ledger_gap"
_TAG_SHIFT: Final = 1 << 44


class LedgerReadError(GatewayError):
    """The database could not be read (away, refused, not VictoriaMetrics)."""


@dataclass(slots=True)
class UnitLedger:
    """What the database holds of one unit's ledger."""

    site: str = ""
    manifests: list[Manifest] = field(default_factory=list)
    receipts: list[Receipt] = field(default_factory=list)


def _export(url: str, match: str, start_ms: int, end_ms: int, timeout: float) -> Iterator[Any]:
    query = urllib.parse.urlencode(
        {"match[]": match, "start": f"{start_ms / 1000:.3f}", "end": f"{end_ms / 1000:.3f}"}
    )
    address = f"{url.rstrip('/')}/api/v1/export?{query}"
    try:
        with urllib.request.urlopen(address, timeout=timeout) as resp:
            body = resp.read().decode()
    except (urllib.error.URLError, OSError, ValueError) as exc:
        raise LedgerReadError(f"cannot read the ledger from {url}: {exc}") from exc
    for line in body.splitlines():
        if line:
            yield json.loads(line)


def _selector(name: str, gateway: str | None) -> str:
    labels = [f'__name__=~"{name}"'] + ([f'gateway="{gateway}"'] if gateway else [])
    return "{" + ",".join(labels) + "}"


def read_receipts(
    url: str, start_ms: int, end_ms: int, gateway: str | None = None, timeout: float = 120.0
) -> dict[str, UnitLedger]:
    """The ``ledger_event`` receipts stamped in ``[start_ms, end_ms]``, per unit."""
    # (gateway, type, ts) -> field -> values (a value twice = a copy written twice)
    samples: dict[tuple[str, str, str, int], dict[str, Counter[int]]] = defaultdict(
        lambda: defaultdict(Counter)
    )
    for row in _export(url, _selector(f"{RECEIPT}_.+", gateway), start_ms, end_ms, timeout):
        labels = row["metric"]
        name = str(labels["__name__"])[len(RECEIPT) + 1 :]
        gw, site = str(labels.get("gateway", "")), str(labels.get("site", ""))
        event_type = str(labels.get("type", ""))
        for value, ts in zip(row["values"], row["timestamps"], strict=True):
            samples[(gw, site, event_type, int(ts))][name][int(value)] += 1
    out: dict[str, UnitLedger] = defaultdict(UnitLedger)
    for (gw, site, event_type, ts), fields in samples.items():
        unit = out[gw]
        unit.site = site
        parts: dict[int, list[int]] = defaultdict(lambda: [0, 0, 0])
        for i in range(3):
            for value in fields.get(f"id{i}", Counter()):
                parts[value // _TAG_SHIFT][i] = value
        for seq, copies in fields.get("seq", Counter()).items():
            found = parts.get(seq % 512)
            if found is None:
                continue
            event_id, _tag = unpack_hex(found, 32)
            unit.receipts.append(Receipt(seq, event_id, event_type, ts, copies))
    return dict(out)


def read_manifests(
    url: str, start_ms: int, end_ms: int, gateway: str | None = None, timeout: float = 120.0
) -> dict[str, UnitLedger]:
    """The manifests stored in ``[start_ms, end_ms]``, per unit, oldest first."""
    heads: dict[tuple[str, int], dict[str, int]] = defaultdict(dict)
    sites: dict[str, str] = {}
    types: dict[tuple[str, int], dict[str, int]] = defaultdict(dict)
    losses: dict[tuple[str, str, int], dict[str, int]] = defaultdict(dict)
    for row in _export(url, _selector(f"{MANIFEST}_.+", gateway), start_ms, end_ms, timeout):
        labels = row["metric"]
        name = str(labels["__name__"])
        gw = str(labels.get("gateway", ""))
        sites[gw] = str(labels.get("site", ""))
        for value, ts in zip(row["values"], row["timestamps"], strict=True):
            if name.startswith(MANIFEST_TYPE + "_"):
                types[(gw, int(ts))][str(labels.get("type", ""))] = int(value)
            elif name.startswith(MANIFEST_LOSS + "_"):
                field_name = name[len(MANIFEST_LOSS) + 1 :]
                losses[(gw, str(labels.get("cause", "")), int(ts))][field_name] = int(value)
            else:
                heads[(gw, int(ts))][name[len(MANIFEST) + 1 :]] = int(value)
    out: dict[str, UnitLedger] = defaultdict(UnitLedger)
    loss_by_unit: dict[str, list[tuple[int, LossRange]]] = defaultdict(list)
    for (gw, cause, ts), f in losses.items():
        if {"seq_first", "seq_last", "count"} <= f.keys():
            loss_by_unit[gw].append(
                (ts, LossRange(cause, f["seq_first"], f["seq_last"], f["count"]))
            )
    for (gw, ts), f in sorted(heads.items(), key=lambda item: item[0][1]):
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
