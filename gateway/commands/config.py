"""``gateway config check|schema``."""

from __future__ import annotations

import json
from pathlib import Path

import click

from gateway.config import GatewaySettings, load_settings
from gateway.runtime.config_patch import to_toml


@click.group("config")
def config_group() -> None:
    """Check a config file or print its JSON Schema."""


def register(app: click.Group) -> None:
    """Add the ``config`` group to the root app."""
    app.add_command(config_group)


@config_group.command("check")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="Print the effective config as JSON.")
def check(file: Path, as_json: bool) -> None:
    """Validate FILE and print the effective config (file plus environment overrides).

    Every bad field is reported on its own line as ``path: message``; the exit code is 2.
    """
    from gateway.security.redact import redact_settings

    settings = load_settings(file)
    data = redact_settings(settings)
    if as_json:
        click.echo(json.dumps(data, indent=2))
        return
    click.echo(f"# {file}: valid")
    click.echo(to_toml(data))


@config_group.command("schema")
def schema() -> None:
    """Print the JSON Schema of the config file."""
    click.echo(json.dumps(GatewaySettings.model_json_schema(), indent=2))
