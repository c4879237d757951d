"""``gateway config check|schema``."""

from __future__ import annotations

import json
from pathlib import Path

import click

from gateway.config import GatewaySettings, load_settings


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
    settings = load_settings(file)
    data = settings.model_dump(mode="json")
    if as_json:
        click.echo(json.dumps(data, indent=2))
        return
    click.echo(f"# {file}: valid")
    click.echo(to_toml(data))


@config_group.command("schema")
def schema() -> None:
    """Print the JSON Schema of the config file."""
    click.echo(json.dumps(GatewaySettings.model_json_schema(), indent=2))


def to_toml(data: dict[str, object], prefix: str = "") -> str:
    """Render plain JSON-like data as TOML (enough to print an effective config)."""
    scalars: list[str] = []
    tables: list[str] = []
    for key, value in data.items():
        name = f"{prefix}.{key}" if prefix else key
        if value is None:
            continue
        if isinstance(value, dict):
            tables.append(f"\n[{name}]\n" + to_toml(value, name))
        elif isinstance(value, list) and value and all(isinstance(v, dict) for v in value):
            tables.extend(f"\n[[{name}]]\n" + to_toml(item, name) for item in value)
        else:
            scalars.append(f"{key} = {json.dumps(value, ensure_ascii=False)}")
    return "\n".join(scalars) + "".join(tables)
