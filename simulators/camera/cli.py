"""``python -m simulators camera``: serve the simulated road camera or write a clip."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import click

from gateway.config.sources import SimulatorSource
from simulators.camera.lines import Line


def parse_line(text: str) -> Line:
    """``ID:x1,y1,x2,y2`` (normalised) -> :class:`Line`."""
    try:
        name, coords = text.split(":", 1)
        x1, y1, x2, y2 = (float(v) for v in coords.split(","))
    except ValueError:
        raise click.BadParameter(f"expected ID:x1,y1,x2,y2, got {text!r}") from None
    if not name or not all(0 <= v <= 1 for v in (x1, y1, x2, y2)) or (x1, y1) == (x2, y2):
        raise click.BadParameter(f"line {text!r}: needs an id and two distinct points in 0..1")
    return Line(name, (x1, y1), (x2, y2))


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--width", type=click.IntRange(64, 3840), default=640, show_default=True)
@click.option("--height", type=click.IntRange(64, 2160), default=360, show_default=True)
@click.option("--fps", type=click.FloatRange(0.5, 60), default=10.0, show_default=True)
@click.option(
    "--condition", type=click.Choice(["day", "dusk", "rain"]), default="day", show_default=True
)
@click.option("--density", type=click.FloatRange(0.1, 5), default=1.0, show_default=True)
@click.option(
    "--mjpeg-port",
    type=click.IntRange(1, 65535),
    help="Serve MJPEG on http://127.0.0.1:PORT/video.",
)
@click.option(
    "--rtsp-port",
    type=click.IntRange(1, 65535),
    help="Serve RTSP on rtsp://127.0.0.1:PORT/cam (VLC).",
)
@click.option(
    "--rtsp-seconds",
    type=click.FloatRange(1, 3600),
    default=60.0,
    show_default=True,
    help="Length of the clip VLC loops.",
)
@click.option(
    "--write-video",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write --seconds of video to this MP4 file and exit.",
)
@click.option(
    "--truth",
    type=click.Path(dir_okay=False, path_type=Path),
    help="With --write-video: write the line-crossing ground truth here (JSON lines).",
)
@click.option("--line", "lines", multiple=True, help="Counting line ID:x1,y1,x2,y2 for --truth.")
@click.option(
    "--seconds",
    type=click.FloatRange(min=0.1),
    help="Stop after this long (default: until Ctrl-C).",
)
def command(  # noqa: PLR0917 (one parameter per option)
    seed: int,
    width: int,
    height: int,
    fps: float,
    condition: str,
    density: float,
    mjpeg_port: int | None,
    rtsp_port: int | None,
    rtsp_seconds: float,
    write_video: Path | None,
    truth: Path | None,
    lines: tuple[str, ...],
    seconds: float | None,
) -> None:
    """Serve a simulated road camera with exact ground truth (MJPEG, RTSP or a video file)."""
    cfg = SimulatorSource(
        seed=seed, width=width, height=height, fps=fps, condition=condition, density=density
    )
    parsed = tuple(parse_line(t) for t in lines)
    if write_video is not None:
        _write(cfg, write_video, seconds or 60.0, truth, parsed)
        return
    if truth is not None or parsed:
        raise click.UsageError("--truth and --line go with --write-video")
    if mjpeg_port is None and rtsp_port is None:
        raise click.UsageError("give --mjpeg-port, --rtsp-port or --write-video")
    servers: list[object] = []
    try:
        if mjpeg_port is not None:
            from simulators.camera.mjpeg import MjpegServer

            mjpeg = MjpegServer(cfg, mjpeg_port)
            mjpeg.start()
            servers.append(mjpeg)
            click.echo(f"MJPEG: {mjpeg.url}")
        if rtsp_port is not None:
            from simulators.camera.rtsp import RtspServer

            rtsp = RtspServer(cfg, rtsp_port, rtsp_seconds)
            rtsp.start()
            servers.append(rtsp)
            click.echo(f"RTSP: {rtsp.url}")
        sys.stdout.flush()
        deadline = None if seconds is None else time.monotonic() + seconds
        while deadline is None or time.monotonic() < deadline:
            time.sleep(0.2)
    except KeyboardInterrupt:
        pass
    finally:
        for server in reversed(servers):
            server.stop()  # type: ignore[attr-defined]


def _write(
    cfg: SimulatorSource, path: Path, seconds: float, truth: Path | None, lines: tuple[Line, ...]
) -> None:
    from simulators.camera.rtsp import render_clip
    from simulators.camera.source import make_world

    frames = render_clip(cfg, seconds, path)
    click.echo(f"wrote {frames} frames to {path}")
    if truth is None:
        return
    world = make_world(cfg, lines)
    for _ in range(frames):
        world.step()
    with truth.open("w") as fh:
        for c in world.crossings:
            fh.write(
                json.dumps(
                    {
                        "object_id": c.object_id,
                        "class": c.cls,
                        "line_id": c.line_id,
                        "direction": c.direction,
                        "t": round(c.t, 4),
                        "frame": c.frame,
                    }
                )
                + "\n"
            )
    click.echo(f"wrote {len(world.crossings)} crossings to {truth}")
