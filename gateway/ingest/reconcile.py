"""Reconcile a unit's manifests against the receipts the database holds (pure functions).

Each manifest states the seqs ``first_seq..last_seq`` the unit allocated, the events it
stored among them (per type, and a chain over their ids) and the loss ranges it
recorded. Against the ``ledger_event`` receipts of that unit, every seq of a range is

* **stored**: at least one receipt (further copies of the same id are duplicates;
  copies with different ids are a **reused** seq: the unit allocated it twice, as after
  a power loss that rolled its outbox back with ``synchronous=normal``);
* **missing, unit**: inside a loss range one of the unit's manifests reported (any
  manifest, also a later one; a range explains at most as many seqs as it counts);
* **waiting**: at or after the oldest seq the unit's newest manifest still had in its
  outbox (not delivered yet, not lost);
* **missing, transit**: none of these. The unit let it go (the broker acknowledged it)
  and it is not in the database: lost between the unit's outbox and the database.

Seqs between two manifests that no manifest covers (a lost manifest, an outbox
recovered from damage) are reconciled the same way, without counts or chain.
The chain is checked when every seq of the range is stored or consumed without an event
(``store_failed``); for a reused seq the later copy (the one the unit kept) is taken,
then the earlier one.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Final, Literal

from gateway.transport.ledger import LossRange, chain_over

Cause = Literal["unit", "transit", "waiting"]
ChainState = Literal["ok", "mismatch", "unverifiable", "none"]
STORE_FAILED: Final = "store_failed"
# A range (between two manifests, say, after a forged seq) wider than this is not walked
# seq by seq; it is reported as one unexplained gap.
MAX_SPAN: Final = 20_000_000


@dataclass(frozen=True, slots=True)
class Receipt:
    """One event the database holds: seq, id, type, point time (ms), copies stored."""

    seq: int
    event_id: str
    type: str
    ts_ms: int
    copies: int = 1


@dataclass(frozen=True, slots=True)
class Manifest:
    """One stored manifest."""

    seq: int
    ts_ms: int
    first_seq: int
    last_seq: int
    events: int
    types: dict[str, int]
    chain_from: str
    chain: str
    losses: tuple[LossRange, ...]
    waiting: int
    waiting_from: int | None
    number: int


@dataclass(frozen=True, slots=True)
class Gap:
    """Consecutive missing seqs with one cause (``unit`` gaps name the unit's cause)."""

    first_seq: int
    last_seq: int
    cause: Cause
    detail: str = ""

    @property
    def count(self) -> int:
        """Seqs in the gap."""
        return self.last_seq - self.first_seq + 1


@dataclass(frozen=True, slots=True)
class Reuse:
    """A seq the database holds under more than one id."""

    seq: int
    event_ids: tuple[str, ...]


@dataclass(slots=True)
class Account:
    """The reconciliation of one manifest's range (or of a range no manifest covers)."""

    first_seq: int
    last_seq: int
    ts_ms: int  # the manifest's time (of the next manifest for an uncovered range)
    manifest_seq: int | None  # None: no manifest covers the range
    stored: int = 0
    duplicates: int = 0
    gaps: list[Gap] = field(default_factory=list)
    reused: list[Reuse] = field(default_factory=list)
    chain: ChainState = "none"
    types: dict[str, int] = field(default_factory=dict)
    types_stored: dict[str, int] = field(default_factory=dict)
    overlaps: list[int] = field(default_factory=list)  # seqs of manifests it overlaps

    @property
    def expected(self) -> int:
        """Seqs in the range."""
        return max(self.last_seq - self.first_seq + 1, 0)

    def missing(self, cause: Cause | None = None) -> int:
        """Missing seqs (of one cause)."""
        return sum(g.count for g in self.gaps if cause is None or g.cause == cause)

    @property
    def unexplained(self) -> bool:
        """Lost in transit, or a chain that does not match: nothing on the unit explains it."""
        return self.missing("transit") > 0 or self.chain == "mismatch"


# Ranges written off after damage or a roll-back span the seqs the outbox skipped to
# continue after its high-water mark: most were never given to an event, ``count`` is
# how many may have been. Such a range explains every seq in it.
WRITTEN_OFF: Final = frozenset({"damaged", "rolled_back"})


class _UnitLosses:
    """The unit's loss ranges; each explains at most ``count`` missing seqs (see above)."""

    def __init__(self, ranges: Iterable[LossRange]) -> None:
        self._ranges = sorted(set(ranges), key=lambda r: (r.first_seq, r.last_seq))
        self._left = [
            r.last_seq - r.first_seq + 1 if r.cause in WRITTEN_OFF else r.count
            for r in self._ranges
        ]

    def explain(self, seq: int) -> str | None:
        for i, r in enumerate(self._ranges):
            if r.first_seq <= seq <= r.last_seq and self._left[i] > 0:
                self._left[i] -= 1
                return r.cause
        return None


def _gaps(missing: list[tuple[int, Cause, str]]) -> list[Gap]:
    gaps: list[Gap] = []
    for seq, cause, detail in missing:
        last = gaps[-1] if gaps else None
        if last and last.last_seq + 1 == seq and (last.cause, last.detail) == (cause, detail):
            gaps[-1] = Gap(last.first_seq, seq, cause, detail)
        else:
            gaps.append(Gap(seq, seq, cause, detail))
    return gaps


def _chain(manifest: Manifest, chosen: list[list[Receipt]]) -> ChainState:
    """Check the chain with the later copy of each reused seq, then with the earlier."""
    for pick in (max, min):
        ids = [pick(copies, key=lambda r: r.ts_ms).event_id for copies in chosen]
        if chain_over(manifest.chain_from, ids) == manifest.chain:
            return "ok"
    return "mismatch"


def reconcile(manifests: Sequence[Manifest], receipts: Iterable[Receipt]) -> list[Account]:
    """Every manifest's account (and the uncovered ranges between them), in seq order."""
    by_seq: dict[int, list[Receipt]] = defaultdict(list)
    for r in receipts:
        by_seq[r.seq].append(r)
    unique = {(m.seq, m.chain): m for m in manifests}
    ordered = sorted(unique.values(), key=lambda m: (m.first_seq, m.seq))
    losses = _UnitLosses(loss for m in ordered for loss in m.losses)
    newest = max(ordered, key=lambda m: (m.ts_ms, m.seq), default=None)
    waiting_from = newest.waiting_from if newest is not None else None
    spans: list[tuple[int, int, Manifest | None, int]] = []
    covered_to = 0
    for m in sorted(ordered, key=lambda m: m.ts_ms):
        if covered_to and m.first_seq > covered_to + 1:
            spans.append((covered_to + 1, m.first_seq - 1, None, m.ts_ms))
        spans.append((m.first_seq, m.last_seq, m, m.ts_ms))
        covered_to = max(covered_to, m.last_seq)
    accounts = []
    for first, last, manifest, ts_ms in spans:
        account = Account(first, last, ts_ms, manifest.seq if manifest else None)
        if last - first + 1 > MAX_SPAN:  # not walked seq by seq: one gap, unexplained
            account.stored = sum(1 for s in by_seq if first <= s <= last)
            account.gaps = [Gap(first, last, "transit", "implausible range: not walked")]
            account.chain = "unverifiable" if manifest is not None else "none"
            accounts.append(account)
            continue
        missing: list[tuple[int, Cause, str]] = []
        chosen: list[list[Receipt]] = []
        verifiable = manifest is not None
        for seq in range(first, last + 1):
            copies = by_seq.get(seq)
            if copies:
                account.stored += 1
                ids = sorted({c.event_id for c in copies})
                account.duplicates += sum(c.copies for c in copies) - len(ids)
                if len(ids) > 1:
                    account.reused.append(Reuse(seq, tuple(ids)))
                chosen.append(copies)
                continue
            cause = losses.explain(seq)
            if cause is not None:
                missing.append((seq, "unit", cause))
                verifiable = verifiable and cause == STORE_FAILED
            elif waiting_from is not None and seq >= waiting_from:
                missing.append((seq, "waiting", ""))
                verifiable = False
            else:
                missing.append((seq, "transit", ""))
                verifiable = False
        account.gaps = _gaps(missing)
        if manifest is not None:
            account.types = dict(manifest.types)
            stored_types: dict[str, int] = defaultdict(int)
            for copies in chosen:
                stored_types[max(copies, key=lambda r: r.ts_ms).type] += 1
            account.types_stored = dict(stored_types)
            account.overlaps = [
                o.seq
                for o in ordered
                if o is not manifest and o.first_seq <= last and first <= o.last_seq
            ]
            account.chain = _chain(manifest, chosen) if verifiable else "unverifiable"
        accounts.append(account)
    return accounts
