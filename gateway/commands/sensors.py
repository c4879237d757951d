"""``gateway sensors``."""

from __future__ import annotations

import click


def register(app: click.Group) -> None:
    """Add the ``sensors`` command(s) to the root app."""
