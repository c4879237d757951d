"""Events (schema 1) to FIWARE Smart Data Models entities in NGSI-LD normalized form.

- A ``flow`` event becomes one ``TrafficFlowObserved`` per lane (all vehicles:
  ``intensity``, ``occupancy``, ``averageVehicleSpeed``, ``averageHeadwayTime``,
  ``congested``) and, with ``per_class``, one per lane and vehicle class with its
  ``vehicleType`` and ``intensity``.
- A ``sensor_reading`` with air-quality values becomes one ``AirQualityObserved``
  (particulates, gases, temperature, relative humidity as 0..1), when the sensor's
  location is configured (the model requires one).

Entity ids are stable per lane or sensor
(``urn:ngsi-ld:<Type>:<site>:<gateway>:<source>[:<lane>[:<vehicleType>]]``), so each new
observation updates the same entity (a context broker's temporal API keeps the history)
and a redelivered event writes the same content again: at-least-once delivery stays
harmless. Every property carries ``observedAt`` (the observation time).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final

from gateway.config.ngsi import (
    ENVIRONMENT_CONTEXT,
    TRANSPORTATION_CONTEXT,
    LaneInfo,
    NgsiConfig,
    Position,
)

# The project's class names -> the data model's vehicleType enumeration.
VEHICLE_TYPES: Final[dict[str, str]] = {
    "car": "car",
    "bus": "bus",
    "truck": "lorry",
    "motorcycle": "motorcycle",
    "bicycle": "bicycle",
}


@dataclass(frozen=True, slots=True)
class AirValue:
    """How one sensor value maps onto an AirQualityObserved attribute."""

    attribute: str
    unit: str | None  # UN/CEFACT common code
    factor: float = 1.0


# Sensor value names (docs/sensors.md, SI-style suffixes) -> AirQualityObserved.
AIR_VALUES: Final[dict[str, AirValue]] = {
    "pm1_0": AirValue("pm1", "GQ"),  # micrograms per cubic metre
    "pm2_5": AirValue("pm25", "GQ"),
    "pm10": AirValue("pm10", "GQ"),
    "pm4_0": AirValue("pm4", "GQ"),
    "temperature_c": AirValue("temperature", "CEL"),
    "humidity_pct": AirValue("relativeHumidity", None, 0.01),
    "pressure_hpa": AirValue("pressure", "A97"),
    "co2_ppm": AirValue("co2", "59"),
    "co_mg_m3": AirValue("co", "GP"),
    "no_ug_m3": AirValue("no", "GQ"),
    "no2_ug_m3": AirValue("no2", "GQ"),
    "no2_ppb": AirValue("no2", "61"),
    "o3_ug_m3": AirValue("o3", "GQ"),
    "o3_ppb": AirValue("o3", "61"),
    "so2_ug_m3": AirValue("so2", "GQ"),
    "voc_ppb": AirValue("volatileOrganicCompoundsTotal", "61"),
}


class NotExportedError(ValueError):
    """An event that makes no entity; ``reason`` says why (counted by the caller)."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason


def _prop(value: Any, observed: str, unit: str | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {"type": "Property", "value": value, "observedAt": observed}
    if unit is not None:
        out["unitCode"] = unit
    return out


def _when(ts: str) -> dict[str, Any]:
    return {"type": "Property", "value": {"@type": "DateTime", "@value": ts}}


def _point(position: Position) -> dict[str, Any]:
    return {"type": "GeoProperty", "value": {"type": "Point", "coordinates": list(position)}}


class Converter:
    """Turns checked events into NGSI-LD entities using the city facts in ``config``."""

    def __init__(self, config: NgsiConfig) -> None:
        """Keep the config (locations, lanes, contexts)."""
        self.config = config

    def location(self, site: str, gateway: str, source: str) -> Position | None:
        """The configured position of a source, or of its gateway, or of its site."""
        for key in (f"{site}/{gateway}/{source}", f"{site}/{gateway}", site):
            if key in self.config.locations:
                return self.config.locations[key]
        return None

    def convert(self, event: dict[str, Any]) -> list[dict[str, Any]]:
        """Entities of one schema-valid event; :class:`NotExportedError` when it makes none."""
        kind = event["type"]
        if kind == "flow":
            return self._flow(event)
        if kind == "sensor_reading":
            return [self._air(event)]
        raise NotExportedError("not_exported", f"{kind} events have no data model here")

    def _base(self, kind: str, ident: str, event: dict[str, Any], context: str) -> dict[str, Any]:
        return {
            "id": f"urn:ngsi-ld:{kind}:{ident}",
            "type": kind,
            "dataProvider": {
                "type": "Property",
                "value": f"roadside-gateway:{event['site']}:{event['gateway']}",
            },
            "@context": [context, self.config.core_context],
        }

    def _flow(self, event: dict[str, Any]) -> list[dict[str, Any]]:
        data = event["data"]
        site, gw, camera = event["site"], event["gateway"], data["camera"]
        end = data["end"]
        out: list[dict[str, Any]] = []
        for lane_id, lane in data["lanes"].items():
            info = self.config.lanes.get(f"{site}/{gw}/{camera}/{lane_id}", LaneInfo())
            ident = f"{site}:{gw}:{camera}:{lane_id}"
            entity = self._lane_entity(ident, event, lane_id, info)
            volume = lane["volume"]
            entity["intensity"] = _prop(sum(volume.values()), end)
            if "occupancy" in lane:
                entity["occupancy"] = _prop(lane["occupancy"], end)
            if "speed_mean_kmh" in lane:
                entity["averageVehicleSpeed"] = _prop(lane["speed_mean_kmh"], end, "KMH")
            if "headway_mean_s" in lane:
                entity["averageHeadwayTime"] = _prop(lane["headway_mean_s"], end, "SEC")
            if "congestion" in lane:
                entity["congested"] = _prop(lane["congestion"] == "congested", end)
            out.append(entity)
            if not self.config.per_class:
                continue
            for label, count in sorted(volume.items()):
                vehicle = VEHICLE_TYPES.get(label)
                if vehicle is None:
                    continue
                per = self._lane_entity(f"{ident}:{vehicle}", event, lane_id, info)
                per["vehicleType"] = _prop(vehicle, end)
                per["intensity"] = _prop(count, end)
                out.append(per)
        return out

    def _lane_entity(
        self, ident: str, event: dict[str, Any], lane_id: str, info: LaneInfo
    ) -> dict[str, Any]:
        start, end = event["data"]["start"], event["data"]["end"]
        entity = self._base("TrafficFlowObserved", ident, event, TRANSPORTATION_CONTEXT)
        entity["name"] = {"type": "Property", "value": lane_id}
        entity["dateObserved"] = _when(end)
        entity["dateObservedFrom"] = _when(start)
        entity["dateObservedTo"] = _when(end)
        camera = event["data"]["camera"]
        if info.location is not None:
            line = [list(p) for p in info.location]
            entity["location"] = {
                "type": "GeoProperty",
                "value": {"type": "LineString", "coordinates": line},
            }
        elif (where := self.location(event["site"], event["gateway"], camera)) is not None:
            entity["location"] = _point(where)
        if info.lane_id is not None:
            entity["laneId"] = _prop(info.lane_id, end)
        if info.direction is not None:
            entity["laneDirection"] = _prop(info.direction, end)
        if info.road_segment is not None:
            entity["refRoadSegment"] = {"type": "Relationship", "object": info.road_segment}
        return entity

    def _air(self, event: dict[str, Any]) -> dict[str, Any]:
        data = event["data"]
        site, gw, sensor = event["site"], event["gateway"], data["sensor"]
        where = self.location(site, gw, sensor)
        if where is None:
            raise NotExportedError(
                "no_location", f"no location configured for {site}/{gw}/{sensor} (required)"
            )
        ts = event["ts"]
        entity = self._base(
            "AirQualityObserved", f"{site}:{gw}:{sensor}", event, ENVIRONMENT_CONTEXT
        )
        entity["name"] = {"type": "Property", "value": sensor}
        entity["dateObserved"] = _when(ts)
        entity["location"] = _point(where)
        entity["typeofLocation"] = _prop("outdoor" if self.config.outdoor else "indoor", ts)
        found = 0
        for name, value in data["values"].items():
            spec = AIR_VALUES.get(name)
            if spec is None or isinstance(value, str):
                continue
            number = float(value) * spec.factor
            if spec.attribute != "temperature" and number < 0:
                continue  # a negative concentration is a sensor fault, not an observation
            if spec.attribute == "relativeHumidity":
                number = min(1.0, number)
            entity[spec.attribute] = _prop(round(number, 4), ts, spec.unit)
            found += 1
        if not found:
            raise NotExportedError(
                "no_values", f"{data['protocol']} reading has no air-quality value"
            )
        return entity
