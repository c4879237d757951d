"""``gateway count``: count objects crossing lines in a video file, offline, every frame.

It runs the same :class:`~gateway.vision.pipeline.CameraPipeline` as a live camera;
only the frame delivery differs (every frame in order, as fast as possible, stamped
with the video's own clock).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from gateway.commands.common import config_option, json_option, model_dir_option, print_json
from gateway.errors import SourceError, UsageError

if TYPE_CHECKING:
    from gateway.config.vision import CameraConfig
    from gateway.vision.analytics.score import CrossingRecord
    from gateway.vision.detector import Detector

DIRECTIONS = ("left_to_right", "right_to_left")


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
        raise UsageError(f"--line {text!r}: coordinates are fractions of the frame, from 0 to 1")
    if values[:2] == values[2:]:
        raise UsageError(f"--line {text!r}: the two points must differ")
    return (values[0], values[1]), (values[2], values[3])


def parse_tiles(text: str) -> dict[str, Any]:
    """Parse ``--tiles``: ``off``, ``auto`` or ``RxC`` (rows x columns) into a tiling config."""
    value = text.strip().lower()
    if value in ("off", "auto"):
        return {"mode": value}
    rows, sep, cols = value.partition("x")
    if sep and rows.isdigit() and cols.isdigit() and 1 <= int(rows) <= 8 and 1 <= int(cols) <= 8:
        return {"mode": "grid", "rows": int(rows), "cols": int(cols)}
    raise UsageError(f"--tiles {text!r}: expected off, auto or RxC with 1..8 each (e.g. 2x3)")


def count_video(
    camera: CameraConfig, detector: Detector, crossings: list[CrossingRecord] | None = None
) -> dict[str, Any]:
    """Run ``camera`` (a file source) to its end through the camera pipeline; the result dict.

    With ``crossings``, every counted crossing is appended to it (media time, frame index).
    """
    from gateway.sources.base import make_reader
    from gateway.vision.analytics.score import CrossingRecord
    from gateway.vision.analytics.types import LineCrossing
    from gateway.vision.runner import CameraRunner

    probe = make_reader(camera.source)
    probe.open()  # a missing or corrupt file fails here with a clear SourceError
    probe.close()

    def sink(events: list[Any]) -> None:
        frame = runner.latest_frame()  # the frame these events came from (same thread)
        if crossings is None or frame is None:
            return
        crossings.extend(
            CrossingRecord(
                line_id=e.line_id,
                direction=e.direction,
                label=e.label,
                t=round(frame.pts_s, 4),
                frame=frame.index,
                track_id=e.track_id,
            )
            for e in events
            if isinstance(e, LineCrossing)
        )

    runner = CameraRunner(camera, detector, sink, every_frame=True, media_clock=True)
    t0 = time.perf_counter()
    runner.start()
    runner.wait()
    seconds = time.perf_counter() - t0
    runner.stop()
    health = runner.health()
    stats = runner.pipeline.stats
    if stats.frames == 0:
        reason = health.get("last_error") or health.get("pipeline_error")
        raise SourceError(f"no frame could be processed: {reason}")
    if health["errors"]:
        raise SourceError(f"{health['errors']} frame(s) failed: {health['pipeline_error']}")
    engine = runner.pipeline.analytics
    counts = engine.counts() if engine is not None else {}
    lines = []
    for line in camera.lines:
        per_dir = counts.get(line.id, {})
        by_dir = {d: dict(sorted(per_dir.get(d, {}).items())) for d in DIRECTIONS}
        lines.append(
            {
                "id": line.id,
                "points": [v for point in line.points for v in point],
                "counts": by_dir,
                "total": sum(n for labels in by_dir.values() for n in labels.values()),
            }
        )
    return {
        "frames": stats.frames,
        "seconds": round(seconds, 3),
        "fps": round(stats.frames / seconds, 2) if seconds > 0 else 0.0,
        "lines": lines,
        "pipeline": stats.as_dict(),
    }


def _print_table(result: dict[str, Any]) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"{result['frames']} frames in {result['seconds']} s ({result['fps']} fps)")
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
@click.option("--model", "-m", required=True, help="An .onnx file, or a model name in the store.")
@model_dir_option
@config_option()
@click.option(
    "--line",
    "lines",
    multiple=True,
    required=True,
    help="Counting line x1,y1,x2,y2 in fractions of the frame (repeatable).",
)
@click.option(
    "--classes",
    default="person,bicycle,car,motorcycle,bus,truck",
    show_default=True,
    help="Comma-separated class names to count, or 'all'.",
)
@click.option("--tiles", default="off", show_default=True, help="off, auto or RxC (e.g. 2x2).")
@click.option(
    "--motion",
    type=click.Choice(["off", "skip", "regions"]),
    default="off",
    show_default=True,
    help="Motion gating.",
)
@click.option("--conf", type=click.FloatRange(0.0, 1.0), default=0.35, show_default=True)
@click.option("--threads", type=click.IntRange(1, 64), default=1, show_default=True)
@click.option(
    "--crossings",
    "crossings_path",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write every counted crossing to this file (JSON lines; see gateway score).",
)
@json_option
def count_command(
    *,
    video: Path,
    model: str,
    model_dir: Path | None,
    config_path: Path | None,
    lines: tuple[str, ...],
    classes: str,
    tiles: str,
    motion: str,
    conf: float,
    threads: int,
    crossings_path: Path | None,
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
        }
    )
    if not video.is_file():
        raise SourceError(f"video not found: {video}")
    if model_dir is None and not Path(model).is_file():
        from gateway.config import load_settings

        model_dir = load_settings(config_path).model_dir
    detector = load_detector(
        DetectorConfig(model=model, conf=conf, classes=class_names, threads=threads), model_dir
    )
    crossings: list[CrossingRecord] = []
    result = count_video(camera, detector, crossings)
    if crossings_path is not None:
        from gateway.vision.analytics.score import write_records

        write_records(crossings_path, crossings)
    if as_json:
        print_json(result)
    else:
        _print_table(result)


def register(app: click.Group) -> None:
    """Add the ``count`` command to the root app."""
    app.add_command(count_command)
