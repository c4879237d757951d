"""``gateway bench ingest``: events/s of one and two ingest workers against a bare subscriber.

Each phase drains the same backlog: its consumers first subscribe with a persistent
session and go offline, a publisher process preloads N events (QoS 1) into the
broker, then the consumers reconnect and the clock runs until the last event is
handled. That measures the consumer side alone, whatever the publisher's speed.

- ``bare``: a paho subscriber that only receives and parses the JSON (the baseline);
- ``ingest x1``: one worker end to end into the database (points written, HTTP 204);
- ``bare x2``: two bare subscribers on one shared subscription (the baseline of x2:
  what the broker can deliver to two consumers on this machine);
- ``ingest x2``: two workers (two processes) on one shared subscription.

Each consumer runs in its own process, which reports its peak RSS.
"""

from __future__ import annotations

import multiprocessing as mp
import tempfile
import time
from pathlib import Path
from typing import Any

import click

from gateway.bench.ingest_procs import bare_main, ingest_main, publisher_main, start_servers
from gateway.bench.load import load_1m
from gateway.localservers import Server
from gateway.output import json_option, print_json


def run_phase(
    *,
    ctx: Any,
    targets: list[tuple[Any, tuple[Any, ...]]],
    port: int,
    count: int,
    gw: int,
    conf: dict[str, Any],
) -> dict[str, Any]:
    """Subscribe the consumers, preload ``count`` events, then time the drain."""
    pipes, procs = [], []
    for target, args in targets:
        parent, child = ctx.Pipe()
        proc = ctx.Process(target=target, args=(*args, child), daemon=True)
        proc.start()
        if target is ingest_main:
            parent.send(conf)
        pipes.append(parent)
        procs.append(proc)
    for pipe in pipes:
        if not pipe.poll(60) or pipe.recv() != "subscribed":
            raise click.ClickException("a consumer did not subscribe")
    pub_parent, pub_child = ctx.Pipe()
    publisher = ctx.Process(target=publisher_main, args=(port, count, gw, pub_child), daemon=True)
    publisher.start()
    if not pub_parent.poll(300):
        raise click.ClickException("the publisher did not finish")
    published = pub_parent.recv()
    publisher.join(10)
    latest = [0] * len(pipes)
    start = time.perf_counter()
    for pipe in pipes:
        pipe.send("go")
    deadline = time.monotonic() + 300
    while sum(latest) < count and time.monotonic() < deadline:
        for i, pipe in enumerate(pipes):
            while pipe.poll():
                latest[i] = pipe.recv()
        time.sleep(0.001)
    elapsed = time.perf_counter() - start
    for pipe in pipes:
        pipe.send("stop")
    rss = []
    for pipe, proc in zip(pipes, procs, strict=True):
        while True:  # skip progress messages still in the pipe
            msg = pipe.recv()
            if isinstance(msg, dict):
                rss.append(round(msg["rss_mb"], 1))
                break
        proc.join(20)
    if sum(latest) < count:
        raise click.ClickException(f"only {sum(latest)} of {count} events were handled")
    return {
        "events_per_s": round(count / elapsed, 1),
        "seconds": round(elapsed, 3),
        "per_consumer": latest,
        "rss_mb": rss,
        "publish_events_per_s": round(published["publish_eps"], 1),
    }


def median_run(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Return the run with the median events/s, every run's events/s and their spread."""
    ordered = sorted(runs, key=lambda r: r["events_per_s"])
    rates = [r["events_per_s"] for r in runs]
    middle = ordered[len(ordered) // 2]["events_per_s"]
    return {
        **ordered[len(ordered) // 2],
        "all_events_per_s": rates,
        "min_events_per_s": min(rates),
        "max_events_per_s": max(rates),
        "spread_pct": round(100 * (max(rates) - min(rates)) / middle, 1) if middle else None,
    }


def round_ratios(
    runs: dict[str, list[dict[str, Any]]], candidate: str, baseline: str
) -> dict[str, Any] | None:
    """Ratio of ``candidate`` to ``baseline`` within each round (A B A B), median and range.

    Each round's candidate is compared with the baseline measured next to it, so a
    neighbour's load that comes and goes moves both sides of a ratio together.
    """
    if candidate not in runs or baseline not in runs:
        return None
    ratios = [
        round(c["events_per_s"] / b["events_per_s"], 3)
        for c, b in zip(runs[candidate], runs[baseline], strict=True)
        if b["events_per_s"]
    ]
    if not ratios:
        return None
    ordered = sorted(ratios)
    return {
        "median": ordered[len(ordered) // 2],
        "min": ordered[0],
        "max": ordered[-1],
        "per_round": ratios,
    }


@click.command("ingest")
@click.option(
    "--count",
    "-n",
    type=click.IntRange(100, 1_000_000),
    default=20_000,
    show_default=True,
    help="Events preloaded per phase.",
)
@click.option(
    "--workers",
    type=click.Choice(["1", "2"]),
    default="2",
    show_default=True,
    help="2: also measure two workers on one shared subscription.",
)
@click.option(
    "--repeat",
    type=click.IntRange(1, 20),
    default=3,
    show_default=True,
    help="Rounds of all phases, interleaved; the median round is reported.",
)
@click.option("--batch-size", type=click.IntRange(1, 100_000), default=1000, show_default=True)
@click.option("--flush-interval", type=float, default=0.2, show_default=True)
@click.option("--mqtt-port", type=int, default=None, help="Use this local broker port.")
@click.option("--db-url", default=None, help="Use this /api/v2/write database.")
@json_option
def command(
    *,
    count: int,
    workers: str,
    repeat: int,
    batch_size: int,
    flush_interval: float,
    mqtt_port: int | None,
    db_url: str | None,
    as_json: bool,
) -> None:
    """Events/s: bare paho subscriber vs one and two ingest workers into the database."""
    load_before = load_1m()
    ctx = mp.get_context("spawn")
    conf: dict[str, Any] = {"batch_size": batch_size, "flush_interval_s": flush_interval}
    with tempfile.TemporaryDirectory(prefix="bench-ingest-") as tmp:
        servers: tuple[Server, ...] = ()
        port, url = mqtt_port or 0, db_url or ""
        if mqtt_port is None or db_url is None:
            broker, database = start_servers(Path(tmp), count)
            servers = (broker, database)
            port, url = mqtt_port or broker.port, db_url or database.url
        conf["data_dir"] = tmp
        phase: dict[str, Any] = {"ctx": ctx, "port": port, "count": count, "conf": conf}
        names = ["bare_subscriber", "ingest_1"]
        if workers == "2":
            names += ["bare_subscriber_2", "ingest_2"]
        runs: dict[str, list[dict[str, Any]]] = {name: [] for name in names}
        try:
            for round_no in range(repeat):  # interleaved: machine load hits every phase
                for index, name in enumerate(names, start=1):
                    gw = 10 * round_no + index
                    main = bare_main if name.startswith("bare") else ingest_main
                    pair = ("a", "b") if name.endswith("_2") else ("a",)
                    targets: list[tuple[Any, tuple[Any, ...]]] = [
                        (main, (port, gw, n) if main is bare_main else (port, url, gw, n))
                        for n in pair
                    ]
                    runs[name].append(run_phase(targets=targets, gw=gw, **phase))
        finally:
            for server in servers:
                server.stop()
    best = {name: median_run(r) for name, r in runs.items()}
    bare, one, two = best["bare_subscriber"], best["ingest_1"], best.get("ingest_2")
    bare2 = best.get("bare_subscriber_2")
    result: dict[str, Any] = {
        "benchmark": "ingest",
        "count": count,
        "repeat": repeat,
        "batch_size": batch_size,
        "flush_interval_s": flush_interval,
        "bare_subscriber": bare,
        "ingest_1": one,
        "bare_subscriber_2": bare2,
        "ingest_2": two,
        "ratio_1_vs_bare": round(one["events_per_s"] / bare["events_per_s"], 3),
        "ratio_2_vs_1": round(two["events_per_s"] / one["events_per_s"], 3) if two else None,
        "ratio_2_vs_bare_2": (
            round(two["events_per_s"] / bare2["events_per_s"], 3) if two and bare2 else None
        ),
        "round_ratios": {
            "1_vs_bare": round_ratios(runs, "ingest_1", "bare_subscriber"),
            "2_vs_1": round_ratios(runs, "ingest_2", "ingest_1"),
            "2_vs_bare_2": round_ratios(runs, "ingest_2", "bare_subscriber_2"),
        },
        "load_1m_before": load_before,
        "load_1m_after": load_1m(),
    }
    if as_json:
        print_json(result)
        return
    click.echo(
        f"ingest: {count} preloaded line_crossing events per phase, batch {batch_size}, "
        f"median of {repeat} interleaved rounds (A B A B); load (1 min) "
        f"{result['load_1m_before']} before, {result['load_1m_after']} after"
    )
    for key, label in (
        ("bare_subscriber", "bare paho subscriber (parse)"),
        ("ingest_1", "ingest, 1 worker"),
        ("bare_subscriber_2", "2 bare subscribers (shared)"),
        ("ingest_2", "ingest, 2 workers"),
    ):
        fig = result[key]
        if fig is not None:
            click.echo(
                f"  {label:<30} {fig['events_per_s']:>10.0f} events/s   "
                f"{fig['seconds']:6.2f} s   RSS {fig['rss_mb']} MB   "
                f"split {fig['per_consumer']}   all {fig['all_events_per_s']} "
                f"(spread {fig['spread_pct']} %)"
            )
    for key, label, target in (
        ("1_vs_bare", "1 worker / bare", "  (target >= 0.70)"),
        ("2_vs_1", "2 workers / 1 worker", "  (target >= 1.5)"),
        ("2_vs_bare_2", "2 workers / 2 bare", ""),
    ):
        ratio = result["round_ratios"][key]
        if ratio is not None:
            click.echo(
                f"  {label:<29} {ratio['median']:.2f}  per round {ratio['per_round']}{target}"
            )
