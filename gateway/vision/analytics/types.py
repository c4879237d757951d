"""What the analytics stage emits, before it becomes a versioned event.

The transport layer (:mod:`gateway.events`) maps these onto the published schema.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

AlertKind = Literal[
    "stopped_vehicle", "pedestrian_in_roadway", "wrong_way", "over_capacity", "calibration_drift"
]
Congestion = Literal["free", "heavy", "congested"]
ZoneEventKind = Literal["enter", "exit"]


@dataclass(frozen=True, slots=True)
class LineCrossing:
    """A track crossed a counting line (counted once per track and line)."""

    camera_id: str
    line_id: str
    track_id: int
    label: str
    direction: str
    timestamp: float
    speed_kmh: float | None = None
    # Estimated moment the object's ground point passed the line (interpolated between
    # its sightings on either side): up to a few frames before ``timestamp``, and seconds
    # before it for an object hidden while it crossed. What headways are measured on.
    crossed_at: float | None = None


@dataclass(frozen=True, slots=True)
class ZoneTransition:
    """A track entered or left a zone; ``dwell_s`` is set on exit."""

    camera_id: str
    zone_id: str
    track_id: int
    label: str
    kind: ZoneEventKind
    timestamp: float
    dwell_s: float | None = None


@dataclass(frozen=True, slots=True)
class Alert:
    """A condition a traffic operator must see."""

    camera_id: str
    kind: AlertKind
    timestamp: float
    zone_id: str | None = None
    line_id: str | None = None
    track_id: int | None = None
    label: str | None = None
    details: dict[str, float | int | str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Aggregate:
    """Counts per line, direction and class over one interval (what dashboards plot)."""

    camera_id: str
    start: float
    end: float
    # line id -> direction -> label -> count
    lines: dict[str, dict[str, dict[str, int]]]
    # zone id -> label -> mean occupancy over the interval
    zones: dict[str, dict[str, float]] = field(default_factory=dict)
    # label -> mean speed (km/h) of tracks that crossed a line in the interval
    mean_speed_kmh: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class LaneFlow:
    """One lane's flow measures over one interval; ``None`` where not measured."""

    # label -> vehicles counted at the lane's line
    volume: dict[str, int]
    occupancy: float | None = None  # share of the interval the presence zone was occupied
    headway_mean_s: float | None = None  # between consecutive vehicles at the line
    headway_min_s: float | None = None
    headways: int = 0
    speed_mean_kmh: float | None = None  # spot speeds at the line
    speed_p85_kmh: float | None = None
    speeds: int = 0
    queue_max_m: float | None = None
    queue_mean_m: float | None = None  # time-weighted
    queue_max_vehicles: int | None = None
    queue_mean_vehicles: float | None = None
    congestion: Congestion | None = None


@dataclass(frozen=True, slots=True)
class FlowReport:
    """Per-lane flow and the turning-movement matrix of one camera over one interval."""

    camera_id: str
    start: float
    end: float
    lanes: dict[str, LaneFlow] = field(default_factory=dict)
    # origin gate -> destination gate -> label -> trips finished in the interval
    movements: dict[str, dict[str, dict[str, int]]] = field(default_factory=dict)


AnalyticsEvent = LineCrossing | ZoneTransition | Alert | Aggregate | FlowReport
