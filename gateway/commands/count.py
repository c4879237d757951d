"""``gateway count``."""

from __future__ import annotations

import click


def register(app: click.Group) -> None:
    """Add the ``count`` command(s) to the root app."""
