"""``gateway run``."""

from __future__ import annotations

import click


def register(app: click.Group) -> None:
    """Add the ``run`` command(s) to the root app."""
