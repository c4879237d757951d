"""``gateway demo``: the whole gateway offline, on a simulated camera and simulated sensors."""

from __future__ import annotations

import dataclasses
import sys
import textwrap
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, cast

import click

from gateway.commands.common import json_option, print_json
from gateway.errors import TransportError, UsageError

if TYPE_CHECKING:
    from gateway.demo.scenario import Condition
    from gateway.demo.session import DemoState
    from gateway.vision.analytics.score import CrossingRecord


@click.command("demo")
@click.option(
    "--seconds",
    type=click.FloatRange(min=1.0),
    default=60.0,
    show_default=True,
    help="How long to run (with --accuracy: seconds of simulated traffic).",
)
@click.option(
    "--broker", metavar="HOST:PORT", help="Publish to this broker instead of an embedded one."
)
@click.option(
    "--influx-url",
    metavar="URL",
    help="Also run an ingest worker writing to this InfluxDB-compatible URL "
    "(needs --broker: ingest uses MQTT v5 shared subscriptions).",
)
@click.option("--no-view", is_flag=True, help="No live terminal view; print the summary only.")
@click.option("--seed", type=int, default=7, show_default=True, help="Simulator seed.")
@click.option(
    "--condition", type=click.Choice(["day", "dusk", "rain"]), default="day", show_default=True
)
@click.option(
    "--accuracy",
    is_flag=True,
    help="Measure counting accuracy offline (every frame, as fast as possible) "
    "against the simulator's ground truth, instead of running the live demo.",
)
@click.option(
    "--scenario",
    help="With --accuracy: play this scripted scene instead of random traffic "
    "(--list-scenarios names them).",
)
@click.option(
    "--list-scenarios",
    is_flag=True,
    help="List the scripted scenes --scenario plays, with what each tests, and exit.",
)
@click.option(
    "--fps",
    type=click.FloatRange(min=1.0, max=30.0),
    default=10.0,
    show_default=True,
    help="With --accuracy: the rate frames are processed at (a unit whose detector keeps "
    "up with 5 frames a second sees the road at 5 fps).",
)
@click.option(
    "--ideal-detector",
    is_flag=True,
    help="With --accuracy: detect with the simulator's ground truth (the visible part of "
    "every object) instead of the demo model.",
)
@click.option(
    "--crossings",
    "crossings_path",
    type=click.Path(dir_okay=False, path_type=Path),
    help="With --accuracy: write every counted crossing here (JSON lines) and the true "
    "ones next to it (<name>.truth.jsonl); see gateway score.",
)
@json_option
def demo_command(  # noqa: PLR0917 (one parameter per option)
    seconds: float,
    broker: str | None,
    influx_url: str | None,
    no_view: bool,
    seed: int,
    condition: str,
    accuracy: bool,
    scenario: str | None,
    list_scenarios: bool,
    fps: float,
    ideal_detector: bool,
    crossings_path: Path | None,
    as_json: bool,
) -> None:
    """Run the gateway on a simulated road camera and sensors; no external services needed.

    Starts an embedded MQTT broker (unless --broker), simulated serial sensors on
    pseudo-terminals and the gateway runtime with the demo detector, shows live counts
    against the simulator's ground truth, and ends with a summary.
    """
    if list_scenarios:
        _list_scenarios(as_json)
        return
    if accuracy:
        _accuracy(
            seconds,
            seed,
            condition,
            as_json,
            scenario=scenario,
            ideal=ideal_detector,
            crossings_path=crossings_path,
            fps=fps,
        )
        return
    if scenario or ideal_detector or crossings_path or fps != 10.0:
        raise UsageError("--scenario, --fps, --ideal-detector and --crossings go with --accuracy")
    from gateway.demo.session import DemoSession

    session = DemoSession(
        seconds,
        broker=broker,
        influx_url=influx_url,
        seed=seed,
        condition=cast("Condition", condition),
    )
    if as_json:
        state = session.run()
    elif no_view or not sys.stdout.isatty():
        state = session.run(_announce_once())
    else:
        from rich.live import Live

        from gateway.demo.view import render

        with Live(render(session.state), refresh_per_second=2, screen=False) as live:
            state = session.run(lambda s: live.update(render(s)))
    if as_json:
        print_json(state.summary())
    else:
        _print_summary(state)
    if state.interrupted:
        raise click.exceptions.Exit(130)
    if state.events == 0:
        raise TransportError(f"no events reached the broker at {state.broker}")


def _list_scenarios(as_json: bool) -> None:
    from gateway.demo.accuracy import scenario_list

    scenarios = scenario_list()
    if as_json:
        print_json([dataclasses.asdict(s) for s in scenarios])
        return
    for s in scenarios:
        click.echo(f"{s.name} ({s.seconds:g} s)")
        click.echo(textwrap.indent(textwrap.fill(s.description, 76), "    "))


def _print_summary(state: DemoState) -> None:
    from rich.console import Console

    from gateway.demo.view import TRUTH_NOTE, behind_warning, counts_table

    Console().print(counts_table(state, "line crossings: counted vs simulator ground truth"))
    click.echo(TRUTH_NOTE)
    click.echo(
        f"{'interrupted after' if state.interrupted else 'ran'} {state.elapsed_s:.1f} s: "
        f"camera {state.frames_camera} frames at {state.camera_fps:.0f} fps, "
        f"processed {state.frames_processed} ({state.processed_fps:.1f} fps), "
        f"dropped {state.frames_dropped}"
    )
    warning = behind_warning(state)
    if warning is not None:
        click.echo(f"warning: {warning.plain}")
    click.echo(
        f"{state.events} events received on {state.broker}; by type: "
        + ", ".join(f"{k} {n}" for k, n in sorted(state.received.items()))
    )
    click.echo(f"while a demo runs, watch its events with: {state.watch_command}")


def _announce_once() -> Callable[[DemoState], None]:
    """An ``on_tick`` that prints the broker and the watch command once, when known."""
    done = False

    def tick(state: DemoState) -> None:
        nonlocal done
        if not done:
            done = True
            click.echo(f"demo running for {state.seconds:.0f} s; watch: {state.watch_command}")

    return tick


def _accuracy(
    seconds: float,
    seed: int,
    condition: str,
    as_json: bool,
    *,
    scenario: str | None,
    ideal: bool,
    crossings_path: Path | None,
    fps: float,
) -> None:
    from gateway.demo.accuracy import measure_run, run_scenario
    from gateway.vision.analytics.score import score, write_records
    from gateway.vision.analytics.sight import write_detections

    if scenario is not None:
        run = run_scenario(
            scenario, "truth" if ideal else "model", cast("Condition", condition), fps=fps
        )
    elif ideal:
        raise UsageError("--ideal-detector goes with --scenario")
    else:
        run = measure_run(seconds, seed, cast("Condition", condition), fps)
    if crossings_path is not None:
        write_records(crossings_path, run.counted)
        write_records(crossings_path.with_suffix(".truth.jsonl"), run.truth)
        frames = [run.detections[f] for f in sorted(run.detections)]
        write_detections(crossings_path.with_suffix(".detections.jsonl"), frames)
    report = run.report
    result = score(run.counted, run.truth, detections=run.detections)
    if as_json:
        print_json({**report.as_dict(), "crossings": result.as_dict()})
        return
    what = f"scenario {scenario}" if scenario else f"{seconds:.0f} s of simulated traffic"
    click.echo(
        f"{what}, {condition} (seed {seed}), {report.frames} frames at {fps:g} fps "
        f"in {report.wall_s:.0f} s"
    )
    click.echo(f"{'class':<12}{'truth':>7}{'counted':>9}{'error':>9}")
    for label, truth, counted, error in report.rows():
        click.echo(f"{label:<12}{truth:>7}{counted:>9}{error:>+9.1%}")
    click.echo(f"sum of per-direction, per-class differences: {report.matched_error:.1%} of truth")
    click.echo("crossing by crossing (unseen: missed, and no raw detection matched the object):")
    click.echo(result.table())
    unseen = {id(r) for r in result.unseen or ()}
    for record in result.false_counts:
        click.echo(f"false count: {_brief(record)}")
    for record in result.misses:
        click.echo(f"{'unseen' if id(record) in unseen else 'missed'}: {_brief(record)}")


def _brief(record: CrossingRecord) -> str:
    """One crossing on one line, without its evidence boxes."""
    return str(dataclasses.replace(record, boxes=None))


def register(app: click.Group) -> None:
    """Add the ``demo`` command to the root app."""
    app.add_command(demo_command)
