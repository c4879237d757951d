"""Click options that commands and benchmarks share: the detector's tuning.

``--threads``, ``--conf``, ``--model-type`` and ``--classes`` take the values of the
same fields of :class:`gateway.config.vision.DetectorConfig` (its bounds and defaults;
a test keeps them equal), so ``gateway detect``, ``count``, ``camera snapshot`` and the detection
benchmarks accept what a config file does.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import click

threads_option = click.option(
    "--threads",
    type=click.IntRange(1, 64),
    default=1,
    show_default=True,
    help="ONNX Runtime intra-op threads.",
)
conf_option = click.option(
    "--conf",
    type=click.FloatRange(0.0, 1.0),
    default=0.35,
    show_default=True,
    help="Score threshold.",
)
model_type_option = click.option(
    "--model-type",
    type=click.Choice(["auto", "yolox", "yolo", "ssd"]),
    default="auto",
    show_default=True,
    help="Output layout; auto picks it from the model's signature.",
)


def classes_option(verb: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """``--classes``: the classes to ``verb`` (a comma-separated list, or ``all``)."""
    return click.option(
        "--classes",
        default="person,bicycle,car,motorcycle,bus,truck",
        show_default=True,
        help=f"Comma-separated class names to {verb}, or 'all'.",
    )
