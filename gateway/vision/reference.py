"""The reference keyframe of a camera, kept durably next to the gateway's data.

``<dir>/<camera>.png`` is the reference view (grey, at the drift check's working width)
and ``<dir>/<camera>.json`` says what it belongs to: the fingerprint of the camera's
geometry config (lines, zones, speed calibration, flow lanes and gates, and
``drift.reference_epoch``) and the frame size. Both are written with
:func:`gateway.atomicfile.write_atomically` (the image first, so a crash in between
leaves an image whose metadata still names the old fingerprint, which is then taken
again). A file that cannot be read or decoded is reported and treated as missing: a new reference is
taken, nothing else is affected.
"""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from numpy.typing import NDArray

from gateway.atomicfile import write_atomically
from gateway.config.vision import CameraConfig

log = logging.getLogger(__name__)

FORMAT = 1


def geometry_fingerprint(camera: CameraConfig) -> str:
    """Hash of everything drawn on the view: re-drawing it means the view was checked."""
    parts: dict[str, Any] = {
        "lines": [line.model_dump(mode="json") for line in camera.lines],
        "zones": [zone.model_dump(mode="json") for zone in camera.zones],
        "speed": None if camera.speed is None else camera.speed.model_dump(mode="json"),
        "flow": None if camera.flow is None else camera.flow.model_dump(mode="json"),
        "epoch": camera.drift.reference_epoch,
    }
    text = json.dumps(parts, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:32]


@dataclass(frozen=True, slots=True)
class Reference:
    """A stored reference view."""

    image: NDArray[np.uint8]  # grey, working width
    fingerprint: str
    frame_size: tuple[int, int]  # the full frame's (width, height)
    created: float


class ReferenceStore:
    """Load and save one camera's reference view in ``directory``."""

    def __init__(self, directory: Path, camera_id: str) -> None:
        """Files are ``directory/<camera_id>.png`` and ``.json``."""
        self.image_path = directory / f"{camera_id}.png"
        self.meta_path = directory / f"{camera_id}.json"
        self.errors = 0

    def load(self) -> Reference | None:
        """Return the stored reference, or None when there is none (or it is unreadable)."""
        if not self.meta_path.exists() or not self.image_path.exists():
            return None
        try:
            meta = json.loads(self.meta_path.read_text("utf-8"))
            raw = np.frombuffer(self.image_path.read_bytes(), dtype=np.uint8)
            image = cv2.imdecode(raw, cv2.IMREAD_GRAYSCALE)
            if image is None or meta.get("format") != FORMAT:
                raise ValueError("not a reference image of this format")
            width, height = meta["frame_size"]
            return Reference(
                np.asarray(image, dtype=np.uint8),
                str(meta["fingerprint"]),
                (int(width), int(height)),
                float(meta["created"]),
            )
        except (OSError, ValueError, KeyError, TypeError) as exc:
            self.errors += 1
            log.warning(
                "reference view %s unreadable (%s): a new one will be taken", self.image_path, exc
            )
            return None

    def save(self, reference: Reference) -> None:
        """Store ``reference`` atomically (image, then metadata)."""
        ok, png = cv2.imencode(".png", reference.image)
        if not ok:
            raise ValueError("cannot encode the reference image")
        self.image_path.parent.mkdir(parents=True, exist_ok=True)
        write_atomically(self.image_path, png.tobytes())
        meta = {
            "format": FORMAT,
            "fingerprint": reference.fingerprint,
            "frame_size": list(reference.frame_size),
            "created": reference.created,
        }
        write_atomically(self.meta_path, json.dumps(meta))
