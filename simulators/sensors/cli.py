"""``python -m simulators sensor``: a simulated serial sensor on a pty until killed."""

from __future__ import annotations

import sys
from collections.abc import Callable

import click

from gateway.interrupt import stop_on_signals
from simulators.sensors.generators import GENERATORS
from simulators.sensors.modbus_sim import MODBUS_FAULTS
from simulators.sensors.stream import FAULTS

PROTOCOLS = sorted([*GENERATORS, "modbus"])


@click.command("sensor")
@click.option("--protocol", "-p", required=True, type=click.Choice(PROTOCOLS))
@click.option(
    "--pty", "use_pty", is_flag=True, help="Serve on a new pseudo-terminal (the default)."
)
@click.option("--port", help="Write to this existing port URL instead of a pty (stream protocols).")
@click.option("--link", help="Keep a symlink at this path pointing at the current pty.")
@click.option(
    "--faults",
    default="",
    help=f"Comma-separated faults: {', '.join(FAULTS)}; modbus: {', '.join(MODBUS_FAULTS)}.",
)
@click.option(
    "--rate",
    type=click.FloatRange(min=0.01),
    default=1.0,
    show_default=True,
    help="Frames per second.",
)
@click.option("--seed", type=int, default=None, help="Random seed (repeatable runs).")
@click.option("--baud", type=int, default=9600, show_default=True)
@click.option("--fault-period", type=click.FloatRange(min=0.1), default=10.0, show_default=True)
@click.option("--fault-probability", type=click.FloatRange(0, 1), default=0.25, show_default=True)
@click.option(
    "--json-output", is_flag=True, help="ops243: JSON lines in mph instead of plain m/s numbers."
)
def command(  # noqa: PLR0917 (click passes options positionally)
    protocol: str,
    use_pty: bool,
    port: str | None,
    link: str | None,
    faults: str,
    rate: float,
    seed: int | None,
    baud: int,
    fault_period: float,
    fault_probability: float,
    json_output: bool,
) -> None:
    """Simulate a serial sensor; the first stdout line is the port path to open."""
    names = frozenset(n.strip() for n in faults.split(",") if n.strip())
    if use_pty and port:
        raise click.UsageError("--pty and --port are exclusive")
    if protocol == "modbus":
        from simulators.sensors.modbus_sim import ModbusSimulator

        try:
            msim = ModbusSimulator(
                link, seed=seed, baud=baud, faults=names,
                fault_probability=fault_probability, fault_period_s=fault_period,
            )  # fmt: skip
        except ValueError as exc:
            raise click.UsageError(str(exc)) from exc
        _serve_until_signal(msim.start, msim.stop)
        return
    from simulators.sensors.stream import StreamSimulator, parse_faults

    try:
        sim = StreamSimulator(
            protocol, port=port, link=link, faults=parse_faults(faults), rate_hz=rate, seed=seed,
            baud=baud, fault_period_s=fault_period, fault_probability=fault_probability,
            json_output=json_output,
        )  # fmt: skip
    except ValueError as exc:
        raise click.UsageError(str(exc)) from exc

    def finish() -> None:
        sim.stop()
        print(f"sent: {sim.snapshot()}", file=sys.stderr)

    _serve_until_signal(sim.start, finish)


def _serve_until_signal(start: Callable[[], str], stop: Callable[[], None]) -> None:
    """Print the path ``start`` returns, serve until SIGTERM or SIGINT, then ``stop``."""
    with stop_on_signals() as requested:
        print(start(), flush=True)
        try:
            requested.wait()
        finally:
            stop()
