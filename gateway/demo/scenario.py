"""The demo's settings: one simulated road camera with a counting line, simulated sensors.

The same camera config drives the live demo and the offline accuracy run, and
:class:`TruthCounter` replays the simulator's world (no rendering) to get the exact
crossings it should count.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from gateway.config.settings import GatewaySettings
from gateway.config.sources import SimulatorSource
from gateway.config.vision import CameraConfig, DetectorConfig, LineConfig
from gateway.errors import UsageError

DEMO_DIR = Path(__file__).resolve().parent.parent.parent / "modelzoo" / "demo"
MODEL = DEMO_DIR / "roadsim.onnx"
LABELS = DEMO_DIR / "roadsim.labels.txt"
CAMERA_ID = "sim-cam"
# A vertical line across the road and both sidewalks, drawn bottom to top so that
# traffic moving right in the picture crosses it left_to_right.
LINE = LineConfig(id="mid", points=[(0.5, 0.98), (0.5, 0.38)])
Condition = Literal["day", "dusk", "rain"]
# (line, direction, label) -> count
Counts = Counter[tuple[str, str, str]]


def detector_config() -> DetectorConfig:
    """The demo detector (trained on the simulator, shipped in ``modelzoo/demo``)."""
    if not MODEL.is_file():
        raise UsageError(f"the demo model is missing: {MODEL}")
    # NMS at 0.55 rather than 0.45: two people passing each other on a sidewalk overlap
    # by about 0.5 IoU and must stay two detections.
    return DetectorConfig(
        model=str(MODEL), model_type="yolo", labels=LABELS, conf=0.35, nms_iou=0.55
    )


def camera_config(
    seed: int = 7,
    condition: Condition = "day",
    *,
    realtime: bool = True,
    duration_s: float | None = None,
    fps: float = 10.0,
) -> CameraConfig:
    """The simulated camera with its counting line and a 10 s aggregate interval."""
    source = SimulatorSource(
        seed=seed, condition=condition, realtime=realtime, duration_s=duration_s, fps=fps
    )
    return CameraConfig(
        id=CAMERA_ID,
        source=source,
        lines=[LINE],
        detector=detector_config(),
        aggregate_interval_s=10.0,
        stall_timeout_s=30.0,
    )


def settings(
    data_dir: Path,
    broker: tuple[str, int],
    sensor_ports: dict[str, str],
    *,
    seed: int = 7,
    condition: Condition = "day",
    mqtt_protocol: Literal["auto", "5", "3.1.1"] = "auto",
) -> GatewaySettings:
    """Gateway settings for the demo: the simulated camera, sensors on ``sensor_ports``."""
    sensors = [
        {"id": sid, "protocol": protocol, "port": port, "publish_interval_s": 2.0}
        for sid, (protocol, port) in _sensor_specs(sensor_ports).items()
    ]
    return GatewaySettings.model_validate(
        {
            "gateway": {"id": "demo-gw", "site": "demo", "data_dir": data_dir},
            "detector": detector_config().model_dump(),
            "cameras": [camera_config(seed, condition).model_dump()],
            "sensors": sensors,
            "mqtt": {
                "host": broker[0],
                "port": broker[1],
                "protocol": mqtt_protocol,
                "reconnect_max_s": 2.0,
            },
            "events": {"health_interval_s": 5.0},
        }
    )


SENSOR_PROTOCOLS: dict[str, str] = {"pm-1": "pms5003", "pm-2": "sds011"}


def _sensor_specs(ports: dict[str, str]) -> dict[str, tuple[str, str]]:
    return {sid: (SENSOR_PROTOCOLS[sid], path) for sid, path in ports.items()}


# A logged crossing is complete once the object's ground point is this many dead-band
# half-widths past the line (where the line counter counts it), or it has left the picture.
COMPLETE_BANDS = 1.0


@dataclass(frozen=True, slots=True)
class Truth:
    """The simulator's crossings so far: completed ones, and objects still on the line."""

    completed: Counts
    in_flight: Counts


class TruthCounter:
    """Crossings of :data:`LINE` the simulator logged, advanced frame by frame (no rendering).

    The counter counts an object once it is past the line's dead band, a few frames after
    its ground point crossed the line; a crossing logged in the last frames before a
    comparison is not truth yet. :meth:`advance` splits them: ``completed`` when the
    object is :data:`COMPLETE_BANDS` half-widths past the line (or gone), ``in_flight``
    otherwise.
    """

    def __init__(self, source: SimulatorSource) -> None:
        from simulators.camera.lines import Line
        from simulators.camera.source import make_world

        (x1, y1), (x2, y2) = LINE.points
        self._world = make_world(source, (Line(LINE.id, (x1, y1), (x2, y2)),))
        w, h = source.width, source.height
        self._p1 = (x1 * w, y1 * h)
        dx, dy = (x2 - x1) * w, (y2 - y1) * h
        norm = math.hypot(dx, dy)
        self._u = (dx / norm, dy / norm)
        self._size = (w, h)
        self._margin = COMPLETE_BANDS * LINE.hysteresis * math.hypot(w, h)

    @property
    def frames(self) -> int:
        """Frames simulated so far."""
        return self._world.frame

    def advance(self, frames: int) -> Truth:
        """Simulate up to frame ``frames``; return the crossings so far, split."""
        while self._world.frame < frames:
            self._world.step()
        where = {a.id: (a.x * self._size[0], a.y * self._size[1]) for a in self._world.actors}
        completed: Counts = Counter()
        in_flight: Counts = Counter()
        for c in self._world.crossings:
            key = (c.line_id, c.direction, c.cls)
            anchor = where.get(c.object_id)
            if anchor is None or self._past(anchor, c.direction):
                completed[key] += 1
            else:
                in_flight[key] += 1
        return Truth(completed, in_flight)

    def _past(self, anchor: tuple[float, float], direction: str) -> bool:
        (ux, uy), (px, py) = self._u, self._p1
        signed = ux * (anchor[1] - py) - uy * (anchor[0] - px)  # > 0: right-hand side
        return (signed if direction == "left_to_right" else -signed) >= self._margin
