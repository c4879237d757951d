"""``gateway config check|schema``."""

from __future__ import annotations

import json
from pathlib import Path

import click

from gateway.commands.common import config_option
from gateway.config import GatewaySettings, load_settings
from gateway.config.patch import to_toml
from gateway.errors import UsageError


@click.group("config")
def config_group() -> None:
    """Check a config file or print its JSON Schema."""


def register(app: click.Group) -> None:
    """Add the ``config`` group to the root app."""
    app.add_command(config_group)


@config_group.command("check")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path), required=False)
@config_option()
@click.option("--json", "as_json", is_flag=True, help="Print the effective config as JSON.")
def check(file: Path | None, config_path: Path | None, as_json: bool) -> None:
    """Validate FILE (or -c FILE) and print the effective config (file plus environment).

    Every bad field is reported on its own line as ``path: message``; a field set by a
    GATEWAY_* environment variable is named by that variable. The exit code is 2.
    """
    from gateway.redaction import redact_settings

    if file is not None and config_path is not None and file != config_path:
        raise UsageError(f"two config files given: {file} and -c {config_path}")
    file = file or config_path
    if file is None:
        raise UsageError("which config? give FILE or -c FILE")

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
