"""``gateway bench held``: what keeping the byte budget's held events in the outbox costs.

The scene of :mod:`gateway.budget.traffic` (a two-line camera, 2,400 crossings an hour,
an aggregate a minute, two sensors every 10 s) goes event by event (one store per event,
as a camera delivers its crossings frame by frame: the worst case for one row per held
event) through the budget gate into a fresh outbox file, as the app stores it
(``Outbox.add(step.drafts, also=step.write)``). Modes, interleaved and rotated per round:

* ``raw``: no byte budget (``Outbox.add`` alone), the baseline of ``full``;
* ``full``: a budget at level ``full`` (nothing is held, nothing written for it);
* ``memory``: level ``coarse_sensors`` with the held events in memory only (the gate
  before its rows: what ``kill -9`` lost), the baseline of ``held``;
* ``held``: level ``coarse_sensors``, a row per held crossing and summarized reading.

Figures: CPU and wall time per scene event (medians of the rounds, and their spread),
and the CPU time of the gate's step alone at level ``full`` (what ``full`` adds to ``raw``
without the outbox's noise).
"""

from __future__ import annotations

import statistics
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Final

import click

from gateway.bench.load import describe_load, load_1m
from gateway.budget import held
from gateway.budget.gate import BudgetGate
from gateway.budget.traffic import Scene, Truth, scene_drafts
from gateway.budget.usage import WireUsage
from gateway.config.budget import BudgetConfig
from gateway.events import Draft, Topics
from gateway.output import json_option, print_json
from gateway.transport.outbox import Outbox, Synchronous

MODES: Final = ("raw", "full", "memory", "held")
_TOPICS: Final = Topics("city", "bench", "rsu-bench")
_START: Final = 1_796_126_400.0  # 2026-12-01T12:00:00Z
_LEVEL: Final = {"full": 0, "memory": 2, "held": 2}


def _round(mode: str, events: Sequence[Draft], synchronous: Synchronous) -> dict[str, Any]:
    """One mode over the scene in a fresh outbox: CPU and wall µs per event, rows written."""
    with tempfile.TemporaryDirectory(prefix="gateway-bench-held-") as tmp:
        box = Outbox(Path(tmp) / "outbox.sqlite3", _TOPICS, synchronous=synchronous)
        try:
            gate = None
            if mode != "raw":
                loaded = box.transact(held.load)
                cfg = BudgetConfig(bytes_per_day=1 << 30, sensor_interval_s=900)
                usage = WireUsage(Path(tmp) / "budget.json")
                gate = BudgetGate(cfg, usage, held=loaded, durable=mode != "memory")
                gate.policy.index = _LEVEL[mode]
            writes = 0
            cpu, wall = time.process_time(), time.perf_counter()
            for draft in events:
                if gate is None:
                    box.add([draft])
                    continue
                with gate.admit([draft]) as step:
                    box.add(step.drafts, also=step.write, unstored=1)
                    writes += step.write is not None
            cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
            stored = box.depth
        finally:
            box.close()
    n = len(events)
    return {"cpu_us": cpu / n * 1e6, "wall_us": wall / n * 1e6, "stored": stored, "writes": writes}


def _gate_alone(events: Sequence[Draft]) -> float:
    """CPU µs per event of the gate's step at level ``full`` alone (nothing stored)."""
    with tempfile.TemporaryDirectory(prefix="gateway-bench-held-") as tmp:
        cfg = BudgetConfig(bytes_per_day=1 << 30)
        gate = BudgetGate(cfg, WireUsage(Path(tmp) / "budget.json"), durable=True)
        cpu = time.process_time()
        for _ in range(10):
            for draft in events:
                with gate.admit([draft]) as step:
                    assert step.write is None
        return (time.process_time() - cpu) / (10 * len(events)) * 1e6


@click.command("held")
@click.option("--hours", type=click.FloatRange(0.05, 24), default=0.5, show_default=True)
@click.option("--rounds", type=click.IntRange(1, 50), default=5, show_default=True)
@click.option(
    "--synchronous",
    type=click.Choice(["normal", "full"]),
    default="normal",
    show_default=True,
    help="The outbox's [outbox] synchronous (full: an fsync per transaction).",
)
@json_option
def command(hours: float, rounds: int, synchronous: Synchronous, as_json: bool) -> None:
    """The cost of keeping held crossings and summaries durable, next to its baselines."""
    load_start = load_1m()
    truth = Truth()
    events = [d for second in scene_drafts(Scene(), _START, hours * 3600, truth) for d in second]
    runs: dict[str, list[dict[str, Any]]] = {mode: [] for mode in MODES}
    for n in range(rounds):
        for mode in MODES[n % len(MODES) :] + MODES[: n % len(MODES)]:
            runs[mode].append(_round(mode, events, synchronous))
    alone = statistics.median(_gate_alone(events) for _ in range(rounds))
    cpu = {m: statistics.median(r["cpu_us"] for r in runs[m]) for m in MODES}
    wall = {m: statistics.median(r["wall_us"] for r in runs[m]) for m in MODES}
    held_events = truth.total_crossings + sum(truth.readings.values())
    result = {
        "events": len(events),
        "crossings": truth.total_crossings,
        "readings": sum(truth.readings.values()),
        "synchronous": synchronous,
        "rounds": rounds,
        "cpu_us_per_event": {m: round(v, 2) for m, v in cpu.items()},
        "wall_us_per_event": {m: round(v, 2) for m, v in wall.items()},
        "cpu_ratio": {
            "full/raw": round(cpu["full"] / cpu["raw"], 3),
            "held/memory": round(cpu["held"] / cpu["memory"], 3),
        },
        "wall_ratio": {
            "full/raw": round(wall["full"] / wall["raw"], 3),
            "held/memory": round(wall["held"] / wall["memory"], 3),
        },
        "gate_alone_at_full_cpu_us_per_event": round(alone, 2),
        "held_extra_wall_us_per_held_event": round(
            (wall["held"] - wall["memory"]) * len(events) / held_events, 1
        ),
        "per_round": {m: [{k: round(v, 2) for k, v in r.items()} for r in runs[m]] for m in MODES},
        "load_1m": {"start": load_start, "end": load_1m()},
    }
    if as_json:
        print_json(result)
        return
    click.echo(
        f"{len(events):,} events ({truth.total_crossings:,} crossings, {result['readings']:,}"
        f" readings; {hours:g} h of scene), one store per event, {rounds} rounds rotated,"
        f" synchronous={synchronous}; load {load_start} -> {result['load_1m']['end']}"
    )
    for mode in MODES:
        rs = runs[mode]
        c = [r["cpu_us"] for r in rs]
        w = [r["wall_us"] for r in rs]
        click.echo(
            f"  {mode:<7} CPU {cpu[mode]:7.1f} µs/event ({min(c):.1f} .. {max(c):.1f}),"
            f" wall {wall[mode]:7.1f} ({min(w):.1f} .. {max(w):.1f}); stored {rs[0]['stored']:,},"
            f" steps with rows {rs[0]['writes']:,}"
        )
    cpu_ratio, wall_ratio = result["cpu_ratio"], result["wall_ratio"]
    click.echo(
        f"  full/raw CPU {cpu_ratio['full/raw']}, wall {wall_ratio['full/raw']};"
        f" held/memory CPU {cpu_ratio['held/memory']}, wall {wall_ratio['held/memory']}"
        f" (+{result['held_extra_wall_us_per_held_event']} µs wall per held event)"
    )
    click.echo(
        f"  the gate's step alone at level full: {alone:.2f} µs CPU per event"
        f" ({alone / cpu['raw']:.1%} of the raw store)"
    )
    click.echo(describe_load())
