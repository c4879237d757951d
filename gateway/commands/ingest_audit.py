"""``gateway ingest audit``: per unit and per day, every event in the database, or why not."""

from __future__ import annotations

import datetime as dt
import re
import time
from pathlib import Path

import click

from gateway.commands.common import config_option, json_option, print_json
from gateway.errors import UsageError

# Exit code when some day has a gap nothing on the unit explains (or a chain mismatch).
UNEXPLAINED_EXIT = 3
_AGO = re.compile(r"^(\d+)([dhm])$")
_UNIT = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")


def parse_when(text: str, now_s: float) -> float:
    """Epoch seconds from an ISO date/time (UTC unless it says) or an age: 7d, 12h, 30m."""
    ago = _AGO.match(text.strip())
    if ago:
        return now_s - int(ago.group(1)) * {"d": 86400, "h": 3600, "m": 60}[ago.group(2)]
    try:
        moment = dt.datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError as exc:
        raise UsageError(
            f"{text!r} is not a time: give an ISO date or time (2026-12-01, "
            "2026-12-01T06:00) in UTC, or an age such as 7d, 12h, 30m"
        ) from exc
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.UTC)
    return moment.timestamp()


@click.command("audit")
@config_option(required=True)
@click.option("--since", required=True, help="Start: ISO date/time (UTC) or an age (7d, 12h).")
@click.option("--until", default=None, help="End (exclusive), same forms; default now.")
@click.option("--unit", default=None, help="Only this unit (its [gateway] id).")
@click.option(
    "--margin-s",
    type=click.FloatRange(0),
    default=3600.0,
    show_default=True,
    help="Read receipts this far outside the window (event times vs manifest times).",
)
@click.option("--no-write", is_flag=True, help="Do not write the accounts to the database.")
@json_option
@click.pass_context
def audit_command(
    ctx: click.Context,
    *,
    config_path: Path,
    since: str,
    until: str | None,
    unit: str | None,
    margin_s: float,
    no_write: bool,
    as_json: bool,
) -> None:
    """Reconcile the units' manifests with what the database holds, per unit and day.

    A gap is attributed to the unit (its outbox dropped it and says so), to transit
    (the unit let it go and the database does not have it) or to the unit's outbox
    (still waiting there). Exit code 3 when a gap nothing explains, or a chain
    mismatch, is found; 0 otherwise. The database is read with [ingest.influx]
    query_api: "influxql" (InfluxDB) or "victoriametrics" (docs/ledger.md).
    """
    from gateway.config.settings import load_settings
    from gateway.ingest.audit import audit, describe
    from gateway.ingest.database import Database, RejectedWriteError, RetryableWriteError
    from gateway.ingest.ledger_readers import ledger_reader

    if unit is not None and not _UNIT.match(unit):
        raise UsageError(f"--unit {unit!r}: a unit id is [A-Za-z0-9_.-]{{1,64}}")
    now = time.time()
    start = parse_when(since, now)
    end = parse_when(until, now) if until else now
    if end <= start:
        raise UsageError(f"--until ({until}) must come after --since ({since})")
    settings = load_settings(config_path)
    reader = ledger_reader(settings.ingest.influx)
    result = audit(
        reader, int(start * 1000), int(end * 1000), unit=unit, margin_ms=int(margin_s * 1000)
    )
    if as_json:
        print_json(
            {
                "since": start,
                "until": end,
                "failed": result.failed,
                "days": [d.json() for d in result.days],
            }
        )
    else:
        for report in result.days:
            for line in describe(report):
                click.echo(line)
        if not result.days:
            click.echo("no manifests in the window", err=True)
    if result.lines and not no_write:
        database = Database(settings.ingest.influx)
        try:
            database.write(result.lines)
        except (RetryableWriteError, RejectedWriteError) as exc:  # the report is out
            click.echo(
                f"error: the accounts were not written to {settings.ingest.influx.url}: "
                f"{exc} (the report above is complete; --no-write skips writing)",
                err=True,
            )
            if not result.failed:
                ctx.exit(1)
        finally:
            database.close()
    if result.failed:
        ctx.exit(UNEXPLAINED_EXIT)
