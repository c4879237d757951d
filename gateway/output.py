"""How commands and benchmarks print a result: one compact JSON document (``--json``)."""

from __future__ import annotations

import json
import sys
from typing import Any

import click

json_option = click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")


def print_json(obj: Any) -> None:
    """Print one compact JSON document on its own line on stdout."""
    sys.stdout.write(json.dumps(obj, separators=(",", ":"), ensure_ascii=False) + "\n")
    sys.stdout.flush()
