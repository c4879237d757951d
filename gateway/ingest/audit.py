"""``gateway ingest audit``: per unit and per day, whether every event is in the database.

Reads the manifests published in the window (and those up to a day either side, for the
loss ranges a later manifest reports and the ranges between manifests), the receipts
around it, reconciles them (:mod:`gateway.ingest.reconcile`) and sums the accounts per
unit and per UTC day of the manifest. A day *fails* when a seq is missing that nothing
on the unit explains (lost in transit) or a chain does not match.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Final

from gateway.ingest.ledgerdb import (
    LedgerReader,
    account_lines,
    collect_manifests,
    collect_receipts,
)
from gateway.ingest.reconcile import Account, Gap, reconcile
from gateway.jsontypes import JsonValue

DAY_MS: Final = 86_400_000


@dataclass(slots=True)
class DayReport:
    """One unit's accounts of one UTC day, summed."""

    unit: str
    site: str
    day: str
    manifests: int = 0
    expected: int = 0
    stored: int = 0
    missing_unit: int = 0
    missing_transit: int = 0
    waiting: int = 0
    duplicates: int = 0
    uncovered: int = 0  # seqs no manifest covers (reconciled all the same)
    chain_mismatches: int = 0
    chain_unverified: int = 0
    gaps: list[Gap] = field(default_factory=list)
    reused: list[tuple[int, tuple[str, ...]]] = field(default_factory=list)
    overlapping_manifests: list[int] = field(default_factory=list)
    types: dict[str, int] = field(default_factory=dict)  # what the manifests say was stored
    types_stored: dict[str, int] = field(default_factory=dict)  # what the receipts show

    @property
    def status(self) -> str:
        """The day's verdict.

        ``complete``, ``explained`` (only unit losses), ``waiting``, ``unexplained``, or
        ``unverified`` (events stored but no manifest: nothing to reconcile them with).
        """
        if self.missing_transit or self.chain_mismatches:
            return "unexplained"
        if not self.manifests and not self.expected:
            return "unverified"
        if self.waiting:
            return "waiting"
        return "explained" if self.missing_unit else "complete"

    def add(self, account: Account) -> None:
        """Sum one account into the day."""
        self.manifests += account.manifest_seq is not None
        self.uncovered += account.expected if account.manifest_seq is None else 0
        self.expected += account.expected
        self.stored += account.stored
        self.missing_unit += account.missing("unit")
        self.missing_transit += account.missing("transit")
        self.waiting += account.missing("waiting")
        self.duplicates += account.duplicates
        self.chain_mismatches += account.chain == "mismatch"
        self.chain_unverified += account.chain == "unverifiable"
        self.gaps.extend(account.gaps)
        known = {seq for seq, _ids in self.reused}  # overlapping manifests list a seq twice
        self.reused.extend((r.seq, r.event_ids) for r in account.reused if r.seq not in known)
        for name, count in account.types.items():
            self.types[name] = self.types.get(name, 0) + count
        if account.manifest_seq is not None:
            for name, count in account.types_stored.items():
                self.types_stored[name] = self.types_stored.get(name, 0) + count
        if account.overlaps and account.manifest_seq is not None:
            self.overlapping_manifests.append(account.manifest_seq)

    def json(self) -> dict[str, JsonValue]:
        """The report as JSON."""
        return {
            "unit": self.unit,
            "site": self.site,
            "day": self.day,
            "status": self.status,
            "manifests": self.manifests,
            "expected": self.expected,
            "stored": self.stored,
            "missing_unit": self.missing_unit,
            "missing_transit": self.missing_transit,
            "waiting": self.waiting,
            "duplicates": self.duplicates,
            "uncovered": self.uncovered,
            "chain_mismatches": self.chain_mismatches,
            "chain_unverified": self.chain_unverified,
            "gaps": [
                {
                    "first_seq": g.first_seq,
                    "last_seq": g.last_seq,
                    "count": g.count,
                    "cause": g.cause,
                    "detail": g.detail,
                }
                for g in self.gaps
            ],
            "reused": [{"seq": seq, "ids": list(ids)} for seq, ids in self.reused],
            "overlapping_manifests": list(self.overlapping_manifests),
            "types": dict(sorted(self.types.items())),
            "types_stored": dict(sorted(self.types_stored.items())),
        }


@dataclass(slots=True)
class AuditResult:
    """Every unit's day reports and the account points to write back."""

    days: list[DayReport]
    lines: list[bytes]

    @property
    def failed(self) -> bool:
        """Some day has a gap nothing explains, or a chain mismatch."""
        return any(d.status == "unexplained" for d in self.days)


def _day(ts_ms: int) -> str:
    return dt.datetime.fromtimestamp(ts_ms / 1000, dt.UTC).strftime("%Y-%m-%d")


def audit(
    reader: LedgerReader,
    since_ms: int,
    until_ms: int,
    *,
    unit: str | None = None,
    margin_ms: int = 3_600_000,
) -> AuditResult:
    """Reconcile the manifests published in ``[since_ms, until_ms)``.

    One unit at a time: the manifests of every unit are read first (a few hundred a
    unit and day), then each unit's receipts, reconciled and let go before the next
    unit's are read. So memory grows with the busiest unit's window, not the fleet's.

    Raises:
        LedgerReadError: the database cannot be read.
    """
    manifests = collect_manifests(reader.manifests(since_ms - DAY_MS, until_ms + DAY_MS, unit))
    first_ms, last_ms = since_ms - DAY_MS - margin_ms, until_ms + margin_ms
    units = {unit} if unit is not None else set(manifests) | reader.units(first_ms, last_ms)
    days: dict[tuple[str, str], DayReport] = {}
    lines: list[bytes] = []

    def report_of(gw: str, site: str, ts_ms: int) -> DayReport:
        day = _day(ts_ms)
        report = days.get((gw, day))
        if report is None:
            report = days[(gw, day)] = DayReport(gw, site, day)
        return report

    for gw in sorted(units):
        stored = collect_receipts(reader.receipts(first_ms, last_ms, gw)).get(gw)
        ledger = manifests.get(gw)
        if ledger is None:  # a unit that publishes no manifests
            for r in stored.receipts if stored else []:
                if since_ms <= r.ts_ms < until_ms:
                    report_of(gw, stored.site if stored else "", r.ts_ms).stored += 1
            continue
        accounts = reconcile(ledger.manifests, stored.receipts if stored else [])
        del stored
        chosen = [a for a in accounts if since_ms <= a.ts_ms < until_ms]
        lines += account_lines(gw, ledger.site, chosen)
        for account in chosen:
            report_of(gw, ledger.site, account.ts_ms).add(account)
    by_unit: dict[str, list[DayReport]] = defaultdict(list)
    for (gw, _day_name), report in sorted(days.items()):
        by_unit[gw].append(report)
    return AuditResult([r for gw in sorted(by_unit) for r in by_unit[gw]], lines)


def describe(report: DayReport, max_gaps: int = 20) -> list[str]:
    """The text lines of one day."""
    head = (
        f"{report.unit} {report.day} {report.status.upper()}: {report.stored} of "
        f"{report.expected} seqs stored in {report.manifests} manifest(s); missing "
        f"{report.missing_unit} by the unit, {report.missing_transit} in transit, "
        f"{report.waiting} waiting; {report.duplicates} duplicate(s)"
    )
    if report.status == "unverified":
        head = (
            f"{report.unit} {report.day} UNVERIFIED: {report.stored} events stored, no "
            "manifest to reconcile them with (manifests off, or a unit too old to send them)"
        )
    out = [head]
    short = {t: n - report.types_stored.get(t, 0) for t, n in report.types.items()}
    short = {t: n for t, n in short.items() if n > 0}
    if short:
        out.append(
            "  not stored, by type: " + ", ".join(f"{t} {n}" for t, n in sorted(short.items()))
        )
    if report.uncovered:
        out.append(f"  {report.uncovered} seq(s) between manifests (no manifest covers them)")
    if report.chain_mismatches:
        out.append(
            f"  {report.chain_mismatches} chain mismatch(es): the ids stored are not "
            "the ids the unit sent"
        )
    for gap in report.gaps[:max_gaps]:
        why = {
            "unit": f"dropped by the unit ({gap.detail})",
            "transit": "lost in transit (the unit let it go; not in the database)",
            "waiting": "still in the unit's outbox at its last manifest",
        }[gap.cause]
        out.append(f"  seqs {gap.first_seq}..{gap.last_seq} ({gap.count}): {why}")
    if len(report.gaps) > max_gaps:
        out.append(f"  ... {len(report.gaps) - max_gaps} more gap(s) (--json lists all)")
    if report.missing_transit:
        out.append(
            "  (receipts are read by event time: a unit whose clock was off stamps events "
            "outside the window; re-run with a wider --margin-s before calling them lost)"
        )
    if report.reused:
        seqs = [seq for seq, _ids in report.reused]
        out.append(
            f"  SEQ REUSE: {len(seqs)} seq(s) ({seqs[0]}..{seqs[-1]}) stored with two or more "
            "different ids: the unit allocated them twice (a power loss rolled its outbox "
            "back); every copy is kept"
        )
    if report.overlapping_manifests:
        out.append(
            f"  manifests {report.overlapping_manifests} overlap another manifest's range "
            "(seq reuse)"
        )
    return out
