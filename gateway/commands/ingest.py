"""``gateway ingest``."""

from __future__ import annotations

import click


def register(app: click.Group) -> None:
    """Add the ``ingest`` command(s) to the root app."""
