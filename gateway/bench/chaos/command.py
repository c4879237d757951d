"""``gateway bench chaos``: the fault campaign's command line and its printed figures."""

from __future__ import annotations

import logging
import sys
import tempfile
from pathlib import Path
from typing import Any

import click

from gateway.output import json_option, print_json


def _print(result: dict[str, Any]) -> None:
    echo = click.echo
    load = result["load_1_5_15_before"], result["load_1_5_15_after"]
    echo(
        f"chaos: {result['seconds'] / 60:g} min, seed {result['seed']}, "
        f"{result['rate_per_unit']:g} synthetic events/s per unit; load (1/5/15 min) "
        f"{load[0]} before, {load[1]} after, {result['cpus']} CPUs"
    )
    played = ", ".join(f"{k} {v}" for k, v in result["faults_played"].items())
    echo(f"  faults played: {played}")
    if not result["disk_fault"]:
        echo("  (disk full NOT played: mounting a tmpfs needs root)")
    echo(
        f"  {'unit':<8}{'produced':>10}{'stored':>10}{'dead-let.':>10}{'waiting':>9}"
        f"{'dupl.':>8}{'missing':>9}{'unexpl.':>9}"
    )
    for u in [*result["units"], {"gateway": "total", **result["totals"]}]:
        echo(
            f"  {u['gateway']:<8}{u['produced']:>10}{u['stored']:>10}{u['dead_lettered']:>10}"
            f"{u['waiting_in_outbox']:>9}{u['duplicates']:>8}{u['missing']:>9}"
            f"{u['unexplained']:>9}"
        )
    for u in result["units"]:
        for r in u["missing_ranges"][:30]:
            echo(
                f"    {u['gateway']} missing {r['first']}..{r['last']} ({r['count']}): {r['cause']}"
            )
        if len(u["missing_ranges"]) > 30:
            echo(f"    {u['gateway']}: {len(u['missing_ranges']) - 30} more ranges (see --json)")
        if u["dead_letter_reasons"]:
            echo(f"    {u['gateway']} dead-lettered: {u['dead_letter_reasons']}")
        counted = {k: v for k, v in u["unit_loss_counters"].items() if v}
        if counted:
            echo(f"    {u['gateway']} loss counters: {counted}")
    h = result["hostile"]
    echo(
        f"  poison: {h['poison_sent']} sent, {h['poison_acknowledged']} acknowledged, "
        f"{h['poison_dead_lettered']} dead-lettered, {h['poison_lost_in_broker_faults']} lost "
        f"in broker faults; forged publishes {h['forged_sent']}: {h['forged_answers']}; "
        f"over the packet limit: {h['over_packet_limit_answers']}"
    )
    p = result["processes"]
    echo(
        f"  killed on purpose: {p['killed_on_purpose']} (inside an outbox write: "
        f"{p['killed_inside_an_outbox_write']}); exited on their own: "
        f"{len(p['unexpected_exits'])}; exit codes at stop: {p['exit_codes_at_stop']}"
    )
    for worker, stats in result["ingest_stats_at_stop"].items():
        if stats:
            keys = ("received", "events_written", "retries", "dead_letters_stored", "pending_acks")
            echo(f"  ingest {worker}: " + ", ".join(f"{k} {stats.get(k)}" for k in keys))
    for name, fig in result["resources"].items():
        if fig:
            rss, fds, run = fig["rss_mib"], fig["fds"], fig["longest_run"]
            echo(
                f"  {name:<10} RSS MiB max {rss['max']}; longest-lived of {fig['processes']} "
                f"process(es), {run['seconds']} s: RSS warm {run['rss_mib_warm']} last "
                f"{run['rss_mib_last']} max {run['rss_mib_max']}, fds {run['fds_warm']} -> "
                f"{run['fds_last']} (max {fds['max']})"
            )
    for problem in result["problems"]:
        echo(f"  PROBLEM: {problem}")
    echo("  OK: every produced event stored or attributed" if result["ok"] else "  FAILED")


@click.command("chaos")
@click.option(
    "--minutes", type=click.FloatRange(1.0, 24 * 60), default=30, show_default=True,
    help="How long faults are injected (the drain and reconciliation come after).",
)  # fmt: skip
@click.option("--seed", type=int, default=1, show_default=True, help="The fault schedule's seed.")
@click.option(
    "--rate", type=click.FloatRange(1, 1000), default=20, show_default=True,
    help="Synthetic events/s of each synthetic unit.",
)  # fmt: skip
@click.option(
    "--keep", type=click.Path(file_okay=False, path_type=Path), default=None,
    help="Work in this (new) directory and keep it: logs, outboxes, the dead-letter store.",
)  # fmt: skip
@json_option
def command(*, minutes: float, seed: int, rate: float, keep: Path | None, as_json: bool) -> None:
    """Fault campaign: units, broker, ingest workers and database under random faults.

    Exit code 1 when an event is missing without a recorded cause, a process exited on
    its own, or a forged publish got through.
    """
    from gateway.bench.chaos.campaign import Campaign, Options

    logging.getLogger("gateway.bench.chaos").setLevel(logging.INFO)
    options = Options(seconds=minutes * 60, seed=seed, rate=rate)
    if keep is not None:
        keep.mkdir(parents=True, exist_ok=False)
        result = Campaign(options, keep.resolve()).run()
    else:
        with tempfile.TemporaryDirectory(prefix="bench-chaos-") as tmp:
            result = Campaign(options, Path(tmp)).run()
    if as_json:
        print_json(result)
    else:
        _print(result)
    if not result["ok"]:
        sys.exit(1)
