"""Flow measures per lane and turning movements: the ``[cameras.flow]`` section.

Lanes and gates refer to the camera's own ``[[cameras.lines]]`` and ``[[cameras.zones]]``
by id, so the crossing and zone logic is the same as for counting; the references are
checked against the camera by :func:`check_flow_refs`. See ``docs/analytics.md``.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator, model_validator

from gateway.config.common import Ident, Norm, StrictModel

Point = tuple[Norm, Norm]
Direction = Literal["left_to_right", "right_to_left"]
FLOW_VEHICLE_CLASSES: tuple[str, ...] = ("car", "bus", "truck", "motorcycle")
# Reserved gate name for a movement whose origin or destination was not seen.
UNKNOWN_GATE = "unknown"


def _polygon(value: list[Point] | None, what: str = "polygon") -> list[Point] | None:
    if value is not None and len(value) < 3:
        raise ValueError(f"{what}: expected at least 3 points, got {len(value)}")
    return value


class QueueConfig(StrictModel):
    """Queue length of a lane, from a lane polygon (metres) or a chain of zones.

    ``area``: the lane from its stop line (the lane's ``line``) back; a vehicle inside
    that moves slower than ``stopped_kmh`` is queued; the queue is the run of queued
    vehicles from the stop line back, each within ``max_spacing_m`` of the one before.
    Needs the camera's ``[cameras.speed]`` calibration.

    ``zones``: polygons from the stop line back, like queue detectors: a zone is queued
    while a vehicle has been inside it for ``dwell_s``; the queue reaches the last zone of
    the unbroken run of queued zones from the first. Works without a calibration.
    """

    area: list[Point] | None = Field(
        default=None, description="Lane polygon from the stop line back (needs [cameras.speed])."
    )
    zones: list[list[Point]] | None = Field(
        default=None, description="Chain of polygons from the stop line back."
    )
    zone_lengths_m: list[float] | None = Field(
        default=None, description="Length of each zone of the chain along the lane, metres."
    )
    extent: Literal["anchor", "box"] = Field(
        default="anchor",
        description=(
            "Where a vehicle is: its anchor (bottom-centre), or its whole box (top-down "
            "cameras, where the box is the footprint): area mode measures to the farthest "
            "corner; zones mode counts a zone held by any part of the box."
        ),
    )
    stopped_kmh: float = Field(default=8.0, gt=0, le=50, description="Slower than this: queued.")
    max_spacing_m: float = Field(
        default=15.0, gt=0, le=200, description="Largest spacing between queued vehicles."
    )
    dwell_s: float = Field(
        default=2.0, gt=0, le=600, description="zones mode: occupied this long means queued."
    )

    @field_validator("area")
    @classmethod
    def _area(cls, value: list[Point] | None) -> list[Point] | None:
        return _polygon(value)

    @field_validator("zones")
    @classmethod
    def _zones(cls, value: list[list[Point]] | None) -> list[list[Point]] | None:
        if value is not None:
            if not value:
                raise ValueError("expected at least one zone")
            for i, zone in enumerate(value):
                _polygon(zone, f"zone {i}")
        return value

    @model_validator(mode="after")
    def _one_mode(self) -> QueueConfig:
        if (self.area is None) == (self.zones is None):
            raise ValueError("give exactly one of area (a lane polygon) or zones (a chain)")
        if self.zone_lengths_m is not None:
            if self.zones is None:
                raise ValueError("zone_lengths_m: only with zones")
            if len(self.zone_lengths_m) != len(self.zones):
                raise ValueError(
                    f"zone_lengths_m: expected {len(self.zones)} lengths (one per zone), "
                    f"got {len(self.zone_lengths_m)}"
                )
            if any(length <= 0 for length in self.zone_lengths_m):
                raise ValueError("zone_lengths_m: lengths must be > 0")
        return self


class LaneConfig(StrictModel):
    """One lane: volume, headway and spot speed at its line; occupancy; queue."""

    id: Ident
    line: Ident = Field(description="Id of the camera line where the lane's vehicles are counted.")
    direction: Direction | None = Field(
        default=None, description="Only crossings of the line in this direction (empty: both)."
    )
    area: list[Point] | None = Field(
        default=None,
        description="Only crossings whose anchor is inside this polygon (one line, many lanes).",
    )
    presence: list[Point] | None = Field(
        default=None, description="Presence zone: occupancy is the share of time it is occupied."
    )
    presence_extent: Literal["anchor", "box"] = Field(
        default="anchor",
        description="A vehicle occupies the zone while its anchor is inside, or (top-down "
        "cameras) while its box overlaps it.",
    )
    queue: QueueConfig | None = None
    classes: list[str] = Field(
        default_factory=lambda: list(FLOW_VEHICLE_CLASSES), description="Classes measured."
    )
    free_flow_kmh: float | None = Field(
        default=None, gt=0, le=300, description="Free-flow speed: congestion level from speed."
    )

    @field_validator("area", "presence")
    @classmethod
    def _poly(cls, value: list[Point] | None) -> list[Point] | None:
        return _polygon(value)


class GateConfig(StrictModel):
    """An entry/exit of an intersection: a line (with its inbound direction) or a zone."""

    id: Ident
    line: Ident | None = Field(default=None, description="Id of a camera line.")
    entry: Direction | None = Field(
        default=None,
        description="Line gates: the crossing direction that enters (the other leaves).",
    )
    zone: Ident | None = Field(default=None, description="Id of a camera zone.")

    @model_validator(mode="after")
    def _kind(self) -> GateConfig:
        if self.id == UNKNOWN_GATE:
            raise ValueError(f"id: {UNKNOWN_GATE!r} is reserved (movements not fully seen)")
        if (self.line is None) == (self.zone is None):
            raise ValueError("give exactly one of line or zone")
        if self.line is not None and self.entry is None:
            raise ValueError("entry: a line gate needs its entering direction")
        if self.zone is not None and self.entry is not None:
            raise ValueError("entry: only for line gates")
        return self


class CongestionConfig(StrictModel):
    """Thresholds of the congestion level (free, heavy, congested): the worse one wins."""

    occupancy: tuple[float, float] = Field(
        default=(0.15, 0.30), description="Occupancy at or above which a lane is heavy, congested."
    )
    speed_ratio: tuple[float, float] = Field(
        default=(0.7, 0.4),
        description="Mean speed / free_flow_kmh below which a lane is heavy, congested.",
    )

    @model_validator(mode="after")
    def _order(self) -> CongestionConfig:
        low, high = self.occupancy
        if not 0 < low < high <= 1:
            raise ValueError("occupancy: expected 0 < heavy < congested <= 1")
        heavy, congested = self.speed_ratio
        if not 0 < congested < heavy <= 1:
            raise ValueError("speed_ratio: expected 0 < congested < heavy <= 1")
        return self


class FlowConfig(StrictModel):
    """Per-lane flow measures and turning movements, reported once per interval."""

    interval_s: float | None = Field(
        default=None, gt=0, le=86_400, description="Report period; the camera's aggregate interval."
    )
    lanes: list[LaneConfig] = Field(default_factory=list)
    gates: list[GateConfig] = Field(default_factory=list)
    movement_classes: list[str] = Field(
        default_factory=list, description="Classes in the movement matrix (empty: all)."
    )
    max_transit_s: float = Field(
        default=300.0, gt=0, le=3600, description="A trip not finished after this has no exit."
    )
    congestion: CongestionConfig = Field(default_factory=CongestionConfig)

    @model_validator(mode="after")
    def _unique(self) -> FlowConfig:
        for kind, items in (("lanes", self.lanes), ("gates", self.gates)):
            ids = [item.id for item in items]
            dupes = sorted({i for i in ids if ids.count(i) > 1})
            if dupes:
                raise ValueError(f"{kind}: duplicate id {', '.join(dupes)}")
        refs = [g.line or g.zone for g in self.gates]
        shared = sorted({r for r in refs if r is not None and refs.count(r) > 1})
        if shared:
            raise ValueError(f"gates: {', '.join(shared)} used by more than one gate")
        if not self.lanes and not self.gates:
            raise ValueError("give at least one lane or gate")
        return self


def check_flow_refs(
    flow: FlowConfig, line_ids: set[str], zone_ids: set[str], calibrated: bool
) -> None:
    """Raise ``ValueError`` naming the first lane or gate that refers to nothing."""
    for i, lane in enumerate(flow.lanes):
        if lane.line not in line_ids:
            raise ValueError(f"flow.lanes[{i}].line: no line {lane.line!r} in this camera")
        if lane.queue is not None and lane.queue.area is not None and not calibrated:
            raise ValueError(
                f"flow.lanes[{i}].queue.area: needs [cameras.speed] (queue length in metres)"
            )
    for i, gate in enumerate(flow.gates):
        if gate.line is not None and gate.line not in line_ids:
            raise ValueError(f"flow.gates[{i}].line: no line {gate.line!r} in this camera")
        if gate.zone is not None and gate.zone not in zone_ids:
            raise ValueError(f"flow.gates[{i}].zone: no zone {gate.zone!r} in this camera")
