"""``gateway count``: count objects crossing lines in a video file, offline, every frame.

The work is :func:`gateway.vision.offline.count_video`; this module parses the options
and prints the result.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from gateway import progress
from gateway.cli_options import classes_option, conf_option, threads_option
from gateway.commands.common import config_option, json_option, model_dir_option, print_json
from gateway.config.common import pixel_hint
from gateway.errors import CameraOpenError, InputError, UsageError
from gateway.interrupt import stop_on_interrupt
from gateway.vision.offline import count_video, parse_tiles

if TYPE_CHECKING:
    from gateway.config.vision import CameraConfig
    from gateway.vision.analytics.score import CrossingRecord
    from gateway.vision.analytics.sight import DetectionFrame


def parse_line(text: str) -> tuple[tuple[float, float], tuple[float, float]]:
    """Parse ``x1,y1,x2,y2`` (normalised 0..1) into two points."""
    parts = [p.strip() for p in text.split(",")]
    try:
        values = [float(p) for p in parts]
    except ValueError:
        values = []
    if len(values) != 4:
        raise UsageError(f"--line {text!r}: expected x1,y1,x2,y2 (four numbers from 0 to 1)")
    if not all(0.0 <= v <= 1.0 for v in values):
        hint = pixel_hint([values[:2], values[2:]])
        raise UsageError(
            f"--line {text!r}: {hint or 'coordinates are fractions of the frame, from 0 to 1'}"
        )
    if values[:2] == values[2:]:
        raise UsageError(f"--line {text!r}: the two points must differ")
    return (values[0], values[1]), (values[2], values[3])


def _print_table(result: dict[str, Any]) -> None:
    from rich.console import Console
    from rich.table import Table

    done = f"{result['frames']} frames"
    if result["interrupted"]:
        done += f" of {result['frames_total'] or '?'} (interrupted)"
    table = Table(title=f"{done} in {result['seconds']} s ({result['fps']} fps)")
    for column in ("line", "points", "direction", "class", "count"):
        table.add_column(column, justify="right" if column == "count" else "left")
    for line in result["lines"]:
        points = ",".join(f"{v:g}" for v in line["points"])
        for direction, labels in line["counts"].items():
            for label, n in labels.items():
                table.add_row(line["id"], points, direction, label, str(n))
        table.add_row(line["id"], points, "total", "", str(line["total"]), style="bold")
    Console().print(table)


@click.command("count")
@click.argument("video", type=click.Path(dir_okay=False, path_type=Path))
@click.option(
    "--model",
    "-m",
    help="An .onnx file, or a model name in the store (needed unless --from-detections).",
)
@model_dir_option
@config_option()
@click.option(
    "--line",
    "lines",
    multiple=True,
    required=True,
    help="Counting line x1,y1,x2,y2 in fractions of the frame (repeatable).",
)
@classes_option("count")
@click.option("--tiles", default="off", show_default=True, help="off, auto or RxC (e.g. 2x2).")
@click.option(
    "--motion",
    type=click.Choice(["off", "skip", "regions"]),
    default="off",
    show_default=True,
    help="Motion gating.",
)
@conf_option
@threads_option
@click.option(
    "--fps-limit",
    type=click.FloatRange(min=0.1, max=120.0),
    help="Process at most this many frames per second of video, as a unit with this "
    "camera fps_limit (or a detector that keeps up with only that many) would: "
    "counting accuracy at the rate a unit will reach.",
)
@click.option(
    "--from-detections",
    "recorded_path",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Count the raw detections a run recorded (--detections) instead of running a "
    "model: lines, classes and --fps-limit may differ from that run's; VIDEO gives the "
    "frame size. Seconds instead of minutes, to place a line or check a rate.",
)
@click.option(
    "--crossings",
    "crossings_path",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write every counted crossing to this file (JSON lines; see gateway score).",
)
@click.option(
    "--detections",
    "detections_path",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write every frame's raw detections, before tracking, to this file (JSON lines; "
    "gateway score --detections tells misses the detector never saw).",
)
@json_option
def count_command(
    *,
    video: Path,
    model: str | None,
    model_dir: Path | None,
    config_path: Path | None,
    lines: tuple[str, ...],
    classes: str,
    tiles: str,
    motion: str,
    conf: float,
    threads: int,
    fps_limit: float | None,
    recorded_path: Path | None,
    crossings_path: Path | None,
    detections_path: Path | None,
    as_json: bool,
) -> None:
    """Count objects crossing lines in VIDEO (every frame, as fast as possible).

    Directions are seen from point 1 of a line looking towards point 2: an object
    moving from the left-hand side of that view to its right crosses left_to_right.
    """
    from gateway.commands.detect import parse_classes
    from gateway.config.vision import CameraConfig, DetectorConfig
    from gateway.vision.detector import load_detector

    points = [parse_line(text) for text in lines]
    class_names = parse_classes(classes)
    camera = CameraConfig.model_validate(
        {
            "id": "count",
            "source": {"type": "file", "path": video, "realtime": False},
            "lines": [
                {"id": f"line{i + 1}", "points": list(p), "classes": class_names}
                for i, p in enumerate(points)
            ],
            "tiling": parse_tiles(tiles),
            "motion": {"enabled": motion != "off", "mode": "skip" if motion == "off" else motion},
            "fps_limit": fps_limit,
        }
    )
    size = _check_video(video)
    if recorded_path is not None:
        if tiles != "off" or motion != "off" or detections_path is not None:
            raise UsageError(
                "--tiles, --motion and --detections go with a model run: recorded "
                "detections were tiled and gated when they were recorded"
            )
        _recount(camera, recorded_path, size, crossings_path=crossings_path, as_json=as_json)
        return
    if model is None:
        raise UsageError("--model is needed (or --from-detections: recorded detections)")
    if model_dir is None and not Path(model).is_file():
        from gateway.config import load_settings

        model_dir = load_settings(config_path).model_dir
    detector = load_detector(
        DetectorConfig(model=model, conf=conf, classes=class_names, threads=threads), model_dir
    )
    crossings: list[CrossingRecord] = []
    frames: list[DetectionFrame] | None = [] if detections_path is not None else None
    with stop_on_interrupt() as stop, progress.bar(video.name, "frame") as shown:
        try:
            result = count_video(
                camera,
                detector,
                crossings,
                lambda done, total: progress.advance(shown, done, total),
                stop,
                detections=frames,
            )
        except CameraOpenError as exc:  # the file named on the command line: input
            error = InputError(str(exc))
            error.fix = exc.fix
            raise error from exc
    if crossings_path is not None:
        from gateway.vision.analytics.score import write_records

        write_records(crossings_path, crossings)
    if detections_path is not None and frames is not None:
        from gateway.vision.analytics.sight import write_detections

        write_detections(detections_path, frames)
    if as_json:
        print_json(result)
    else:
        _print_table(result)
    if result["interrupted"]:  # Ctrl-C: the counts so far were printed
        click.echo(
            f"interrupted after {result['frames']} of {result['frames_total'] or '?'} frames",
            err=True,
        )
        raise click.exceptions.Exit(130)


def _recount(
    camera: CameraConfig,
    recorded: Path,
    size: tuple[int, int],
    *,
    crossings_path: Path | None,
    as_json: bool,
) -> None:
    """``--from-detections``: count the recorded detections again; print as a model run."""
    from gateway.vision.analytics.sight import read_detections
    from gateway.vision.offline import recount

    frames = read_detections(recorded)
    if not frames:
        raise InputError(f"{recorded}: no detection frames")
    seen = {name for f in frames.values() for name in f.labels}
    wanted = {c for line in camera.lines for c in line.classes}
    unknown = sorted(wanted - seen)
    if unknown and not seen & wanted:
        raise UsageError(
            f"--classes: {', '.join(unknown)}: not in the recorded detections "
            f"(they hold {', '.join(sorted(seen)) or 'no boxes'})"
        )
    crossings: list[CrossingRecord] = []
    result = recount(camera, frames, size, crossings)
    if crossings_path is not None:
        from gateway.vision.analytics.score import write_records

        write_records(crossings_path, crossings)
    if as_json:
        print_json(result)
    else:
        _print_table(result)


def _check_video(video: Path) -> tuple[int, int]:
    """A missing file or a still image is the wrong input (exit 2), not a runtime failure.

    Returns the video's frame size ``(width, height)``, from its first frame.
    """
    import cv2

    from gateway.config.sources import FileSource
    from gateway.sources.base import make_reader

    if not video.is_file():
        raise InputError(f"video not found: {video}")
    if cv2.haveImageReader(str(video)):
        error = InputError(f"{video} is a still image, not a video: there is nothing to count")
        error.fix = f"gateway detect {video} --model M shows what a model finds in an image"
        raise error
    reader = make_reader(FileSource(path=video))
    try:  # before the model is loaded: a file that is not a video fails in a moment
        reader.open()
        first = reader.read()
    except CameraOpenError as exc:
        error = InputError(str(exc))
        error.fix = exc.fix
        raise error from exc
    finally:
        reader.close()
    if first is None:
        raise InputError(f"{video}: no frame could be read")
    height, width = first[0].shape[:2]
    return int(width), int(height)


def register(app: click.Group) -> None:
    """Add the ``count`` command to the root app."""
    app.add_command(count_command)
