"""``gateway bench detect``: full detection time against the model-only baseline.

Each iteration times ``session.run`` on the already prepared input tensor (the
raw baseline) and then the whole :meth:`detect` call on the source image
(preprocess + run + decode + class filter + NMS), interleaved so machine load
affects both alike.
"""

from __future__ import annotations

import statistics
import time
from pathlib import Path
from typing import Any

import click

from gateway.cli_options import model_type_option, threads_option
from gateway.output import json_option, print_json

DEFAULT_IMAGE = Path("../shared/data/bus.jpg")


def summary(samples_ms: list[float]) -> dict[str, float]:
    """Return mean, p50 and p90 of ``samples_ms`` (milliseconds, rounded to 0.001)."""
    ordered = sorted(samples_ms)

    def pct(q: float) -> float:
        return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]

    return {
        "mean": round(statistics.fmean(ordered), 3),
        "p50": round(pct(0.5), 3),
        "p90": round(pct(0.9), 3),
    }


def measure(
    *, model: str, image_path: Path, iterations: int, threads: int, model_type: str, warmup: int
) -> dict[str, Any]:
    """Run the benchmark and return its figures."""
    from gateway.config.vision import DetectorConfig
    from gateway.vision.detector import load_detector
    from gateway.vision.offline import read_image

    image = read_image(image_path)
    cfg = DetectorConfig(model=model, model_type=model_type, threads=threads)
    detector = load_detector(cfg)
    feed, _ = detector.prepare(image)
    names = detector.decoder.output_names
    session = detector.session
    for _ in range(warmup):
        session.run(names, feed)
        detector.detect(image)
    raw_ms: list[float] = []
    full_ms: list[float] = []
    count = 0
    for _ in range(iterations):
        feed, _ = detector.prepare(image)
        start = time.perf_counter()
        session.run(names, feed)
        raw_ms.append((time.perf_counter() - start) * 1000.0)
        start = time.perf_counter()
        count = len(detector.detect(image))
        full_ms.append((time.perf_counter() - start) * 1000.0)
    raw, full = summary(raw_ms), summary(full_ms)
    return {
        "benchmark": "detect",
        "model": model,
        "model_type": detector.model_type,
        "input_size": list(detector.input_size),
        "image": str(image_path),
        "image_size": [int(image.shape[1]), int(image.shape[0])],
        "iterations": iterations,
        "threads": threads,
        "detections": count,
        "model_only_ms": raw,
        "detect_ms": full,
        "ratio_mean": round(full["mean"] / raw["mean"], 3),
        "ratio_p50": round(full["p50"] / raw["p50"], 3),
    }


@click.command("detect")
@click.option("--model", "-m", required=True, help="An .onnx file.")
@click.option(
    "--image",
    type=click.Path(dir_okay=False, path_type=Path),
    default=DEFAULT_IMAGE,
    show_default=True,
    help="A real image to detect on.",
)
@click.option("--iterations", "-n", type=click.IntRange(1, 100_000), default=100, show_default=True)
@click.option("--warmup", type=click.IntRange(0, 1000), default=5, show_default=True)
@threads_option
@model_type_option
@json_option
def command(
    *,
    model: str,
    image: Path,
    iterations: int,
    warmup: int,
    threads: int,
    model_type: str,
    as_json: bool,
) -> None:
    """Time full detection (preprocess + run + decode + NMS) against model-only session.run."""
    result = measure(
        model=model,
        image_path=image,
        iterations=iterations,
        threads=threads,
        model_type=model_type,
        warmup=warmup,
    )
    if as_json:
        print_json(result)
        return
    height, width = result["input_size"]
    click.echo(
        f"detect: {model} ({result['model_type']}, input {width}x{height}, "
        f"{threads} thread(s)) on {image} {result['image_size'][0]}x{result['image_size'][1]}, "
        f"{iterations} iterations, {result['detections']} detections"
    )
    for key, label in (("model_only_ms", "model only (session.run)"), ("detect_ms", "full detect")):
        fig = result[key]
        click.echo(
            f"  {label:<26} mean {fig['mean']:8.2f} ms   p50 {fig['p50']:8.2f} ms"
            f"   p90 {fig['p90']:8.2f} ms"
        )
    click.echo(
        f"  full / model-only          mean {result['ratio_mean']:.3f}x   "
        f"p50 {result['ratio_p50']:.3f}x"
    )
