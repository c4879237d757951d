"""``gateway bench ledger``: what the delivery ledger costs, next to its baseline.

* unit side: ``Outbox.add`` of readings in batches with the ledger account and without
  it (the raw outbox), in interleaved rounds (A B A B), CPU and wall time per event;
* central side: reconciling one unit's synthetic day (``--rate`` events a second,
  manifests every ``--interval-s``) in memory, next to the baseline of only grouping its
  receipts by seq (the least any reconciliation does). Reading the receipts from the
  database is not part of it.
"""

from __future__ import annotations

import statistics
import tempfile
import time
from collections import defaultdict
from pathlib import Path

import click

from gateway.bench.load import describe_load, load_1m
from gateway.events import Draft, Topics
from gateway.ingest.reconcile import Manifest, Receipt, reconcile
from gateway.output import json_option, print_json
from gateway.transport.ledger import ZERO_CHAIN, chain_over
from gateway.transport.outbox import Outbox

_TOPICS = Topics("city", "bench", "rsu-bench")


def _outbox_round(account: bool, events: int, batch: int) -> tuple[float, float]:
    """(CPU µs, wall µs) per stored event."""
    drafts = [
        Draft(
            "sensor_reading",
            "pm-1",
            time.time(),
            {"sensor": "pm-1", "protocol": "bench", "values": {"n": i}, "extra": {}},
        )
        for i in range(batch)
    ]
    with (
        tempfile.TemporaryDirectory() as tmp,
        Outbox(Path(tmp) / "o.db", _TOPICS, account=account) as box,
    ):
        cpu, wall = time.process_time(), time.perf_counter()
        for _ in range(events // batch):
            box.add(drafts)
        n = (events // batch) * batch
        return (time.process_time() - cpu) / n * 1e6, (time.perf_counter() - wall) / n * 1e6


def _day(rate: float, interval_s: float, seconds: float) -> tuple[list[Manifest], list[Receipt]]:
    """A unit's manifests and receipts: each range opens with the previous manifest."""
    per = max(int(rate * interval_s), 1)
    manifests: list[Manifest] = []
    receipts: list[Receipt] = []
    first, chain = 1, ZERO_CHAIN
    for k in range(int(seconds // interval_s)):
        last = first + per - 1
        for seq in range(first, last + 1):
            kind = "manifest" if k and seq == first else "sensor_reading"
            receipts.append(Receipt(seq, f"{seq:032x}", kind, k * 1000 + seq - first))
        end = chain_over(chain, (f"{seq:032x}" for seq in range(first, last + 1)))
        manifests.append(
            Manifest(
                last + 1,
                (k + 1) * 1000,
                first,
                last,
                per,
                {"sensor_reading": per},
                chain,
                end,
                (),
                0,
                None,
                k + 1,
            )
        )
        first, chain = last + 1, end
    return manifests, receipts


def _group(receipts: list[Receipt]) -> int:
    by_seq: dict[int, list[Receipt]] = defaultdict(list)
    for r in receipts:
        by_seq[r.seq].append(r)
    return len(by_seq)


@click.command("ledger")
@click.option(
    "--events",
    type=click.IntRange(1000),
    default=20_000,
    show_default=True,
    help="Events stored per outbox round.",
)
@click.option("--batch", type=click.IntRange(1), default=50, show_default=True)
@click.option("--rounds", type=click.IntRange(1), default=5, show_default=True)
@click.option(
    "--rate",
    type=click.FloatRange(0.1),
    default=20.0,
    show_default=True,
    help="Events a second of the reconciled unit.",
)
@click.option("--interval-s", type=click.FloatRange(1), default=300.0, show_default=True)
@click.option(
    "--hours",
    type=click.FloatRange(0.1, 24),
    default=1.0,
    show_default=True,
    help="Length of the reconciled stretch.",
)
@json_option
def command(
    *,
    events: int,
    batch: int,
    rounds: int,
    rate: float,
    interval_s: float,
    hours: float,
    as_json: bool,
) -> None:
    """The ledger's cost on the outbox and of a reconciliation, next to baselines."""
    load_start = load_1m()
    outbox: dict[str, list[tuple[float, float]]] = {"raw": [], "ledger": []}
    for _ in range(rounds):
        outbox["raw"].append(_outbox_round(False, events, batch))
        outbox["ledger"].append(_outbox_round(True, events, batch))
    manifests, receipts = _day(rate, interval_s, hours * 3600)
    recon: dict[str, list[float]] = {"group": [], "reconcile": []}
    for _ in range(rounds):
        start = time.process_time()
        _group(receipts)
        recon["group"].append(time.process_time() - start)
        start = time.process_time()
        accounts = reconcile(manifests, receipts)
        recon["reconcile"].append(time.process_time() - start)
    assert all(a.chain == "ok" for a in accounts)
    med = {k: statistics.median(c for c, _ in v) for k, v in outbox.items()}
    result = {
        "load_start": load_start,
        "load_end": load_1m(),
        "outbox_cpu_us_per_event": {k: [round(c, 2) for c, _ in v] for k, v in outbox.items()},
        "outbox_wall_us_per_event": {k: [round(w, 2) for _, w in v] for k, v in outbox.items()},
        "outbox_cpu_median_us": {k: round(v, 2) for k, v in med.items()},
        "outbox_cpu_ratio": round(med["ledger"] / med["raw"], 3),
        "reconcile_receipts": len(receipts),
        "reconcile_cpu_s": {k: [round(x, 3) for x in v] for k, v in recon.items()},
        "reconcile_us_per_receipt": round(
            statistics.median(recon["reconcile"]) / len(receipts) * 1e6, 2
        ),
    }
    if as_json:
        print_json(result)
        return
    click.echo(f"outbox.add, {events} events in batches of {batch}, {rounds} rounds A B:")
    for k in ("raw", "ledger"):
        cpu = ", ".join(f"{c:.1f}" for c, _ in outbox[k])
        click.echo(f"  {k:<7} CPU µs/event median {med[k]:.2f} (rounds {cpu})")
    click.echo(f"  ledger / raw: {result['outbox_cpu_ratio']}")
    click.echo(
        f"reconcile {len(receipts)} receipts ({hours} h at {rate}/s, {len(manifests)} manifests): "
        f"median {statistics.median(recon['reconcile']):.3f} s CPU "
        f"({result['reconcile_us_per_receipt']} µs/receipt); grouping alone "
        f"{statistics.median(recon['group']):.3f} s"
    )
    click.echo(describe_load())
