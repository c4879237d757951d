"""The demo's terminal view (rich): counts vs ground truth, sensors, throughput."""

from __future__ import annotations

from rich.console import Group, RenderableType
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from gateway.demo.session import DemoState


def counts_table(state: DemoState, title: str = "line crossings") -> Table:
    """Counted and true crossings per line, direction and class."""
    table = Table(title=title, expand=False)
    for name, justify in (
        ("line", "left"),
        ("direction", "left"),
        ("class", "left"),
        ("counted", "right"),
        ("truth", "right"),
    ):
        table.add_column(name, justify=justify)  # type: ignore[arg-type]
    keys = sorted(set(state.counted) | set(state.truth))
    for line, direction, label in keys:
        counted, truth = (
            state.counted[(line, direction, label)],
            state.truth[(line, direction, label)],
        )
        style = "" if counted == truth else "yellow"
        table.add_row(line, direction, label, str(counted), str(truth), style=style)
    table.add_row(
        "",
        "",
        "total",
        str(sum(state.counted.values())),
        str(sum(state.truth.values())),
        style="bold",
    )
    return table


def sensors_table(state: DemoState) -> Table:
    """The latest value of each simulated sensor, as received from the broker."""
    table = Table(title="sensors (latest reading)", expand=False)
    table.add_column("sensor")
    table.add_column("values")
    for sensor, values in sorted(state.sensors.items()):
        shown = ", ".join(f"{k}={v}" for k, v in list(values.items())[:6])
        table.add_row(sensor, shown)
    if not state.sensors:
        table.add_row("-", "waiting for the first reading")
    return table


def status_line(state: DemoState) -> Text:
    """Throughput and transport figures."""
    received = sum(n for k, n in state.received.items() if k != "availability")
    return Text(
        f"t={state.elapsed_s:5.1f}/{state.seconds:.0f} s   camera {state.fps:4.1f} fps "
        f"({state.frames} frames, inference {state.inference_ms:.1f} ms)   "
        f"events {state.events_per_s:5.1f}/s, {received} received   "
        f"outbox depth {state.outbox_depth}   mqtt {state.mqtt_state}"
    )


def render(state: DemoState) -> Panel:
    """The whole live view."""
    watch = Text(
        f"broker {state.broker}   watch: mosquitto_sub -h {state.broker.rsplit(':', 1)[0]} "
        f"-p {state.broker.rsplit(':', 1)[-1]} -t '#' -v",
        style="cyan",
    )
    by_type = ", ".join(f"{k} {n}" for k, n in sorted(state.received.items()))
    parts: list[RenderableType] = [
        watch,
        status_line(state),
        counts_table(state),
        sensors_table(state),
        Text(f"received by type: {by_type or '-'}"),
    ]
    if state.ingest:
        parts.append(Text(f"ingest: {state.ingest}"))
    return Panel(Group(*parts), title="Roadside Gateway demo (simulated camera and sensors)")
