"""``gateway sensors``: list protocols, decode a captured byte stream, read a live port."""

from __future__ import annotations

import json
import queue
import sys
import time
from pathlib import Path
from typing import Any, BinaryIO

import click

from gateway.commands.common import config_option, json_option, print_json
from gateway.errors import ConfigError, InputError, SensorError, UsageError

CHUNK = 4096


def reading_to_dict(reading: Any) -> dict[str, Any]:
    """Return the JSON shape of a reading (one object per line)."""
    out: dict[str, Any] = {"protocol": reading.protocol}
    if reading.sensor_id:
        out["sensor_id"] = reading.sensor_id
    out["values"] = reading.values
    if reading.extra:
        out["extra"] = reading.extra
    out["timestamp"] = round(reading.timestamp, 3)
    return out


def _print_reading(reading: Any, as_json: bool) -> None:
    if as_json:
        print_json(reading_to_dict(reading))
        return
    values = " ".join(f"{k}={v}" for k, v in reading.values.items())
    sys.stdout.write(f"{reading.protocol} {values}\n")
    sys.stdout.flush()


def _summary(stats: dict[str, Any]) -> None:
    keys = [
        k for k, v in stats.items() if isinstance(v, int | float) and (v or k in ("bytes", "good"))
    ]
    text = " ".join(f"{k}={stats[k]}" for k in keys)
    click.echo(f"summary: {text}", err=True)


def parse_options(pairs: tuple[str, ...]) -> dict[str, str | int | float | bool]:
    """Parse ``key=value`` protocol options (true/false, numbers, else text)."""
    options: dict[str, str | int | float | bool] = {}
    for pair in pairs:
        key, sep, raw = pair.partition("=")
        if not sep or not key:
            raise UsageError(f"--option needs key=value, got {pair!r}")
        value: str | int | float | bool = raw
        if raw.lower() in ("true", "false"):
            value = raw.lower() == "true"
        else:
            for kind in (int, float):
                try:
                    value = kind(raw)
                    break
                except ValueError:
                    continue
        options[key] = value
    return options


option_option = click.option(
    "--option",
    "-o",
    "options",
    multiple=True,
    metavar="KEY=VALUE",
    help="Protocol option, repeatable (nmea allow_missing_checksum=true; ops243 unit=mph).",
)


@click.group("sensors")
def sensors_group() -> None:
    """List protocols, decode captured streams and read live serial ports."""


@sensors_group.command("protocols")
@json_option
def protocols_command(as_json: bool) -> None:
    """List the sensor protocols the gateway understands."""
    from gateway.sensors.registry import PROTOCOLS

    rows = [
        {"name": s.name, "kind": s.kind, "description": s.description} for s in PROTOCOLS.values()
    ]
    if as_json:
        print_json(rows)
        return
    for row in rows:
        click.echo(f"{row['name']:<10} {row['kind']:<7} {row['description']}")


@sensors_group.command("decode")
@click.option(
    "--protocol", "-p", required=True, help="Protocol name (see `gateway sensors protocols`)."
)
@click.argument("source", default="-", metavar="[FILE|-]")
@option_option
@json_option
def decode_command(protocol: str, source: str, options: tuple[str, ...], as_json: bool) -> None:
    """Decode a captured byte stream (binary file, or - for stdin): one reading per line.

    A summary of the decoder's counters goes to stderr.
    """
    from gateway.sensors.registry import make_decoder

    decoder = make_decoder(protocol, "", parse_options(options))
    if source == "-":
        received, readings = _decode_stream(decoder, sys.stdin.buffer, as_json)
    else:
        path = Path(source)
        try:
            stream = path.open("rb")
        except OSError as exc:
            raise InputError(f"cannot read capture {path}: {exc.strerror or exc}") from exc
        with stream:
            received, readings = _decode_stream(decoder, stream, as_json)
    stats_fn = getattr(decoder, "stats", None)
    stats = stats_fn() if callable(stats_fn) else {}
    if stats:
        _summary(stats)
    if received and not readings:  # junk is not a result: say so and exit 2
        error = InputError(f"no valid {protocol} frame in {received} bytes of {source}")
        error.fix = (
            "check --protocol (gateway sensors protocols) and that the capture was taken at "
            "the sensor's baud rate"
        )
        raise error


def _decode_stream(decoder: Any, stream: BinaryIO, as_json: bool) -> tuple[int, int]:
    """Decode and print everything; (bytes read, readings printed)."""
    received = readings = 0
    while chunk := stream.read(CHUNK):
        received += len(chunk)
        for reading in decoder.feed(chunk):
            _print_reading(reading, as_json)
            readings += 1
    return received, readings


def _sensor_config(
    *,
    config_path: Path | None,
    sensor: str | None,
    port: str | None,
    protocol: str | None,
    baud: int | None,
    options: dict[str, str | int | float | bool],
) -> Any:
    from pydantic import ValidationError

    from gateway.config.sensors import SensorConfig
    from gateway.config.settings import format_validation_error, load_settings
    from gateway.sensors.registry import get_protocol

    if config_path is not None or sensor is not None:
        settings = load_settings(config_path)
        found = [s for s in settings.sensors if s.id == sensor] if sensor else settings.sensors[:1]
        if not found:
            known = ", ".join(s.id for s in settings.sensors) or "none"
            raise UsageError(f"no sensor {sensor!r} in the config (configured: {known})")
        cfg = found[0]
        updates = {"port": port, "protocol": protocol, "baud": baud}
        data = cfg.model_dump() | {k: v for k, v in updates.items() if v is not None}
        data["options"] = data["options"] | options
    else:
        if port is None or protocol is None:
            raise UsageError("give --port and --protocol, or --config with --sensor")
        get_protocol(protocol)
        data = {"id": "cli", "protocol": protocol, "port": port, "options": options}
        if baud is not None:
            data["baud"] = baud
    data["reopen_max_s"] = min(float(data.get("reopen_max_s", 30.0)), 2.0)
    try:
        return SensorConfig.model_validate(data)
    except ValidationError as exc:
        raise ConfigError("invalid sensor settings", format_validation_error(exc)) from exc


@sensors_group.command("read")
@config_option()
@click.option("--sensor", help="A sensor id from the config file.")
@click.option("--port", help="Device path or pyserial URL (socket://host:port, rfc2217://...).")
@click.option("--protocol", "-p", help="Protocol name (see `gateway sensors protocols`).")
@click.option("--baud", type=click.IntRange(min=1), help="Baud rate (default 9600).")
@click.option("--count", type=click.IntRange(min=1), help="Stop after N readings.")
@click.option(
    "--seconds", type=click.FloatRange(min=0, min_open=True), help="Stop after S seconds."
)
@option_option
@json_option
def read_command(  # noqa: PLR0917 (click passes options positionally)
    config_path: Path | None,
    sensor: str | None,
    port: str | None,
    protocol: str | None,
    baud: int | None,
    count: int | None,
    seconds: float | None,
    options: tuple[str, ...],
    as_json: bool,
) -> None:
    """Read a live port and print readings until --count, --seconds or Ctrl-C."""
    from gateway.sensors.registry import get_protocol
    from gateway.serialports.reader import SensorReader, open_port

    cfg = _sensor_config(
        config_path=config_path,
        sensor=sensor,
        port=port,
        protocol=protocol,
        baud=baud,
        options=parse_options(options),
    )
    if get_protocol(cfg.protocol).kind == "stream":
        from gateway.sensors.ports import open_problem, port_problem

        problem = port_problem(cfg.port)
        if problem is None:
            try:  # fail fast with the cause; the reader itself would keep retrying
                open_port(cfg.port, cfg.baud).close()
            except Exception as exc:  # pyserial raises SerialException, OSError, ValueError
                problem = open_problem(cfg.port, exc)
        if problem is not None:  # a path that is no serial port is what was typed: exit 2
            kind = InputError if problem.cause == "not a serial port" else SensorError
            error = kind(f"cannot open port {cfg.port}: {problem}")
            error.fix = problem.fix
            raise error
    readings: queue.Queue[Any] = queue.Queue(maxsize=10000)
    reader = SensorReader(cfg, readings.put)
    deadline = time.monotonic() + seconds if seconds else None
    printed = 0
    reader.start()
    try:
        while count is None or printed < count:
            remaining = None if deadline is None else deadline - time.monotonic()
            if remaining is not None and remaining <= 0:
                break
            try:
                reading = readings.get(timeout=min(0.5, remaining) if remaining else 0.5)
            except queue.Empty:
                if reader.health().state == "waiting" and printed == 0 and reader.opens == 0:
                    raise SensorError(f"cannot open port {cfg.port}: {reader.last_error}") from None
                continue
            _print_reading(reading, as_json)
            printed += 1
    finally:
        reader.stop()
    stats = reader.health().counters()
    if as_json:
        click.echo(json.dumps({"summary": stats}), err=True)
    else:
        _summary(stats)


def register(app: click.Group) -> None:
    """Add the ``sensors`` command group to the root app."""
    app.add_command(sensors_group)
