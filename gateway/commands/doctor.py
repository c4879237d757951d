"""``gateway doctor -c FILE``: check on the spot what ``gateway run`` needs.

A thin renderer over :mod:`gateway.doctor`: one line per check as it completes,
``ok`` / ``warn`` / ``fail`` with the fix; ``--json`` prints the whole report.
Exit 0 when nothing failed (``gateway run`` would work), 1 otherwise.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING

import click

from gateway.commands.common import config_option, json_option, model_dir_option, print_json

if TYPE_CHECKING:
    from gateway.doctor import CheckResult

_COLOURS = {"ok": "green", "warn": "yellow", "fail": "red"}


@click.command("doctor")
@config_option(required=True)
@model_dir_option
@click.option(
    "--timeout",
    type=click.FloatRange(0.5, 120),
    help="One timeout (s) for every network check; default: each camera's stall_timeout_s, "
    "5 s for the broker, the database's timeout_s.",
)
@click.option(
    "--role",
    type=click.Choice(["auto", "run", "ingest", "both"]),
    default="auto",
    show_default=True,
    help="What the config is for (auto: ingest with an [ingest] table, run with cameras, "
    "sensors or no [ingest]).",
)
@click.option(
    "--only",
    multiple=True,
    metavar="CHECK",
    help="Run only this check (repeatable): models, cameras, serial, broker, database, disk, "
    "clock. The config is always checked.",
)
@json_option
def doctor_command(  # noqa: PLR0917 (one parameter per option)
    config_path: Path,
    model_dir: Path | None,
    timeout: float | None,
    role: str,
    only: tuple[str, ...],
    as_json: bool,
) -> None:
    """Check everything `gateway run` (or `gateway ingest`) needs, one line per check.

    Config valid; the ONNX Runtime execution providers the cameras ask for; each
    camera's model in the store (or the command that installs it); each camera opens
    and yields a frame; each serial port opens and what arrives decodes; the broker
    (TCP, TLS and this unit's certificate, CONNACK with the credentials); the database
    for ingest configs; room on disk for the outbox; the clock set and
    NTP-synchronised. Exit 0 when nothing failed, 1 otherwise.

    The broker check connects as <client id>-doctor; a broker that takes the client id
    from the certificate makes a running gateway reconnect once.
    """
    from gateway.doctor import CHECKS, run_doctor

    unknown = sorted(set(only) - set(CHECKS))
    if unknown:
        raise click.BadParameter(
            f"unknown check {', '.join(unknown)}; known: {', '.join(CHECKS)}", param_hint="--only"
        )
    roles = {
        "auto": None,
        "run": frozenset({"run"}),
        "ingest": frozenset({"ingest"}),
        "both": frozenset({"run", "ingest"}),
    }[role]
    colour = sys.stdout.isatty() and not as_json
    report = run_doctor(
        config_path,
        roles=roles,  # type: ignore[arg-type]
        timeout_s=timeout,
        only=only or None,
        model_dir=model_dir,
        on_result=None if as_json else (lambda r: click.echo(_line(r, colour))),
    )
    if as_json:
        print_json(report.as_dict())
    else:
        click.echo(
            f"{report.count('fail')} failed, {report.count('warn')} warning(s), "
            f"{report.count('ok')} ok: {report.verdict}"
        )
    if report.unreadable_config:  # the file named is missing or not TOML: an input error
        raise click.exceptions.Exit(2)
    if not report.ok:
        raise click.exceptions.Exit(1)


def _line(result: CheckResult, colour: bool) -> str:
    status = f"{result.status:<4}"
    if colour:
        status = click.style(status, fg=_COLOURS[result.status], bold=result.status != "ok")
    text = f"{status}  {result.name:<22} {result.detail}"
    if result.fix:
        text += f"  -> fix: {result.fix}"
    return text


def register(app: click.Group) -> None:
    """Add the ``doctor`` command to the root app."""
    app.add_command(doctor_command)
