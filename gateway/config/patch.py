"""Config documents: JSON merge patches (RFC 7386), TOML output, classification of changes."""

from __future__ import annotations

import copy
import json
import math
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from gateway.config.settings import GatewaySettings, read_toml, validate_settings
from gateway.errors import ConfigError
from gateway.jsontypes import JsonObject, JsonValue

# Camera fields that can change without restarting the gateway: only that camera's
# pipeline restarts.
_BARE_KEY = re.compile(r"^[A-Za-z0-9_-]+$")
# Analytics settings a camera restart picks up (the runner is rebuilt with the new config).
LIVE_CAMERA_FIELDS = frozenset(
    {"lines", "zones", "speed", "motion", "aggregate_interval_s", "flow", "drift"}
)


def merge_patch(target: Any, patch: Any) -> Any:
    """Apply an RFC 7386 JSON merge patch (``null`` deletes; arrays are replaced whole)."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    result = copy.deepcopy(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge_patch(result.get(key), value)
    return result


def _key(key: str) -> str:
    return key if _BARE_KEY.match(key) else json.dumps(key)


def _value(value: JsonValue) -> str:
    """A TOML inline value: JSON's spelling, except the floats JSON cannot write."""
    if isinstance(value, float) and not math.isfinite(value):
        return "nan" if math.isnan(value) else ("inf" if value > 0 else "-inf")
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_value(v) for v in value) + "]"
    return json.dumps(value, ensure_ascii=False)


def to_toml(data: Mapping[str, JsonValue], prefix: str = "") -> str:
    """Render JSON-like config data as TOML (tables, arrays of tables, inline values)."""
    scalars: list[str] = []
    tables: list[str] = []
    for key, value in data.items():
        name = f"{prefix}.{_key(key)}" if prefix else _key(key)
        if value is None:
            continue
        if isinstance(value, Mapping):
            tables.append(f"\n[{name}]\n" + to_toml(value, name))
        elif isinstance(value, list) and value and all(isinstance(v, Mapping) for v in value):
            tables.extend(
                f"\n[[{name}]]\n" + to_toml(item, name)
                for item in value
                if isinstance(item, Mapping)
            )
        else:
            scalars.append(f"{_key(key)} = {_value(value)}")
    return "\n".join(scalars) + "".join(tables) + ("" if prefix else "\n")


def patched_settings(
    path: Path, patch: Mapping[str, JsonValue]
) -> tuple[JsonObject, GatewaySettings]:
    """Read the file, apply ``patch`` and validate; :class:`ConfigError` when invalid."""
    if not isinstance(patch, dict):
        raise ConfigError("patch must be a JSON object")
    data = merge_patch(read_toml(path), patch)
    settings = validate_settings(data, "patched config")
    return data, settings


def patched_camera(
    path: Path, camera_id: str, patch: dict[str, Any]
) -> tuple[dict[str, Any], GatewaySettings]:
    """Read the file, merge ``patch`` into the camera ``camera_id``'s table and validate.

    Cameras are an array, which a merge patch replaces whole; this addresses one camera
    by its id, so the other cameras (and their source URLs) are left as they are.
    """
    if not isinstance(patch, dict):
        raise ConfigError("patch must be a JSON object")
    data = read_toml(path)
    cameras = data.get("cameras")
    index = next(
        (
            i
            for i, cam in enumerate(cameras if isinstance(cameras, list) else [])
            if isinstance(cam, dict) and cam.get("id") == camera_id
        ),
        None,
    )
    if index is None or not isinstance(cameras, list):
        raise ConfigError(f"the config file has no camera {camera_id!r}")
    edited = merge_patch(cameras[index], patch)
    if edited.get("id") != camera_id:
        raise ConfigError(f"cameras[{index}].id: an edit of one camera cannot change its id")
    data = {**data, "cameras": [*cameras[:index], edited, *cameras[index + 1 :]]}
    return data, validate_settings(data, "patched config")


def classify(old: GatewaySettings, new: GatewaySettings) -> tuple[list[str], list[str]]:
    """Split the differences into cameras to restart live and sections needing a restart."""
    live: list[str] = []
    restart: list[str] = []
    old_dump = old.model_dump(mode="json")
    new_dump = new.model_dump(mode="json")
    for section in new_dump:
        if section != "cameras" and old_dump.get(section) != new_dump[section]:
            restart.append(section)
    old_cams = {c.id: c.model_dump(mode="json") for c in old.cameras}
    new_cams = {c.id: c.model_dump(mode="json") for c in new.cameras}
    if list(old_cams) != list(new_cams):
        restart.append("cameras")
        return live, restart
    for cam_id, new_cam in new_cams.items():
        old_cam = old_cams[cam_id]
        changed = {k for k in new_cam if new_cam[k] != old_cam.get(k)}
        if not changed:
            continue
        if changed <= LIVE_CAMERA_FIELDS:
            live.append(cam_id)
        else:
            restart.append(f"cameras.{cam_id}")
    return live, restart
