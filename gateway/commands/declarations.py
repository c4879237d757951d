"""``gateway ingest declarations``: what the central consumers declare, and what units do.

Reads the retained declarations on ``{prefix}/central/capabilities/+`` from the broker
of ``[mqtt]`` (the same TLS and credentials as the worker), checks each the way a unit
does, and prints what a unit with ``[outbox] batch = "negotiate"`` would batch.
``--withdraw NAME`` deletes one (an empty retained message; the broker ACL lets only
ingest identities and admin operators do it).
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import click

from gateway.commands.common import config_option, json_option, print_json
from gateway.errors import UsageError


@contextlib.contextmanager
def _quiet(logger: logging.Logger) -> Iterator[None]:
    """Only errors from ``logger`` for the block (its level restored after)."""
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        logger.setLevel(level)


def _read(settings: Any, wait_s: float, withdraw: str | None) -> dict[str, bytes]:
    """The retained declarations (topic -> payload), after withdrawing ``withdraw``."""
    import paho.mqtt.client as paho

    from gateway.events.topics import capabilities_filter, capabilities_topic
    from gateway.transport.paho_client import make_client

    prefix = settings.mqtt.topic_prefix
    found: dict[str, bytes] = {}
    done: dict[str, Any] = {}
    client = make_client(settings.mqtt, f"declarations-{int(time.time() * 1000)}", False, None)
    client.on_connect = lambda c, _u, _f, reason, _p: done.setdefault("connack", reason)
    client.on_subscribe = lambda *_a: done.setdefault("suback", time.monotonic())
    client.on_publish = lambda *_a: done.setdefault("withdrawn", True)

    def on_message(_c: object, _u: object, msg: paho.MQTTMessage) -> None:
        if msg.retain and msg.payload:
            found[msg.topic] = bytes(msg.payload)

    client.on_message = on_message
    where = f"{settings.mqtt.host}:{settings.mqtt.port}"
    try:
        client.connect(settings.mqtt.host, settings.mqtt.port, keepalive=30)
    except (OSError, ValueError) as exc:
        raise UsageError(f"cannot connect to MQTT broker {where}: {exc}") from exc
    deadline = time.monotonic() + 10.0
    try:
        while "connack" not in done and time.monotonic() < deadline:
            client.loop(0.05)
        reason = done.get("connack")
        if reason is None or reason.is_failure:
            raise UsageError(f"MQTT broker {where} refused the connection: {reason}")
        if withdraw is not None:
            client.publish(capabilities_topic(prefix, withdraw), b"", qos=1, retain=True)
            while "withdrawn" not in done and time.monotonic() < deadline:
                client.loop(0.05)
        client.subscribe(capabilities_filter(prefix), qos=1)
        while time.monotonic() < deadline:
            client.loop(0.05)
            at = done.get("suback")
            if at is not None and time.monotonic() - at >= wait_s:
                break
    finally:
        client.disconnect()
        client._reset_sockets()
    return found


@click.command("declarations")
@config_option(required=True)
@click.option(
    "--wait-s",
    default=1.0,
    show_default=True,
    type=click.FloatRange(0.1, 30),
    help="How long to collect retained declarations after subscribing.",
)
@click.option("--withdraw", default=None, metavar="NAME", help="Delete consumer NAME's first.")
@json_option
def declarations_command(
    config_path: Path, wait_s: float, withdraw: str | None, as_json: bool
) -> None:
    """Show the central consumers' declarations and what negotiating units batch."""
    from gateway.config.settings import load_settings
    from gateway.config.transport import OutboxConfig
    from gateway.events.capabilities import DeclarationError, parse_declaration, valid_consumer
    from gateway.events.health import batch as batch_fields
    from gateway.events.topics import Topics, capabilities_topic
    from gateway.transport.forwarder import Batching
    from gateway.transport.negotiate import BatchPolicy

    settings = load_settings(config_path)
    if withdraw is not None and not valid_consumer(withdraw):
        raise UsageError(f"--withdraw {withdraw!r}: not a consumer name")
    prefix = settings.mqtt.topic_prefix
    found = _read(settings, wait_s, withdraw)
    box = OutboxConfig()
    own = Batching(
        Topics(prefix, "site", "unit").batch,
        box.batch_min_events,
        box.batch_max_events,
        box.batch_max_bytes,
    )
    policy = BatchPolicy("negotiate", own, prefix, settle_s=0.0)
    rows: list[dict[str, Any]] = []
    head = capabilities_topic(prefix, "")
    for topic, payload in sorted(found.items()):
        consumer = topic[len(head) :]
        with _quiet(logging.getLogger("gateway.transport.negotiate")):  # said below
            policy.on_message(topic, payload)
        try:
            d = parse_declaration(payload, consumer, prefix)
        except DeclarationError as exc:
            rows.append({"consumer": consumer, "ok": False, "error": str(exc)})
            continue
        rows.append(
            {
                "consumer": consumer,
                "ok": True,
                "ts": d.ts,
                "encodings": [
                    {
                        "encoding": e.label,
                        "types": sorted(e.types),
                        "max_events": e.max_events,
                        "max_bytes": e.max_bytes,
                    }
                    for e in d.encodings
                ],
            }
        )
    units = batch_fields(policy.health(0))
    for key in ("batch_since", "batches", "batch_mode"):
        units.pop(key, None)
    if as_json:
        print_json({"prefix": prefix, "declarations": rows, "units": units})
        return
    if withdraw is not None:
        click.echo(f"withdrew {capabilities_topic(prefix, withdraw)}")
    if not rows:
        click.echo(f"no declaration retained on {capabilities_topic(prefix, '+')}")
    for row in rows:
        if not row["ok"]:
            click.echo(f"{row['consumer']}: REFUSED by units: {row['error']}")
            continue
        entries = row["encodings"] or [{"encoding": "(none)", "types": []}]
        for e in entries:
            limits = (
                f" (max {e['max_events']} events, {e['max_bytes']} bytes)"
                if "max_events" in e
                else ""
            )
            types = ", ".join(e["types"]) or "no types"
            click.echo(f"{row['consumer']} ({row['ts']}): {e['encoding']}: {types}{limits}")
    state = units["batch_state"]
    what = f" for {units['batch_types']}" if state == "on" else ""
    click.echo(f'units with batch = "negotiate": batches {state}{what} ({units["batch_reason"]})')
