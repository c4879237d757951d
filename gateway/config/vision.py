"""Camera, detector and analytics configuration."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, field_validator, model_validator

from gateway.config.common import Ident, Norm, StrictModel

VEHICLE_AND_PEDESTRIAN_CLASSES: tuple[str, ...] = (
    "person",
    "bicycle",
    "car",
    "motorcycle",
    "bus",
    "truck",
)

ModelType = Literal["auto", "yolox", "yolo", "ssd"]
Provider = Literal["cpu", "cuda", "tensorrt", "openvino"]


class DetectorConfig(StrictModel):
    """The ONNX detector: model file, layout, thresholds and execution."""

    model: str = Field(
        default="yolox_nano",
        description="Path to an .onnx file, or the name of a model in the model store.",
    )
    model_type: ModelType = "auto"
    labels: Path | None = Field(
        default=None, description="Label file, one name per line; COCO-80 for 80-class models."
    )
    conf: float = Field(default=0.35, ge=0.0, le=1.0, description="Score threshold.")
    nms_iou: float = Field(default=0.45, gt=0.0, le=1.0)
    classes: list[str] = Field(
        default_factory=lambda: list(VEHICLE_AND_PEDESTRIAN_CLASSES),
        description="Class names to keep; an empty list keeps every class.",
    )
    providers: list[Provider] = Field(default_factory=lambda: ["cpu"])
    threads: int = Field(default=1, ge=1, le=64, description="Intra-op threads.")
    input_size: int | None = Field(
        default=None, ge=32, description="Override the input size for dynamic-shape models."
    )


class PointList(StrictModel):
    """Mixin for shapes given as ``[[x, y], ...]`` in normalised coordinates."""

    @field_validator("points", mode="before", check_fields=False)
    @classmethod
    def _pairs(cls, value: object) -> object:
        if isinstance(value, list):
            for i, point in enumerate(value):
                if not isinstance(point, (list, tuple)) or len(point) != 2:
                    raise ValueError(f"point {i} must be [x, y]")
        return value


Direction = Literal["left_to_right", "right_to_left"]


class LineConfig(PointList):
    """A counting line from point 1 to point 2 (normalised coordinates).

    Directions are seen from point 1 looking at point 2: an object moving from
    the left-hand side of that view to its right-hand side crosses ``left_to_right``.
    """

    id: Ident
    points: list[tuple[Norm, Norm]]
    classes: list[str] = Field(default_factory=list, description="Empty: every detected class.")
    one_way: Direction | None = Field(
        default=None, description="Allowed direction; crossings the other way raise a wrong_way alert."
    )

    @field_validator("points")
    @classmethod
    def _two(cls, value: list[tuple[float, float]]) -> list[tuple[float, float]]:
        if len(value) != 2:
            raise ValueError(f"expected 2 points, got {len(value)}")
        if value[0] == value[1]:
            raise ValueError("the two points must differ")
        return value


class ZoneConfig(PointList):
    """A polygon zone; an object is inside when its box's bottom-centre is."""

    id: Ident
    points: list[tuple[Norm, Norm]]
    classes: list[str] = Field(default_factory=list, description="Empty: every detected class.")
    roadway: bool = Field(default=False, description="Pedestrians inside raise an alert.")
    stopped_vehicle_s: float | None = Field(
        default=None, gt=0, description="Alert when a vehicle stays still here longer than this."
    )
    capacity: int | None = Field(default=None, ge=1, description="Alert above this occupancy.")

    @field_validator("points")
    @classmethod
    def _polygon(cls, value: list[tuple[float, float]]) -> list[tuple[float, float]]:
        if len(value) < 3:
            raise ValueError(f"expected at least 3 points, got {len(value)}")
        return value


class SpeedCalibration(StrictModel):
    """Ground-plane calibration: 4 image points (normalised) and the same 4 points in metres."""

    image_points: list[tuple[Norm, Norm]]
    world_points: list[tuple[float, float]]

    @model_validator(mode="after")
    def _four(self) -> SpeedCalibration:
        for name in ("image_points", "world_points"):
            n = len(getattr(self, name))
            if n != 4:
                raise ValueError(f"{name}: expected 4 points, got {n}")
        return self


class MotionConfig(StrictModel):
    """Motion gating: skip inference on frames without motion."""

    enabled: bool = False
    mode: Literal["skip", "regions"] = "skip"
    threshold: int = Field(default=25, ge=1, le=255, description="Pixel difference threshold.")
    min_area: float = Field(
        default=0.001, ge=0.0, le=1.0, description="Smallest moving area, as a fraction of the frame."
    )
    keyframe_interval: int = Field(
        default=50, ge=1, description="Run inference at least every N frames regardless of motion."
    )


class TilingConfig(StrictModel):
    """Tiled inference for high-resolution frames."""

    mode: Literal["off", "auto", "grid"] = "off"
    rows: int = Field(default=2, ge=1, le=8)
    cols: int = Field(default=2, ge=1, le=8)
    overlap: float = Field(default=0.15, ge=0.0, lt=0.5)


class FileSource(StrictModel):
    """A video file, optionally looped."""

    type: Literal["file"] = "file"
    path: Path
    loop: bool = False
    realtime: bool = Field(default=True, description="Pace frames at the file's frame rate.")


class UrlSource(StrictModel):
    """An RTSP or HTTP (MJPEG) network camera."""

    type: Literal["url"] = "url"
    url: str = Field(pattern=r"^(rtsp|rtsps|http|https)://")


class UsbSource(StrictModel):
    """A USB / V4L2 camera by index."""

    type: Literal["usb"] = "usb"
    index: int = Field(default=0, ge=0)
    width: int | None = None
    height: int | None = None


class GStreamerSource(StrictModel):
    """A GStreamer pipeline string ending in appsink (CSI cameras on Jetson)."""

    type: Literal["gstreamer"] = "gstreamer"
    pipeline: str


class SimulatorSource(StrictModel):
    """The built-in procedural road-scene simulator."""

    type: Literal["simulator"] = "simulator"
    seed: int = 0
    width: int = 640
    height: int = 360
    fps: float = 10.0
    condition: Literal["day", "dusk", "rain"] = "day"


SourceConfig = Annotated[
    FileSource | UrlSource | UsbSource | GStreamerSource | SimulatorSource,
    Field(discriminator="type"),
]


class CameraConfig(StrictModel):
    """One camera and its analytics."""

    id: Ident
    enabled: bool = True
    source: SourceConfig
    fps_limit: float | None = Field(default=None, gt=0, description="Process at most this many fps.")
    stall_timeout_s: float = Field(default=10.0, gt=0, description="Reconnect after this long without a frame.")
    reconnect_max_s: float = Field(default=60.0, gt=0, description="Longest reconnect back-off.")
    detector: DetectorConfig | None = Field(
        default=None, description="Per-camera detector; the top-level [detector] when absent."
    )
    lines: list[LineConfig] = Field(default_factory=list)
    zones: list[ZoneConfig] = Field(default_factory=list)
    speed: SpeedCalibration | None = None
    motion: MotionConfig = Field(default_factory=MotionConfig)
    tiling: TilingConfig = Field(default_factory=TilingConfig)
    aggregate_interval_s: float = Field(default=60.0, gt=0, description="Period of count aggregates.")

    @model_validator(mode="after")
    def _unique_ids(self) -> CameraConfig:
        for kind, items in (("lines", self.lines), ("zones", self.zones)):
            ids = [item.id for item in items]
            dupes = sorted({i for i in ids if ids.count(i) > 1})
            if dupes:
                raise ValueError(f"{kind}: duplicate id {', '.join(dupes)}")
        return self
