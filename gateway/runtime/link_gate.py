"""A settings change that could cut the unit off is applied only if the unit reconnects.

A change of the ``[mqtt]`` section (broker address, port, TLS, credentials, protocol)
is saved, the link reconnects with it, and the change stays only when the broker
accepts the new connection within ``[security] rollback_deadline_s``. Otherwise the
last good config file is restored, the link reconnects with the old settings, and the
command fails with the reason: a unit is never left with a config that cannot reach
its broker (before, such a change was saved for the next start and the unit was gone
after it). While a change is on trial the last good file waits beside the config
(``gateway.toml.last-good``); ``gateway run`` puts it back when it finds one (the gateway
stopped or lost power during the trial).
"""

from __future__ import annotations

import logging
import os
import threading
import time
import tomllib
from pathlib import Path
from typing import Protocol

from gateway.atomicfile import write_atomically
from gateway.config.settings import load_settings
from gateway.config.transport import MqttConfig
from gateway.errors import TransportError
from gateway.runtime.live_settings import ApplyResult, LiveSettings, Replacement, SettingsChange

log = logging.getLogger(__name__)


def last_good_path(config: Path) -> Path:
    """Where the last good config waits while an ``[mqtt]`` change is on trial."""
    return config.with_name(config.name + ".last-good")


def recover_interrupted_trial(config: Path) -> bool:
    """Put the last good config back when the gateway stopped during a trial (power cut).

    Called before the config is loaded; ``True`` when it was restored.
    """
    saved = last_good_path(config)
    if not saved.exists():
        return False
    os.replace(saved, config)
    log.warning(
        "%s: the gateway stopped while a new [mqtt] setting was on trial; "
        "the last good config is restored",
        config,
    )
    return True


class GatedLink(Protocol):
    """What the gate needs of the MQTT link."""

    cfg: MqttConfig
    connects: int
    last_error: str | None

    @property
    def connected(self) -> bool:
        """Whether the broker accepted the current connection."""

    def reconfigure(self, cfg: MqttConfig) -> None:
        """Reconnect with ``cfg``."""


class ConnectionGate:
    """Applies settings changes, gating ``[mqtt]`` changes on a reconnect."""

    def __init__(self, live: LiveSettings, link: GatedLink, deadline_s: float) -> None:
        self.live = live
        self.link = link
        self.deadline_s = deadline_s
        self._lock = threading.Lock()

    def _reconnected(self, before: int, deadline_s: float) -> bool:
        end = time.monotonic() + deadline_s
        while time.monotonic() < end:
            if self.link.connects > before and self.link.connected:
                return True
            time.sleep(0.05)
        return False

    def apply(self, change: SettingsChange) -> ApplyResult:
        """Apply ``change``; an ``[mqtt]`` change only if the unit reconnects with it."""
        with self._lock:
            path = self.live.config_path
            old_text = path.read_text(encoding="utf-8") if path is not None else None
            result = self.live.apply_settings(change)
            if path is None or old_text is None or "mqtt" not in result.restart_required:
                return result
            new_cfg = load_settings(path).mqtt
            old_cfg = self.link.cfg
            if new_cfg == old_cfg:
                return result
            saved = last_good_path(path)
            write_atomically(saved, old_text)  # survives a power cut during the trial
            before = self.link.connects
            self.link.reconfigure(new_cfg)
            if self._reconnected(before, self.deadline_s):
                saved.unlink(missing_ok=True)
                rest = tuple(r for r in result.restart_required if r != "mqtt")
                return ApplyResult((*result.applied, "mqtt"), rest)
            reason = self.link.last_error or "no CONNACK"
            self.live.apply_settings(Replacement(tomllib.loads(old_text)))
            saved.unlink(missing_ok=True)
            before = self.link.connects
            self.link.reconfigure(old_cfg)
            back = self._reconnected(before, self.deadline_s)
            raise TransportError(
                f"the unit did not reconnect with the new [mqtt] settings within "
                f"{self.deadline_s:.0f} s ({reason}): the last good config is restored"
                + ("" if back else " (and the old broker does not answer yet either)")
            )
