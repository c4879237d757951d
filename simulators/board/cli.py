"""``python -m simulators board``: a simulated RSB sensor board on a pseudo-terminal."""

from __future__ import annotations

import json
import sys

import click

from gateway.errors import UsageError
from simulators.board.board import BoardOptions
from simulators.board.faults import FaultConfig
from simulators.board.runner import BoardRunner
from simulators.sensors.ptyport import PtyPort


@click.command(name="board")
@click.option(
    "--pty",
    "use_pty",
    is_flag=True,
    default=True,
    help="Serve on a new pseudo-terminal (the only line type; the default).",
)
@click.option(
    "--faults",
    default="",
    help="Faults on both directions: drop_frame,flip,drop_byte,garbage,split,merge=P,...",
)
@click.option("--faults-in", default=None, help="Faults on host->board only (default: --faults).")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of every random choice.")
@click.option("--node", type=click.IntRange(0, 255), default=1, show_default=True)
@click.option("--name", default="sim-board", show_default=True, help="Name sent in HELLO.")
@click.option(
    "--interval",
    type=click.FloatRange(0.05, 3600),
    default=1.0,
    show_default=True,
    help="Seconds between readings.",
)
@click.option("--rto", type=click.FloatRange(0.05, 10), default=0.3, show_default=True)
@click.option(
    "--reboot-every",
    type=click.FloatRange(0),
    default=0.0,
    show_default=True,
    help="Mean seconds between simulated reboots (0 = never).",
)
@click.option("--duration", type=click.FloatRange(0), default=0.0, help="Stop after S seconds.")
def command(
    *,
    use_pty: bool,
    faults: str,
    faults_in: str | None,
    seed: int,
    node: int,
    name: str,
    interval: float,
    rto: float,
    reboot_every: float,
    duration: float,
) -> None:
    """Simulated sensor board speaking RSB; prints the pty path on the first line."""
    try:
        out_faults = FaultConfig.parse(faults)
        in_faults = FaultConfig.parse(faults if faults_in is None else faults_in)
    except UsageError as exc:
        raise click.UsageError(str(exc)) from None
    options = BoardOptions(
        node=node,
        name=name,
        interval=interval,
        rto=rto,
        seed=seed,
        faults_out=out_faults,
        faults_in=in_faults,
        reboot_every=reboot_every,
    )
    line = PtyPort()
    print(line.path, flush=True)
    runner = BoardRunner(line, options)
    try:
        runner.run_forever(duration)
    except KeyboardInterrupt:
        pass
    finally:
        line.close()
        print(json.dumps(runner.board.stats()), file=sys.stderr, flush=True)
