"""Options and helpers shared by several commands."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

from gateway.output import json_option, print_json

__all__ = ["config_option", "json_option", "model_dir_option", "print_json"]

F = TypeVar("F", bound=Callable[..., Any])


def config_option(required: bool = False) -> Callable[[F], F]:
    """The ``--config FILE`` option (TOML)."""
    return click.option(
        "--config",
        "-c",
        "config_path",
        type=click.Path(dir_okay=False, path_type=Path),
        required=required,
        help="Config file (TOML); GATEWAY_* environment variables override it.",
    )


model_dir_option = click.option(
    "--model-dir",
    type=click.Path(file_okay=False, path_type=Path),
    envvar="GATEWAY_MODEL_DIR",
    help="Model store for --model names (default: gateway.model_dir, else <data_dir>/models).",
)
