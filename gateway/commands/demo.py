"""``gateway demo``."""

from __future__ import annotations

import click


def register(app: click.Group) -> None:
    """Add the ``demo`` command(s) to the root app."""
