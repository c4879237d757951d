"""``gateway run``: the long-running gateway service."""

from __future__ import annotations

from pathlib import Path

import click

from gateway.commands.common import config_option


def register(app: click.Group) -> None:
    """Add the ``run`` command to the root app."""
    app.add_command(run)


@click.command("run")
@config_option(required=True)
def run(config_path: Path) -> None:
    """Run every configured camera and sensor and publish their events over MQTT.

    Events are stored in the on-disk outbox first and leave it when the broker has
    acknowledged them. SIGTERM or SIGINT flushes, publishes `offline` and exits 0.
    Under systemd (Type=notify) it reports READY, WATCHDOG and STOPPING.
    """
    import logging

    from gateway.app import App
    from gateway.config.settings import load_settings
    from gateway.interrupt import stop_on_signals
    from gateway.logs import setup_logging
    from gateway.runtime.link_gate import recover_interrupted_trial

    recover_interrupted_trial(config_path)  # a power cut during an [mqtt] trial
    settings = load_settings(config_path)
    ctx = click.get_current_context()
    if ctx.find_root().params.get("log_level") == "info" and not ctx.find_root().params.get(
        "debug"
    ):
        setup_logging(settings.logging.level, settings.logging.format)
    tls = settings.mqtt.tls
    if tls is not None and tls.cert_file is not None:
        from gateway.security.pki import certificate_mismatch

        problem = certificate_mismatch(tls.cert_file, settings.gateway.site, settings.gateway.id)
        if problem:
            logging.getLogger("gateway.run").error(problem)
    with stop_on_signals() as stop:
        app = App(settings, config_path)
        try:
            app.start()
            while not stop.wait(1.0):
                pass
        finally:
            app.stop()
