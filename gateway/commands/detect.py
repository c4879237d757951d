"""``gateway detect``."""

from __future__ import annotations

import click


def register(app: click.Group) -> None:
    """Add the ``detect`` command(s) to the root app."""
