"""``gateway ingest``: the central worker, and ``gateway ingest deadletters`` to list/replay."""

from __future__ import annotations

import datetime as dt
import time
from pathlib import Path
from typing import Any

import click

from gateway.commands.common import config_option, json_option, print_json
from gateway.errors import IngestError, UsageError
from gateway.interrupt import stop_on_signals

_RETIRE_QUIET_S = 3.0


def run_worker(config_path: Path | None, worker: str | None, retire: bool = False) -> None:
    """Run one ingest worker until SIGTERM or SIGINT, then flush and return.

    ``retire``: drain what the broker queued for this worker's session, then end the
    session on the broker and return (a worker leaving for good).
    """
    # Imported here so `gateway --help` stays fast.
    from gateway.config.settings import load_settings
    from gateway.ingest.worker import IngestWorker

    settings = load_settings(config_path)
    with stop_on_signals() as stop:
        ingest = IngestWorker(settings, worker, retire=retire)
        try:
            ingest.start()
            quiet_since: float | None = None
            last_received = -1
            while not stop.wait(0.5) and not ingest.failed_event.is_set():
                if not retire or not ingest.subscribed.is_set():
                    continue
                received = ingest.stats.received
                if not ingest.drained():
                    quiet_since = None
                elif quiet_since is None or received != last_received:
                    quiet_since, last_received = time.monotonic(), received
                elif time.monotonic() - quiet_since >= _RETIRE_QUIET_S:
                    break  # drained and nothing new for a while: end the session
        finally:
            ingest.stop()
    if ingest.failed is not None:
        raise IngestError(f"ingest pipeline failed: {ingest.failed}")
    if retire:
        click.echo(
            f"worker {ingest.worker} retired: {ingest.stats.events_written} queued events "
            "written, its session on the broker removed"
        )


@click.group("ingest", invoke_without_command=True)
@config_option()
@click.option(
    "--worker",
    default=None,
    help="Worker name (client id <share_group>-<worker>); keep it stable across restarts. "
    "Defaults to [mqtt] client_id, else the host name.",
)
@click.option(
    "--retire",
    is_flag=True,
    help="For a worker leaving for good: unsubscribe, write what the broker queued for "
    "this worker's session, then remove the session from the broker and exit.",
)
@click.pass_context
def ingest_command(
    ctx: click.Context, config_path: Path | None, worker: str | None, retire: bool
) -> None:
    """Write events from the broker to InfluxDB (MQTT v5 shared subscription, nothing lost).

    Several workers with the same [ingest] share_group split the messages. A message
    is acknowledged only once its points are written or spooled, or it is kept in the
    dead-letter store. SIGTERM flushes and exits 0.
    """
    if ctx.invoked_subcommand is not None:
        return
    if config_path is None:
        raise click.UsageError("Missing option '--config' / '-c'.")
    run_worker(config_path, worker, retire)


@ingest_command.group("deadletters")
def deadletters_group() -> None:
    """List, replay or purge the messages the ingest could not write (with reasons)."""


_reason_option = click.option("--reason", default=None, help="Only letters of this reason.")
_id_option = click.option("--id", "ids", type=int, multiple=True, help="Only this letter (repeat).")


def _open(config_path: Path) -> tuple[Any, Any]:
    from gateway.config.settings import load_settings
    from gateway.ingest.deadstore import DeadLetterStore, store_path

    settings = load_settings(config_path)
    path = store_path(settings)
    if not path.exists():
        raise UsageError(f"no dead-letter store at {path}")
    return settings, DeadLetterStore(path, settings.ingest.dead_letter_max_bytes)


@deadletters_group.command("list")
@config_option(required=True)
@_reason_option
@_id_option
@click.option("--limit", type=click.IntRange(1), default=None, help="At most this many.")
@click.option("--payload", "show_payload", is_flag=True, help="Print each payload too.")
@json_option
def list_command(
    *,
    config_path: Path,
    reason: str | None,
    ids: tuple[int, ...],
    limit: int | None,
    show_payload: bool,
    as_json: bool,
) -> None:
    """List stored dead letters, oldest first, with their reasons."""
    _settings, store = _open(config_path)
    try:
        letters = store.letters(reason=reason, ids=ids, limit=limit)
        total = store.count()
    finally:
        store.close()
    if as_json:
        for letter in letters:
            print_json(
                {
                    "id": letter.id,
                    "stored_at": letter.stored_at,
                    "worker": letter.worker,
                    "kind": letter.kind,
                    "reason": letter.reason,
                    "detail": letter.detail,
                    "topic": letter.topic,
                    "size": letter.size,
                    "truncated": letter.truncated,
                    "attempts": letter.attempts,
                    "payload": letter.payload.decode("utf-8", "backslashreplace"),
                }
            )
        return
    for letter in letters:
        when = dt.datetime.fromtimestamp(letter.stored_at, dt.UTC).strftime("%Y-%m-%d %H:%M:%S")
        cut = " truncated" if letter.truncated else ""
        click.echo(
            f"{letter.id:>8}  {when}  {letter.reason:<15} {letter.kind:<7} {letter.size:>8} B"
            f"{cut}  {letter.topic}  {letter.detail}"
        )
        if show_payload:
            click.echo(f"          {letter.payload[:2000].decode('utf-8', 'backslashreplace')}")
    click.echo(f"{len(letters)} shown, {total} stored", err=True)


@deadletters_group.command("replay")
@config_option(required=True)
@_reason_option
@_id_option
@json_option
def replay_command(
    config_path: Path, reason: str | None, ids: tuple[int, ...], as_json: bool
) -> None:
    """Write stored dead letters again with the current config; remove those that go in."""
    from gateway.ingest.convert import Limits
    from gateway.ingest.database import Database
    from gateway.ingest.replay import ReplayStoppedError, replay_store

    settings, store = _open(config_path)
    database = Database(settings.ingest.influx)
    try:
        selected, result = replay_store(
            store,
            database,
            Limits.of(settings.ingest, settings.mqtt.topic_prefix),
            reason=reason,
            ids=ids,
            batch_size=settings.ingest.influx.batch_size,
        )
    except ReplayStoppedError as exc:
        raise IngestError(
            f"replay stopped after {len(exc.result.written)} letters written and removed "
            f"(the rest stay in the store): {exc}"
        ) from exc
    finally:
        database.close()
        store.close()
    summary = {
        "selected": selected,
        "written": len(result.written),
        "refused_again": len(result.refused),
        "skipped_truncated": len(result.skipped_truncated),
    }
    if as_json:
        print_json({**summary, "refused": [list(r) for r in result.refused]})
        return
    for letter_id, why, detail in result.refused:
        click.echo(f"{letter_id:>8}  still refused: {why}: {detail}")
    click.echo(
        f"{summary['written']} of {summary['selected']} written and removed, "
        f"{summary['refused_again']} refused again, "
        f"{summary['skipped_truncated']} truncated (not replayable)"
    )


@deadletters_group.command("purge")
@config_option(required=True)
@_reason_option
@_id_option
@click.option("--yes", is_flag=True, help="Really delete them.")
def purge_command(config_path: Path, reason: str | None, ids: tuple[int, ...], yes: bool) -> None:
    """Delete stored dead letters (all, or of one reason, or by id)."""
    if not yes:
        raise click.UsageError("purge deletes letters for good: add --yes")
    _settings, store = _open(config_path)
    try:
        removed = store.remove(letter.id for letter in store.letters(reason=reason, ids=ids))
    finally:
        store.close()
    click.echo(f"{removed} letters deleted")


def register(app: click.Group) -> None:
    """Add the ``ingest`` command to the root app."""
    from gateway.commands.declarations import declarations_command
    from gateway.commands.ingest_audit import audit_command

    ingest_command.add_command(audit_command)
    ingest_command.add_command(declarations_command)
    app.add_command(ingest_command)
