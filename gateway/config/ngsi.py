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
from gateway.config.transport import MqttConfig

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


class BridgeConfig(StrictModel):
    """``gateway ngsi bridge``: from the MQTT broker to an NGSI-LD context broker."""

    url: str = Field(pattern=r"^https?://", description="The context broker's base URL.")
    tenant: str | None = Field(default=None, description="NGSILD-Tenant header.")
    share_group: str = Field(default="ngsi", pattern=r"^[A-Za-z0-9_-]+$")
    topics: list[str] = Field(
        default_factory=lambda: ["+/+/+/events/+/flow", "+/+/+/sensors/#"], min_length=1
    )
    batch_size: int = Field(default=100, ge=1, le=1000, description="Entities per upsert.")
    flush_interval_s: float = Field(default=1.0, gt=0, le=60)
    timeout_s: float = Field(default=10.0, gt=0, le=300)
    retry_max_s: float = Field(default=30.0, gt=0, le=3600, description="Longest back-off.")
    receive_maximum: int = Field(default=1000, ge=1, le=65535)
    session_expiry_s: int = Field(default=24 * 3600, ge=60)
    reconnect_max_s: float = Field(default=2.0, gt=0, le=600)
    dead_letter_topic: str = Field(
        default="city/ngsi/deadletter",
        description="Messages the context broker refuses go here (QoS 1), with the reason.",
    )

    @field_validator("topics")
    @classmethod
    def _plain(cls, value: list[str]) -> list[str]:
        for topic in value:
            if not topic or topic.startswith("$share/"):
                raise ValueError(f"{topic!r}: give the plain filter, without $share/")
        return value


class NgsiConfig(StrictModel):
    """What the export needs besides the events."""

    mqtt: MqttConfig = Field(default_factory=MqttConfig, description="For the bridge.")
    bridge: BridgeConfig | None = None

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
