"""``gateway bench``."""

from __future__ import annotations

import click


def register(app: click.Group) -> None:
    """Add the ``bench`` command(s) to the root app."""
