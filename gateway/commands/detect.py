"""``gateway detect``: run the detector on still images."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from gateway.cli_options import classes_option, conf_option, model_type_option, threads_option
from gateway.commands.common import config_option, json_option, model_dir_option, print_json
from gateway.errors import InputError, UsageError
from gateway.vision.offline import read_image

if TYPE_CHECKING:
    from gateway.config.vision import DetectorConfig
    from gateway.vision.protocols import Detector


def parse_classes(value: str) -> list[str]:
    """Parse ``--classes``: a comma-separated list of names, or ``all`` (empty list)."""
    names = [name.strip() for name in value.split(",") if name.strip()]
    if not names:
        raise UsageError("--classes needs at least one class name, or 'all'")
    return [] if names == ["all"] else names


def _print_table(path: Path, image: Any, detector: Detector, records: list[dict[str, Any]]) -> None:
    from rich.console import Console
    from rich.table import Table

    height, width = image.shape[:2]
    console = Console()
    console.print(
        f"[bold]{path}[/bold] {width}x{height}, {len(records)} detections, "
        f"{detector.last_inference_ms:.1f} ms inference",
        highlight=False,
    )
    table = Table()
    for column in ("label", "class", "score", "x1", "y1", "x2", "y2"):
        table.add_column(column, justify="left" if column == "label" else "right")
    for rec in records:
        box = rec["box"]
        table.add_row(
            rec["label"], str(rec["class_id"]), f"{rec['score']:.2f}", *(f"{v:.0f}" for v in box)
        )
    console.print(table)


def run_detect(
    images: tuple[Path, ...], cfg: DetectorConfig, model_dir: Path | None, as_json: bool
) -> int:
    """Detect on every image; report unreadable ones and return 2 (input error) if any were."""
    from gateway.vision.detector import load_detector

    detector = load_detector(cfg, model_dir)
    failed = 0
    for path in images:
        try:
            image = read_image(path)
        except InputError as exc:
            print(f"error: {exc}", file=sys.stderr)
            failed += 1
            continue
        records = detector.detect(image).to_records(detector.labels)
        if as_json:
            print_json(
                {
                    "image": str(path),
                    "width": int(image.shape[1]),
                    "height": int(image.shape[0]),
                    "inference_ms": round(detector.last_inference_ms, 2),
                    "detections": records,
                }
            )
        else:
            _print_table(path, image, detector, records)
    return 2 if failed else 0


@click.command("detect")
@click.argument("images", nargs=-1, required=True, type=click.Path(dir_okay=False, path_type=Path))
@click.option("--model", "-m", required=True, help="An .onnx file, or a model name in the store.")
@model_dir_option
@config_option()
@click.option(
    "--labels",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Label file, one name per line (default: COCO-80 for 80-class models).",
)
@model_type_option
@conf_option
@click.option(
    "--iou", type=click.FloatRange(0.0, 1.0, min_open=True), default=0.45, show_default=True
)
@classes_option("keep")
@click.option(
    "--provider",
    type=click.Choice(["cpu", "cuda", "tensorrt", "openvino"]),
    default="cpu",
    show_default=True,
)
@threads_option
@click.option("--input-size", type=click.IntRange(32, 4096), help="For dynamic-shape models.")
@json_option
def detect_command(
    *,
    images: tuple[Path, ...],
    model: str,
    model_dir: Path | None,
    config_path: Path | None,
    labels: Path | None,
    model_type: str,
    conf: float,
    iou: float,
    classes: str,
    provider: str,
    threads: int,
    input_size: int | None,
    as_json: bool,
) -> None:
    """Detect vehicles and pedestrians in IMAGE files (boxes in source-image pixels).

    A missing or unreadable image is reported and skipped; the others are still
    processed and the exit code is 1.
    """
    from gateway.config.vision import DetectorConfig

    cfg = DetectorConfig.model_validate(
        {
            "model": model,
            "model_type": model_type,
            "labels": labels,
            "conf": conf,
            "nms_iou": iou,
            "classes": parse_classes(classes),
            "providers": [provider],
            "threads": threads,
            "input_size": input_size,
        }
    )
    if model_dir is None and not Path(model).is_file():
        from gateway.config import load_settings

        model_dir = load_settings(config_path).model_dir
    code = run_detect(images, cfg, model_dir, as_json)
    if code:
        raise click.exceptions.Exit(code)


def register(app: click.Group) -> None:
    """Add the ``detect`` command to the root app."""
    app.add_command(detect_command)
