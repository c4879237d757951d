"""``gateway models``."""

from __future__ import annotations

import click


def register(app: click.Group) -> None:
    """Add the ``models`` command(s) to the root app."""
