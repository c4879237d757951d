"""``gateway bench <name>``: benchmark commands, loaded lazily from :mod:`gateway.bench`."""

from __future__ import annotations

import importlib

import click

# The explicit registry: benchmark name -> "module:click command attribute".
BENCHMARKS: dict[str, str] = {
    "detect": "gateway.bench.detect:command",
    "pipeline": "gateway.bench.pipeline:command",
    "sensors": "gateway.bench.sensors:command",
    "outbox": "gateway.bench.outbox:command",
    "ingest": "gateway.bench.ingest:command",
    "soak": "gateway.bench.soak:command",
    "bridge": "gateway.bench.bridge:command",
    "rules": "gateway.bench.rules:command",
    "flow": "gateway.bench.flow:command",
    "priority": "gateway.bench.priority:command",
    "budget": "gateway.bench.budget:command",
    "held": "gateway.bench.held:command",
    "ledger": "gateway.bench.ledger:command",
    "ledger-read": "gateway.bench.ledger_read:command",
    "console": "gateway.bench.console:command",
    "chaos": "gateway.bench.chaos.command:command",
}


class _LazyBenchGroup(click.Group):
    """Imports a benchmark's module only when that benchmark runs (or its help is shown)."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(BENCHMARKS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        target = BENCHMARKS.get(cmd_name)
        if target is None:
            return None
        module_name, attr = target.split(":")
        command = getattr(importlib.import_module(module_name), attr)
        if not isinstance(command, click.Command):
            raise TypeError(f"{target} is not a click command")
        return command


@click.group("bench", cls=_LazyBenchGroup)
@click.pass_context
def bench_group(ctx: click.Context) -> None:
    """Measure speed and memory; every figure is printed next to its raw baseline.

    On a terminal, stderr shows the time a benchmark has been running.
    """
    from gateway import progress

    asks_help = {"--help", "-h"} & set(ctx.args)
    if ctx.invoked_subcommand is not None and not asks_help:
        ctx.with_resource(progress.ticker(f"bench {ctx.invoked_subcommand}"))


def register(app: click.Group) -> None:
    """Add the ``bench`` group to the root app."""
    app.add_command(bench_group)
