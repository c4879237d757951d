"""``gateway camera``: check a camera and see what the unit sees."""

from __future__ import annotations

import click


def register(app: click.Group) -> None:
    """Add the ``camera`` command(s) to the root app."""
