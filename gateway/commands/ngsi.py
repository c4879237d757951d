"""``gateway ngsi convert``: events as FIWARE Smart Data Models NGSI-LD entities."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any, TextIO

import click

from gateway.errors import ConfigError


@click.group("ngsi")
def ngsi_group() -> None:
    """Export events as NGSI-LD entities (TrafficFlowObserved, AirQualityObserved)."""


def register(app: click.Group) -> None:
    """Add the ``ngsi`` group to the root app."""
    app.add_command(ngsi_group)


def _load_config(path: Path | None) -> Any:
    from pydantic import ValidationError

    from gateway.config.ngsi import NgsiConfig
    from gateway.config.settings import format_validation_error, read_toml

    data = read_toml(path) if path is not None else {}
    try:
        return NgsiConfig.model_validate(data)
    except ValidationError as exc:
        problems = format_validation_error(exc)
        raise ConfigError(f"{path}: {len(problems)} invalid setting(s)", problems) from exc


@ngsi_group.command("convert")
@click.argument("events", type=click.File("r", encoding="utf-8"), default="-")
@click.option(
    "--config",
    "config_path",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Locations and lanes (TOML); see docs/ngsi.md.",
)
@click.option("--post", "broker_url", help="Upsert into this NGSI-LD context broker (base URL).")
@click.option("--tenant", help="NGSILD-Tenant header for --post.")
@click.option("--batch", "batch_size", type=click.IntRange(1, 1000), default=100, show_default=True)
@click.option("--retries", type=click.IntRange(0, 100), default=5, show_default=True)
def convert(  # noqa: PLR0917 (one parameter per option)
    events: TextIO,
    config_path: Path | None,
    broker_url: str | None,
    tenant: str | None,
    batch_size: int,
    retries: int,
) -> int:
    """Convert EVENTS (JSON lines, or ``mosquitto_sub -v`` lines; default stdin).

    Entities go to stdout as JSON lines, or with --post to a context broker. A summary
    goes to stderr; bad lines are reported there with their number and skipped. Exit
    code 1 when a line was bad or the broker refused, 2 for a bad config.
    """
    from gateway.ngsi.convert import Converter
    from gateway.ngsi.export import ContextBroker, export

    converter = Converter(_load_config(config_path))

    def to_stdout(batch: list[dict[str, Any]]) -> None:
        for entity in batch:
            sys.stdout.write(json.dumps(entity, separators=(",", ":")) + "\n")
        sys.stdout.flush()

    if broker_url is not None:
        broker = ContextBroker(broker_url, tenant=tenant, retries=retries)
        try:
            stats = export(events, converter, broker.upsert, batch_size=batch_size)
        finally:
            click.echo(
                json.dumps(
                    {"posted": broker.posted, "batches": broker.batches, "retries": broker.retried}
                ),
                err=True,
            )
    else:
        stats = export(events, converter, to_stdout, batch_size=batch_size)
    for problem in stats.problems:
        click.echo(f"error: {problem}", err=True)
    click.echo(json.dumps(stats.as_dict()), err=True)
    return 1 if stats.invalid else 0


@ngsi_group.command("bridge")
@click.option(
    "--config",
    "config_path",
    required=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="ngsi.toml with [mqtt] and [bridge] (see docs/ngsi.md).",
)
@click.option("--worker", default=None, help="Worker name (client id <share_group>-<worker>).")
def bridge(config_path: Path, worker: str | None) -> None:
    """Upsert flow and air-quality events from the broker into a context broker.

    Runs until SIGTERM or SIGINT. A message is acknowledged only once its entities are
    in the context broker (or it makes none, or its refusal is on the dead-letter topic).
    """
    import socket

    from gateway.interrupt import stop_on_signals
    from gateway.ngsi.bridge import NgsiBridge

    config = _load_config(config_path)
    if config.bridge is None:
        raise ConfigError(f"{config_path}: no [bridge] section (url of the context broker)")
    worker_name = worker or socket.gethostname().split(".")[0] or "ngsi"
    with stop_on_signals() as stop:
        service = NgsiBridge(config, worker_name)
        try:
            service.start()
            while not stop.wait(0.5):
                pass
        finally:
            service.stop()
