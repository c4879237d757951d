"""Camera, detector and analytics configuration."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator, model_validator

from gateway.config.common import Ident, Norm, StrictModel, pixel_hint
from gateway.config.drift import DriftConfig
from gateway.config.flow import FlowConfig, check_flow_refs
from gateway.config.sources import SourceConfig

VEHICLE_AND_PEDESTRIAN_CLASSES: tuple[str, ...] = (
    "person",
    "bicycle",
    "car",
    "motorcycle",
    "bus",
    "truck",
)

VEHICLE_CLASSES: tuple[str, ...] = ("car", "bus", "truck", "motorcycle")

ModelType = Literal["auto", "yolox", "yolo", "ssd"]
Provider = Literal["cpu", "cuda", "tensorrt", "openvino"]


class DetectorConfig(StrictModel):
    """The ONNX detector: model file, layout, thresholds and execution."""

    model: str = Field(
        default="yolox_nano",
        description="Path to an .onnx file, or the name of a model in the model store.",
    )
    model_type: ModelType = Field(
        default="auto",
        description="Output layout: yolox, yolo (Ultralytics v5/v8/v11), ssd (TF Object "
        "Detection API); auto picks it from the model's input and output signature.",
    )
    labels: Path | None = Field(
        default=None, description="Label file, one name per line; COCO-80 for 80-class models."
    )
    conf: float = Field(default=0.35, ge=0.0, le=1.0, description="Score threshold.")
    nms_iou: float = Field(
        default=0.45, gt=0.0, le=1.0, description="Class-aware NMS overlap (IoU) threshold."
    )
    classes: list[str] = Field(
        default_factory=lambda: list(VEHICLE_AND_PEDESTRIAN_CLASSES),
        description="Class names to keep; an empty list keeps every class.",
    )
    providers: list[Provider] = Field(
        default_factory=lambda: list[Provider](["cpu"]),
        description="ONNX Runtime execution providers in order of preference.",
    )
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
        hint = pixel_hint(value)  # one error for the shape, not one per coordinate
        if hint is not None:
            raise ValueError(hint)
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
        default=None,
        description="Allowed direction; crossings the other way raise a wrong_way alert.",
    )
    hysteresis: float = Field(
        default=0.01,
        ge=0.0,
        le=0.2,
        description=(
            "Half-width of the dead band on each side of the line, as a fraction of the frame "
            "diagonal: an object must get this far past the line to count, so jitter never does."
        ),
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
    min_frames: int = Field(
        default=1,
        ge=1,
        le=100,
        description="Consecutive frames inside (outside) before an enter (exit) is confirmed.",
    )

    @field_validator("points")
    @classmethod
    def _polygon(cls, value: list[tuple[float, float]]) -> list[tuple[float, float]]:
        if len(value) < 3:
            raise ValueError(f"expected at least 3 points, got {len(value)}")
        return value

    @model_validator(mode="after")
    def _alert_classes(self) -> ZoneConfig:
        if self.classes and self.roadway and "person" not in self.classes:
            raise ValueError("roadway: the zone's classes must include 'person' to see pedestrians")
        vehicles = set(self.classes) & set(VEHICLE_CLASSES)
        if self.classes and self.stopped_vehicle_s is not None and not vehicles:
            raise ValueError(
                "stopped_vehicle_s: the zone's classes must include a vehicle class "
                f"({', '.join(VEHICLE_CLASSES)})"
            )
        return self


class SpeedCalibration(StrictModel):
    """Ground-plane calibration: 4 image points (normalised) and the same 4 points in metres."""

    image_points: list[tuple[Norm, Norm]]
    world_points: list[tuple[float, float]]

    @field_validator("image_points", mode="before")
    @classmethod
    def _fractions(cls, value: object) -> object:
        hint = pixel_hint(value)
        if hint is not None:
            raise ValueError(hint)
        return value

    @model_validator(mode="after")
    def _four(self) -> SpeedCalibration:
        for name in ("image_points", "world_points"):
            points = getattr(self, name)
            if len(points) != 4:
                raise ValueError(f"{name}: expected 4 points, got {len(points)}")
            if _three_collinear(points):
                raise ValueError(f"{name}: three of the four points lie on one line")
        return self


def _three_collinear(points: list[tuple[float, float]]) -> bool:
    """Whether any three of the points are (nearly) collinear, which makes a homography singular."""
    span = max(max(abs(x), abs(y)) for x, y in points) or 1.0
    for i in range(len(points)):
        for j in range(i + 1, len(points)):
            for k in range(j + 1, len(points)):
                (ax, ay), (bx, by), (cx, cy) = points[i], points[j], points[k]
                area2 = abs((bx - ax) * (cy - ay) - (by - ay) * (cx - ax))
                if area2 <= 1e-6 * span * span:
                    return True
    return False


class TrackerConfig(StrictModel):
    """Multi-object tracking (ByteTrack-style two-stage association)."""

    type: Literal["bytetrack"] = "bytetrack"
    high_thresh: float = Field(
        default=0.5,
        ge=0.0,
        le=1.0,
        description="Detections at or above this score are matched first and may start tracks.",
    )
    low_thresh: float = Field(
        default=0.1,
        ge=0.0,
        le=1.0,
        description="Detections between this and high_thresh only extend existing tracks.",
    )
    match_iou: float = Field(
        default=0.2, gt=0.0, le=1.0, description="Smallest IoU for a high-score match."
    )
    low_match_iou: float = Field(
        default=0.5, gt=0.0, le=1.0, description="Smallest IoU for a low-score match."
    )
    min_hits: int = Field(
        default=3, ge=1, le=100, description="Matches before a tentative track is confirmed."
    )
    confirm_s: float = Field(
        default=0.18,
        ge=0.0,
        le=60.0,
        description=(
            "A tentative track matched at least twice over this long is confirmed too, "
            "before min_hits: on a unit that processes few frames a second (a slow "
            "detector, frames dropped) min_hits frames would take long, and a person in "
            "a crowd is lost before that. About two frame intervals at 10 fps: at that "
            "rate and above min_hits decides; 0 turns it off."
        ),
    )
    max_age_s: float = Field(
        default=1.5, gt=0.0, le=600.0, description="How long a lost track is kept before it ends."
    )
    max_tracks: int = Field(
        default=256, ge=1, le=100_000, description="Hard cap on live tracks (tentative + lost)."
    )
    duplicate_iou: float = Field(
        default=0.7,
        gt=0.0,
        le=1.0,
        description=(
            "An unmatched detection overlapping a live track or a better new detection this "
            "much is a duplicate (one vehicle reported as car and truck) and starts no track."
        ),
    )
    class_match: Literal["vote", "strict"] = Field(
        default="vote",
        description=(
            "vote: any class may match (same class preferred) and a track reports its majority "
            "class; strict: a detection only matches tracks of its own class."
        ),
    )

    @model_validator(mode="after")
    def _thresholds(self) -> TrackerConfig:
        if self.low_thresh > self.high_thresh:
            raise ValueError(
                f"low_thresh ({self.low_thresh}) must not exceed high_thresh ({self.high_thresh})"
            )
        return self


class MotionConfig(StrictModel):
    """Motion gating: skip inference on frames without motion."""

    enabled: bool = False
    mode: Literal["skip", "regions"] = Field(
        default="skip",
        description="skip: no inference on still frames; regions: infer only around motion.",
    )
    threshold: int = Field(default=25, ge=1, le=255, description="Pixel difference threshold.")
    min_area: float = Field(
        default=0.001,
        ge=0.0,
        le=1.0,
        description="Smallest moving area, as a fraction of the frame.",
    )
    keyframe_interval: int = Field(
        default=50, ge=1, description="Run inference at least every N frames regardless of motion."
    )


class TilingConfig(StrictModel):
    """Tiled inference for high-resolution frames."""

    mode: Literal["off", "auto", "grid"] = Field(
        default="off",
        description="off; grid: rows x cols; auto: one tile per two model inputs along each axis.",
    )
    rows: int = Field(default=2, ge=1, le=8, description="Grid rows (mode grid).")
    cols: int = Field(default=2, ge=1, le=8, description="Grid columns (mode grid).")
    overlap: float = Field(default=0.15, ge=0.0, lt=0.5, description="Overlap of adjacent tiles.")
    full_frame: bool = Field(
        default=True, description="Also detect on the whole (downscaled) frame, for large objects."
    )


class CameraConfig(StrictModel):
    """One camera and its analytics."""

    id: Ident
    enabled: bool = True
    source: SourceConfig
    fps_limit: float | None = Field(
        default=None, gt=0, description="Process at most this many fps."
    )
    stall_timeout_s: float = Field(
        default=10.0, gt=0, description="Reconnect after this long without a frame."
    )
    reconnect_max_s: float = Field(default=60.0, gt=0, description="Longest reconnect back-off.")
    detector: DetectorConfig | None = Field(
        default=None, description="Per-camera detector; the top-level [detector] when absent."
    )
    lines: list[LineConfig] = Field(default_factory=list)
    zones: list[ZoneConfig] = Field(default_factory=list)
    speed: SpeedCalibration | None = None
    tracker: TrackerConfig = Field(default_factory=TrackerConfig)
    motion: MotionConfig = Field(default_factory=MotionConfig)
    tiling: TilingConfig = Field(default_factory=TilingConfig)
    aggregate_interval_s: float = Field(
        default=60.0, gt=0, description="Period of count aggregates."
    )
    flow: FlowConfig | None = Field(
        default=None, description="Per-lane flow measures and turning movements."
    )
    drift: DriftConfig = Field(
        default_factory=DriftConfig, description="Alert when the camera has been moved."
    )

    @model_validator(mode="after")
    def _unique_ids(self) -> CameraConfig:
        for kind, items in (("lines", self.lines), ("zones", self.zones)):
            ids = [item.id for item in items]
            dupes = sorted({i for i in ids if ids.count(i) > 1})
            if dupes:
                raise ValueError(f"{kind}: duplicate id {', '.join(dupes)}")
        if self.flow is not None:
            check_flow_refs(
                self.flow,
                {line.id for line in self.lines},
                {zone.id for zone in self.zones},
                calibrated=self.speed is not None,
            )
        return self
