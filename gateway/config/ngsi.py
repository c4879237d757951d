"""The NGSI-LD export's own config file (``gateway ngsi convert --config ngsi.toml``).

Where things are (GeoJSON longitude, latitude) and how lanes are numbered: city facts
the roadside units do not carry. Keys name a source as ``site/gateway/source`` (a
camera or sensor), with ``site/gateway`` and ``site`` as fall-backs; lanes as
``site/gateway/camera/lane``.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, field_validator

from gateway.config.common import StrictModel

Lon = Annotated[float, Field(ge=-180.0, le=180.0)]
Lat = Annotated[float, Field(ge=-90.0, le=90.0)]
Position = tuple[Lon, Lat]

TRANSPORTATION_CONTEXT = "https://raw.githubusercontent.com/smart-data-models/dataModel.Transportation/master/context.jsonld"
ENVIRONMENT_CONTEXT = "https://raw.githubusercontent.com/smart-data-models/dataModel.Environment/master/context.jsonld"
CORE_CONTEXT = "https://uri.etsi.org/ngsi-ld/v1/ngsi-ld-core-context-v1.8.jsonld"


class LaneInfo(StrictModel):
    """How the city numbers and orients a lane (TrafficFlowObserved laneId, laneDirection)."""

    lane_id: int | None = Field(default=None, ge=1, description="laneId (RoadSegment conventions).")
    direction: Literal["forward", "backward"] | None = None
    location: list[Position] | None = Field(
        default=None, description="The lane as a LineString (longitude, latitude pairs)."
    )
    road_segment: str | None = Field(
        default=None, pattern=r"^[a-zA-Z][a-zA-Z0-9+.-]*:", description="refRoadSegment URI."
    )

    @field_validator("location")
    @classmethod
    def _line(cls, value: list[Position] | None) -> list[Position] | None:
        if value is not None and len(value) < 2:
            raise ValueError("a lane's location needs at least 2 positions")
        return value


class NgsiConfig(StrictModel):
    """What the export needs besides the events."""

    locations: dict[str, Position] = Field(
        default_factory=dict, description="site[/gateway[/source]] -> [longitude, latitude]"
    )
    lanes: dict[str, LaneInfo] = Field(default_factory=dict)
    per_class: bool = Field(
        default=True,
        description="Also one TrafficFlowObserved per lane and vehicle class (vehicleType).",
    )
    core_context: str = Field(default=CORE_CONTEXT, pattern=r"^https?://")
    outdoor: bool = Field(default=True, description="AirQualityObserved typeofLocation outdoor.")

    @field_validator("locations", "lanes")
    @classmethod
    def _keys(cls, value: dict[str, object]) -> dict[str, object]:
        for key in value:
            parts = key.split("/")
            if not 1 <= len(parts) <= 4 or not all(parts):
                raise ValueError(f"{key!r}: expected site[/gateway[/source[/lane]]]")
        return value
