"""The running settings of a gateway and the one way to change them.

:meth:`LiveSettings.apply_settings` is what every caller uses to change a running
gateway's settings (the ``set_config`` command today; a local console or a fleet
rollout the same way): it validates the change (a :class:`ConfigError` whose
``problems`` name the field paths), writes the TOML file atomically, restarts the
camera pipelines whose change can be applied live and reports what needs a restart
of the gateway. Changes are applied one at a time.
"""

from __future__ import annotations

import threading
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from gateway.atomicfile import write_atomically
from gateway.config.patch import classify, patched_camera, patched_settings, to_toml
from gateway.config.settings import GatewaySettings, validate_settings
from gateway.config.vision import CameraConfig
from gateway.errors import ConfigError, ConfigWriteError
from gateway.jsontypes import JsonObject, JsonValue


@dataclass(frozen=True, slots=True)
class MergePatch:
    """A JSON merge patch (RFC 7386) over the config file's contents."""

    patch: Mapping[str, JsonValue]


@dataclass(frozen=True, slots=True)
class Replacement:
    """A whole new config document: it replaces the file's contents."""

    document: Mapping[str, JsonValue]


@dataclass(frozen=True, slots=True)
class CameraEdit:
    """A JSON merge patch over one camera's table (the ``[[cameras]]`` with this ``id``).

    A merge patch replaces arrays whole; this one edits one element, so a caller that
    changes one camera's lines never sends (or sees) the other cameras' settings.
    """

    camera_id: str
    patch: Mapping[str, Any]


SettingsChange = MergePatch | Replacement | CameraEdit


@dataclass(frozen=True, slots=True)
class ApplyResult:
    """What a settings change did once it was saved."""

    applied: tuple[str, ...]
    """Cameras whose pipeline restarted with the new settings."""
    restart_required: tuple[str, ...]
    """Sections (``mqtt``, ``cameras.<id>``, ...) that take effect at the next start."""

    @property
    def status(self) -> Literal["unchanged", "applied", "restart_required"]:
        """``restart_required`` when anything waits for a restart, else whether anything ran."""
        if self.restart_required:
            return "restart_required"
        return "applied" if self.applied else "unchanged"

    @property
    def message(self) -> str | None:
        """A line for an operator when a restart is needed."""
        if not self.restart_required:
            return None
        return "restart required for: " + ", ".join(self.restart_required)

    def to_json(self) -> dict[str, object]:
        """The reply shape of ``set_config``."""
        out: dict[str, object] = {
            "applied": list(self.applied),
            "restart_required": list(self.restart_required),
        }
        if self.message is not None:
            out["message"] = self.message
        return out


class LiveSettings:
    """Owns the running settings and the config file they were loaded from."""

    def __init__(
        self,
        settings: GatewaySettings,
        config_path: Path | None,
        restart_camera: Callable[[CameraConfig], None],
    ) -> None:
        """Hold ``settings``; ``restart_camera`` restarts one camera's running pipeline.

        ``restart_camera`` is called for each camera whose change applies live; it does
        nothing for a camera that is not running.
        """
        self._settings = settings
        self.config_path = config_path
        self._restart_camera = restart_camera
        self._lock = threading.Lock()

    @property
    def current(self) -> GatewaySettings:
        """The running settings (a value: a change replaces it, never edits it)."""
        return self._settings

    def apply_settings(self, change: SettingsChange) -> ApplyResult:
        """Validate, save and apply ``change``; raise :class:`ConfigError` when invalid.

        Nothing is written or restarted unless the whole new document validates;
        :class:`ConfigWriteError` when the file cannot be written (nothing changes then).
        """
        with self._lock:
            path = self.config_path
            if path is None:
                raise ConfigError("the gateway runs without a config file: nothing to patch")
            data, new = _validated(path, change)
            old = self._settings
            live, restart = classify(old, new)
            text = to_toml(data)
            if _read_back(text) != data:  # never save a file that reads back otherwise
                raise ConfigError("the new settings cannot be written as TOML: nothing was changed")
            try:
                write_atomically(path, text)
            except OSError as exc:
                reason = exc.strerror or str(exc)
                raise ConfigWriteError(
                    f"cannot write config file {path}: {reason}; nothing was changed"
                ) from exc
            by_id = {c.id: c for c in new.cameras}
            for cam_id in live:
                self._restart_camera(by_id[cam_id])
            running = [by_id[c.id] if c.id in live else c for c in old.cameras]
            self._settings = old.model_copy(update={"cameras": running})
            return ApplyResult(tuple(live), tuple(restart))


def _validated(path: Path, change: SettingsChange) -> tuple[JsonObject, GatewaySettings]:
    """The new file contents and the settings they validate to."""
    if isinstance(change, MergePatch):
        return patched_settings(path, dict(change.patch))
    if isinstance(change, CameraEdit):
        return patched_camera(path, change.camera_id, dict(change.patch))
    data = dict(change.document)
    return data, validate_settings(data, "new config")


def _read_back(text: str) -> dict[str, Any] | None:
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError:
        return None
