"""What the analytics stage emits, before it becomes a versioned event.

The transport layer (:mod:`gateway.events`) maps these onto the published schema.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

AlertKind = Literal["stopped_vehicle", "pedestrian_in_roadway", "wrong_way", "over_capacity"]
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


AnalyticsEvent = LineCrossing | ZoneTransition | Alert | Aggregate
