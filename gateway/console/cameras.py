"""A camera's live state and geometry for the page, and the page's edits as a settings change.

The page edits lines, zones and the speed calibration of one camera. Its save becomes
a :class:`~gateway.runtime.live_settings.CameraEdit` (a merge patch over that camera's
table) for the gateway's ``apply_settings``: the same validation, atomic write and
pipeline restart as the MQTT ``set_config``. Field errors come back as the settings'
paths (``cameras[0].lines[1].points: ...``); :func:`page_problems` turns them into the
page's own paths (``lines[1].points``) so each is shown next to its field.
"""

from __future__ import annotations

import re
from typing import Any

from gateway.config.vision import CameraConfig
from gateway.console.unit import ConsoleCamera
from gateway.errors import InputError
from gateway.health import CaptureState

# The capture's states as a crew reads them.
CAMERA_STATE: dict[CaptureState, str] = {
    "streaming": "ok",
    "stalled": "stalled",
    "connecting": "reconnecting",
    "backoff": "reconnecting",
    "idle": "starting",
    "ended": "ended",
    "stopped": "stopped",
}
EDITABLE = ("lines", "zones", "speed")
MAX_SHAPES = 64  # lines or zones in one camera edit
MAX_POINTS = 64  # points of one zone
# pydantic's wording for the few errors a crew makes, said the crew's way
_PLAIN = (
    (
        re.compile(r"String should match pattern .*"),
        "use 1 to 64 letters, digits, '_', '.' or '-' (no spaces)",
    ),
    (
        re.compile(r"Input should be greater than or equal to 0(\.0)?$"),
        "must be inside the picture",
    ),
    (re.compile(r"Input should be less than or equal to 1(\.0)?$"), "must be inside the picture"),
    (re.compile(r"Input should be a valid number.*"), "must be a number"),
)


def geometry(camera: CameraConfig) -> dict[str, Any]:
    """The editable shapes of ``camera`` as the page edits them (defaults left out)."""
    return {
        "lines": [line.model_dump(mode="json", exclude_defaults=True) for line in camera.lines],
        "zones": [zone.model_dump(mode="json", exclude_defaults=True) for zone in camera.zones],
        "speed": None if camera.speed is None else camera.speed.model_dump(mode="json"),
    }


def live_state(runner: ConsoleCamera) -> dict[str, Any]:
    """What the page shows beside the frame: state, rates, counts per line, zone occupancy."""
    health = runner.health()
    capture = health.capture
    counts = runner.counts() or {}
    occupancy = runner.occupancy() or {}
    lines = {}
    for line in runner.camera.lines:
        dirs = counts.get(line.id, {})
        lines[line.id] = {
            "left_to_right": sum(dirs.get("left_to_right", {}).values()),
            "right_to_left": sum(dirs.get("right_to_left", {}).values()),
            "by_class": {d: dict(labels) for d, labels in dirs.items()},
        }
    zones = {
        zone.id: {
            "inside": sum(occupancy.get(zone.id, {}).values()),
            "by_class": dict(occupancy.get(zone.id, {})),
        }
        for zone in runner.camera.zones
    }
    return {
        "camera": runner.camera.id,
        "state": CAMERA_STATE.get(capture.state, capture.state),
        "capture_state": capture.state,
        "capture_fps": round(capture.capture_fps, 1),
        "processed_fps": round(health.processed_fps, 1),
        "inference_ms": round(health.pipeline.inference_ms_avg, 1),
        "frames": health.pipeline.frames,
        "last_frame_age_s": None
        if capture.last_frame_age_s is None
        else round(capture.last_frame_age_s, 1),
        "reconnects": capture.reconnects,
        "width": capture.width,
        "height": capture.height,
        "lines": lines,
        "zones": zones,
    }


def edit_patch(body: object) -> dict[str, Any]:
    """The merge patch over one camera's table from the page's save (shape checks only).

    The settings' validation checks the values; this refuses what is not an edit of
    lines, zones and speed at all, and drops ``null`` members (TOML has no null).
    """
    if not isinstance(body, dict) or not body:
        raise InputError("the edit must be a JSON object with lines, zones and/or speed")
    unknown = sorted(set(body) - set(EDITABLE))
    if unknown:
        raise InputError(f"only {', '.join(EDITABLE)} can be edited here, not {', '.join(unknown)}")
    patch: dict[str, Any] = {}
    for key in ("lines", "zones"):
        if key not in body:
            continue
        shapes = body[key]
        if not isinstance(shapes, list) or len(shapes) > MAX_SHAPES:
            raise InputError(f"{key} must be a list of at most {MAX_SHAPES} shapes")
        if not all(isinstance(shape, dict) for shape in shapes):
            raise InputError(f"each of {key} must be an object")
        for shape in shapes:
            points = shape.get("points")
            if isinstance(points, list) and len(points) > MAX_POINTS:
                raise InputError(f"a shape has at most {MAX_POINTS} points")
        patch[key] = [{k: v for k, v in shape.items() if v is not None} for shape in shapes]
    if "speed" in body:
        speed = body["speed"]
        if speed is not None and not isinstance(speed, dict):
            raise InputError("speed must be an object or null (no calibration)")
        patch["speed"] = speed  # null deletes the calibration (merge patch)
    return patch


def page_problems(problems: list[str], camera_index: int) -> list[dict[str, str]]:
    """``cameras[<i>].lines[1].id: message`` -> ``{"path": "lines[1].id", "message": ...}``.

    Problems elsewhere (or of the camera as a whole) keep ``path`` empty: the page shows
    them above the editor.
    """
    prefix = f"cameras[{camera_index}]"
    out = []
    for problem in problems:
        path, sep, message = problem.partition(": ")
        if not sep:
            path, message = "", problem
        if path == prefix:
            path = ""
        elif path.startswith(prefix + "."):
            path = path[len(prefix) + 1 :]
        else:
            message = f"{path}: {message}" if path else message
            path = ""
        out.append({"path": path, "message": _plain(message)})
    return out


def _plain(message: str) -> str:
    for pattern, text in _PLAIN:
        if pattern.match(message):
            return text
    return message
