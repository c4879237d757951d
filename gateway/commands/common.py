"""Options and helpers shared by several commands."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

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


json_option = click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")


def print_json(obj: Any) -> None:
    """Print one compact JSON document on its own line on stdout."""
    sys.stdout.write(json.dumps(obj, separators=(",", ":"), ensure_ascii=False) + "\n")
    sys.stdout.flush()


model_dir_option = click.option(
    "--model-dir",
    type=click.Path(file_okay=False, path_type=Path),
    envvar="GATEWAY_MODEL_DIR",
    help="Model store for --model names (default: gateway.model_dir, else <data_dir>/models).",
)
