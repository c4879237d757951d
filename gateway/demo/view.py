"""The demo's terminal view (rich): counts vs ground truth, sensors, throughput."""

from __future__ import annotations

from rich.console import Group, RenderableType
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from gateway.demo.session import DemoState


def counts_table(state: DemoState, title: str = "line crossings") -> Table:
    """Counted crossings per line, direction and class, next to the completed true ones."""
    table = Table(title=title, expand=False)
    for name, justify in (
        ("line", "left"),
        ("direction", "left"),
        ("class", "left"),
        ("counted", "right"),
        ("truth", "right"),
        ("in flight", "right"),
    ):
        table.add_column(name, justify=justify)  # type: ignore[arg-type]
    keys = sorted(set(state.counted) | set(state.truth) | set(state.truth_in_flight))
    for key in keys:
        line, direction, label = key
        counted, truth, flight = state.counted[key], state.truth[key], state.truth_in_flight[key]
        style = "" if counted == truth else "yellow"
        table.add_row(
            line, direction, label, str(counted), str(truth), str(flight or ""), style=style
        )
    table.add_row(
        "",
        "",
        "total",
        str(sum(state.counted.values())),
        str(sum(state.truth.values())),
        str(sum(state.truth_in_flight.values()) or ""),
        style="bold",
    )
    return table


TRUTH_NOTE = (
    "truth: crossings the simulator completed (object past the line's dead band); "
    "in flight: objects on the line, not counted yet"
)


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
    """Frames and rates: camera, processed, dropped; transport figures."""
    return Text(
        f"t={state.elapsed_s:5.1f}/{state.seconds:.0f} s   "
        f"camera {state.camera_fps:.0f} fps, {state.frames_camera} frames   "
        f"processed {state.processed_fps:4.1f} fps, {state.frames_processed} frames "
        f"(inference {state.inference_ms:.1f} ms)   dropped {state.frames_dropped} frames\n"
        f"events {state.events_per_s:5.1f}/s, {state.events} received   "
        f"outbox depth {state.outbox_depth}   mqtt {state.mqtt_state}"
    )


def behind_warning(state: DemoState) -> Text | None:
    """A warning when processing falls below the camera's rate, with the frames dropped."""
    if not state.behind:
        return None
    return Text(
        f"processing is behind the camera: {state.processed_fps:.1f} fps processed of "
        f"{state.camera_fps:.0f} fps; {state.frames_dropped} of {state.frames_camera} camera "
        "frames dropped (counts will miss objects; is the machine busy?)",
        style="bold red",
    )


def render(state: DemoState) -> Panel:
    """The whole live view."""
    watch = Text(f"broker {state.broker}   watch: {state.watch_command}", style="cyan")
    by_type = ", ".join(f"{k} {n}" for k, n in sorted(state.received.items()))
    parts: list[RenderableType] = [watch, status_line(state)]
    warning = behind_warning(state)
    if warning is not None:
        parts.append(warning)
    parts += [
        counts_table(state),
        Text(TRUTH_NOTE, style="dim"),
        sensors_table(state),
        Text(f"received by type: {by_type or '-'}"),
    ]
    if state.ingest:
        parts.append(Text(f"ingest: {state.ingest}"))
    return Panel(Group(*parts), title="Roadside Gateway demo (simulated camera and sensors)")
