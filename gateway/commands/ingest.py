"""``gateway ingest``: the central worker, MQTT shared subscription -> InfluxDB."""

from __future__ import annotations

import signal
import threading
from pathlib import Path
from types import FrameType

import click

from gateway.commands.common import config_option
from gateway.errors import IngestError


def run_worker(config_path: Path | None, worker: str | None) -> None:
    """Run one ingest worker until SIGTERM or SIGINT, then flush and return."""
    # Imported here so `gateway --help` stays fast.
    from gateway.config.settings import load_settings
    from gateway.ingest.worker import IngestWorker

    settings = load_settings(config_path)
    stop = threading.Event()

    def _handler(signum: int, frame: FrameType | None) -> None:
        stop.set()

    previous = {sig: signal.signal(sig, _handler) for sig in (signal.SIGTERM, signal.SIGINT)}
    ingest = IngestWorker(settings, worker)
    try:
        ingest.start()
        while not stop.wait(0.5) and not ingest.failed_event.is_set():
            pass
    finally:
        ingest.stop()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    if ingest.failed is not None:
        raise IngestError(f"ingest pipeline failed: {ingest.failed}")


@click.command("ingest")
@config_option(required=True)
@click.option(
    "--worker",
    default=None,
    help="Worker name (client id <share_group>-<worker>); keep it stable across restarts. "
    "Defaults to [mqtt] client_id, else the host name.",
)
def ingest_command(config_path: Path, worker: str | None) -> None:
    """Write events from the broker to InfluxDB (MQTT v5 shared subscription, nothing lost).

    Several workers with the same [ingest] share_group split the messages. A message
    is acknowledged only once its points are written or spooled, or it has gone to
    the dead-letter topic. SIGTERM flushes and exits 0.
    """
    run_worker(config_path, worker)


def register(app: click.Group) -> None:
    """Add the ``ingest`` command to the root app."""
    app.add_command(ingest_command)
