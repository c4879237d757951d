"""FIWARE Smart Data Models export: entities checked against schemas written from the models.

The schemas (``gateway/ngsi/schema/*.json``) were written from the published
``schema.json`` of TrafficFlowObserved (dataModel.Transportation, 0.0.1) and
AirQualityObserved (dataModel.Environment, 0.1.4) and their normalized NGSI-LD examples;
the excerpts of those examples below (trimmed, values as published) must pass them too.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from gateway.cli import main
from gateway.config.ngsi import NgsiConfig
from gateway.events import envelope
from gateway.events.builder import from_analytics, sensor_reading
from gateway.events.health import health
from gateway.ngsi.convert import Converter, NotExportedError
from gateway.ngsi.validate import entity_problems
from gateway.sensors.types import Reading
from gateway.vision.analytics.types import FlowReport, LaneFlow
from tests.support import health_builders
from tests.support.ngsi import ContextBrokerStub

T0 = 1_800_000_000.0
CONFIG = NgsiConfig.model_validate(
    {
        "locations": {
            "site-1/gw-1/cam": [127.2891, 36.4801],
            "site-1/gw-1": [127.29, 36.48],
        },
        "lanes": {"site-1/gw-1/cam/in-N": {"lane_id": 2, "direction": "backward"}},
    }
)

# Trimmed from dataModel.Transportation/TrafficFlowObserved/examples/example-normalized.jsonld.
PUBLISHED_TFO = {
    "id": "urn:ngsi-ld:TrafficFlowObserved:TrafficFlowObserved-Valladolid-osm-60821110",
    "type": "TrafficFlowObserved",
    "averageVehicleSpeed": {"type": "Property", "value": 52.6},
    "dateObserved": {
        "type": "Property",
        "value": {"@type": "DateTime", "@value": "2016-12-07T11:10:00"},
    },
    "intensity": {"type": "Property", "value": 197},
    "laneDirection": {"type": "Property", "value": "forward"},
    "laneId": {"type": "Property", "value": 1},
    "location": {
        "type": "GeoProperty",
        "value": {
            "type": "LineString",
            "coordinates": [
                [-4.73735395519672, 41.6538181849672],
                [-4.73414858659993, 41.6600594193478],
            ],
        },
    },
    "occupancy": {"type": "Property", "value": 0.76},
    "reversedLane": {"type": "Property", "value": False},
    "@context": [
        "https://raw.githubusercontent.com/smart-data-models/dataModel.Transportation/master/context.jsonld"
    ],
}
# Trimmed from dataModel.Environment/AirQualityObserved/examples/example-normalized.jsonld.
PUBLISHED_AQO = {
    "id": "urn:ngsi-ld:AirQualityObserved:Madrid-AmbientObserved-28079004-2016-03-15T11:00:00",
    "type": "AirQualityObserved",
    "co": {"type": "Property", "value": 500, "unitCode": "GP"},
    "no2": {"type": "Property", "value": 69, "unitCode": "GQ"},
    "airQualityIndex": {"type": "Property", "value": 65},
    "dateObserved": {"type": "Property", "value": "2016-03-15T11:00:00"},
    "location": {
        "type": "GeoProperty",
        "value": {"type": "Point", "coordinates": [-3.712247222222222, 40.423852777777775]},
    },
    "@context": [
        "https://raw.githubusercontent.com/smart-data-models/dataModel.Environment/master/context.jsonld"
    ],
}


def flow_event() -> dict[str, Any]:
    lane = LaneFlow(
        volume={"car": 20, "truck": 2, "person": 1},
        occupancy=0.31,
        headway_mean_s=3.4,
        headways=22,
        speed_mean_kmh=27.5,
        speed_p85_kmh=33.0,
        speeds=22,
        congestion="congested",
    )
    report = FlowReport("cam", T0, T0 + 300, lanes={"in-N": lane, "out-S": LaneFlow(volume={})})
    return envelope(from_analytics(report), seq=3, event_id="b" * 32, gateway="gw-1", site="site-1")


def air_event(values: dict[str, float | int | str], sensor: str = "pm-1") -> dict[str, Any]:
    reading = Reading("pms5003", values, T0, sensor)
    return envelope(
        sensor_reading(reading), seq=4, event_id="c" * 32, gateway="gw-1", site="site-1"
    )


def test_the_published_examples_pass_the_project_schemas() -> None:
    assert entity_problems(PUBLISHED_TFO) == []
    assert entity_problems(PUBLISHED_AQO) == []


def test_a_flow_event_becomes_traffic_flow_observed_per_lane_and_class() -> None:
    entities = Converter(CONFIG).convert(flow_event())
    for entity in entities:
        assert entity_problems(entity) == [], entity["id"]
    by_id = {e["id"]: e for e in entities}
    lane = by_id["urn:ngsi-ld:TrafficFlowObserved:site-1:gw-1:cam:in-N"]
    assert lane["intensity"]["value"] == 23
    assert lane["occupancy"]["value"] == 0.31
    assert lane["averageVehicleSpeed"] == {
        "type": "Property",
        "value": 27.5,
        "observedAt": "2027-01-15T08:05:00.000Z",
        "unitCode": "KMH",
    }
    assert lane["averageHeadwayTime"]["unitCode"] == "SEC"
    assert lane["congested"]["value"] is True
    assert lane["laneId"]["value"] == 2
    assert lane["laneDirection"]["value"] == "backward"
    assert lane["dateObservedFrom"]["value"] == {
        "@type": "DateTime",
        "@value": "2027-01-15T08:00:00.000Z",
    }
    assert lane["location"]["value"] == {"type": "Point", "coordinates": [127.2891, 36.4801]}
    lorry = by_id["urn:ngsi-ld:TrafficFlowObserved:site-1:gw-1:cam:in-N:lorry"]
    assert (lorry["vehicleType"]["value"], lorry["intensity"]["value"]) == ("lorry", 2)
    assert not any(e["id"].endswith(":person") for e in entities)  # not a vehicle type
    empty = by_id["urn:ngsi-ld:TrafficFlowObserved:site-1:gw-1:cam:out-S"]
    assert empty["intensity"]["value"] == 0
    assert "occupancy" not in empty


def test_real_pipeline_output_converts_to_valid_entities() -> None:
    import dataclasses

    from simulators.camera.flow_scenarios import intersection, run

    result = run(dataclasses.replace(intersection(), interval_s=10.0), 21.0)
    assert len(result.reports) == 2
    converter = Converter(NgsiConfig.model_validate({"locations": {"s": [10.0, 50.0]}}))
    for report in result.reports:
        event = envelope(from_analytics(report), seq=1, event_id="d" * 32, gateway="g", site="s")
        entities = converter.convert(event)
        assert len(entities) >= 8
        assert all(entity_problems(e) == [] for e in entities)


def test_a_sensor_reading_becomes_air_quality_observed() -> None:
    event = air_event(
        {
            "pm1_0": 4,
            "pm2_5": 7.5,
            "pm10": 10,
            "temperature_c": -3.5,
            "humidity_pct": 64.0,
            "hcho_mg_m3": 0.01,
        },
        sensor="pm-2",
    )
    (entity,) = Converter(CONFIG).convert(event)
    assert entity_problems(entity) == []
    assert entity["id"] == "urn:ngsi-ld:AirQualityObserved:site-1:gw-1:pm-2"
    assert entity["pm25"]["value"] == 7.5
    assert entity["pm25"]["unitCode"] == "GQ"
    assert entity["pm1"]["value"] == 4
    assert entity["temperature"]["value"] == -3.5
    assert entity["relativeHumidity"]["value"] == 0.64  # the model's 0..1
    assert entity["location"]["value"]["coordinates"] == [127.29, 36.48]  # the gateway's
    assert "hcho_mg_m3" not in entity


@pytest.mark.parametrize(
    ("event", "config", "reason"),
    [
        (air_event({"pm2_5": 7}), NgsiConfig(), "no_location"),
        (air_event({"hcho_mg_m3": 0.1}), CONFIG, "no_values"),
        (
            envelope(
                health(T0, health_builders.gateway(cameras={}, sensors={})),
                seq=1,
                event_id="e" * 32,
                gateway="gw-1",
                site="site-1",
            ),
            CONFIG,
            "not_exported",
        ),
    ],
)
def test_events_without_an_entity_say_why(
    event: dict[str, Any], config: NgsiConfig, reason: str
) -> None:
    with pytest.raises(NotExportedError) as info:
        Converter(config).convert(event)
    assert info.value.reason == reason


def tfo() -> dict[str, Any]:
    return Converter(CONFIG).convert(flow_event())[0]


def aqo() -> dict[str, Any]:
    return Converter(CONFIG).convert(air_event({"pm2_5": 7, "humidity_pct": 50}))[0]


@pytest.mark.parametrize(
    ("make", "change", "problem"),
    [
        (tfo, {"id": "TrafficFlowObserved-1"}, "does not match"),
        (tfo, {"id": "urn:ngsi-ld:AirQualityObserved:x"}, "does not match"),
        (tfo, {"occupancy": {"type": "Property", "value": 1.2}}, "greater than the maximum"),
        (tfo, {"intensity": 23}, "is not of type 'object'"),  # key-values form
        (tfo, {"intensity": {"type": "Property", "value": -1}}, "less than the minimum"),
        (tfo, {"averageSpeed": {"type": "Property", "value": 3}}, "Additional properties"),
        (tfo, {"vehicleType": {"type": "Property", "value": "truck"}}, "is not one of"),
        (tfo, {"laneId": {"type": "Property", "value": 0}}, "less than the minimum"),
        (
            tfo,
            {
                "location": {
                    "type": "GeoProperty",
                    "value": {"type": "Point", "coordinates": [36.48, 127.29]},
                }
            },
            "is not valid under any",
        ),
        (
            tfo,
            {"location": {"type": "Property", "value": {"type": "Point", "coordinates": [1, 2]}}},
            "'GeoProperty' was expected",
        ),
        (tfo, {"@context": ["https://example.org/other.jsonld"]}, "does not contain"),
        (
            tfo,
            {"dateObserved": {"type": "Property", "value": "yesterday"}},
            "is not valid under any",
        ),
        (tfo, {"congested": {"type": "Relationship", "value": True}}, "'Property' was expected"),
        (aqo, {"relativeHumidity": {"type": "Property", "value": 50}}, "greater than the maximum"),
        (aqo, {"location": None}, "None is not of type 'object'"),
        (aqo, {"pm25": {"type": "Property", "value": 7, "unit": "ug"}}, "Additional properties"),
    ],
)
def test_the_schemas_refuse_what_the_models_do_not_allow(
    make: Any, change: dict[str, Any], problem: str
) -> None:
    entity = make()
    entity.update(change)
    assert any(problem in p for p in entity_problems(entity)), entity_problems(entity)


def test_location_is_required_for_air_quality_observed() -> None:
    entity = aqo()
    del entity["location"]
    assert any("'location' is a required property" in p for p in entity_problems(entity))


# -- the command ----------------------------------------------------------------------------


def write_events(path: Path) -> Path:
    lines = [
        json.dumps(flow_event()),
        "not json at all",
        "city/site-1/gw-1/sensors/pm-1 " + json.dumps(air_event({"pm2_5": 5})),
        json.dumps({**flow_event(), "schema": 2}),
        "",
        json.dumps(air_event({"hcho_mg_m3": 0.1})),
    ]
    path.write_text("\n".join(lines) + "\n")
    return path


def ngsi_toml(tmp_path: Path) -> Path:
    path = tmp_path / "ngsi.toml"
    path.write_text('[locations]\n"site-1" = [127.29, 36.48]\n')
    return path


def test_convert_command_writes_entities_and_reports_bad_lines(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    events = write_events(tmp_path / "events.jsonl")
    code = main(["ngsi", "convert", str(events), "--config", str(ngsi_toml(tmp_path))])
    out, err = capsys.readouterr()
    entities = [json.loads(line) for line in out.splitlines()]
    assert code == 1  # two bad lines
    assert "error: line 2: not JSON" in err
    assert "error: line 4: not a valid event" in err
    summary = json.loads(err.strip().splitlines()[-1])
    assert summary["invalid"] == 2
    assert summary["skipped"] == {"no_values": 1}
    assert summary["entities"] == len(entities) == 2 + 2 + 1  # 2 lanes, car + lorry, 1 AQO
    assert all(entity_problems(e) == [] for e in entities)


def test_convert_command_refuses_a_bad_config(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text('surprise = 1\n[locations]\n"site-1" = [200.0, 36.48]\n')
    code = main(["ngsi", "convert", str(write_events(tmp_path / "e.jsonl")), "--config", str(bad)])
    err = capsys.readouterr().err
    assert code == 2
    assert "locations.site-1[0]: Input should be less than or equal to 180" in err
    assert "surprise: unknown key" in err


@pytest.fixture
def broker_factory() -> Iterator[Any]:
    made: list[ContextBrokerStub] = []

    def make(statuses: list[int]) -> ContextBrokerStub:
        made.append(ContextBrokerStub(statuses))
        return made[-1]

    yield make
    for b in made:
        b.close()


def test_post_upserts_in_batches_and_retries_a_busy_broker(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], broker_factory: Any
) -> None:
    broker = broker_factory([503, 204, 201, 204])
    events = write_events(tmp_path / "events.jsonl")
    args = [
        "ngsi",
        "convert",
        str(events),
        "--config",
        str(ngsi_toml(tmp_path)),
        "--post",
        broker.url,
        "--batch",
        "2",
        "--tenant",
        "city",
    ]
    code = main(args)
    err = capsys.readouterr().err
    assert code == 1  # the bad lines; every entity was still posted
    sent = [e for body in broker.bodies for e in body]
    assert len(sent) == 5
    assert [len(b) for b in broker.bodies] == [2, 2, 1]
    assert broker.headers[0]["content-type"] == "application/ld+json"
    assert broker.headers[0]["ngsild-tenant"] == "city"
    assert '"posted": 5' in err
    assert '"retries": 1' in err


def test_post_stops_on_a_refused_batch(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], broker_factory: Any
) -> None:
    broker = broker_factory([400])
    events = write_events(tmp_path / "events.jsonl")
    code = main(
        ["ngsi", "convert", str(events), "--config", str(ngsi_toml(tmp_path)), "--post", broker.url]
    )
    err = capsys.readouterr().err
    assert code == 1
    assert "HTTP 400" in err
    assert '"posted": 0' in err


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('[locations]\n"s" = [1.0, 2.0]\n', "no [bridge] section"),
        ('[bridge]\nurl = "ftp://x"\n', "bridge.url: String should match pattern"),
        ('[bridge]\nurl = "http://x"\ntopics = ["$share/g/+/+/+/events/#"]\n', "without $share/"),
    ],
)
def test_bridge_refuses_a_config_it_cannot_run(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], text: str, message: str
) -> None:
    path = tmp_path / "ngsi.toml"
    path.write_text(text)
    assert main(["ngsi", "bridge", "--config", str(path)]) == 2
    assert message in capsys.readouterr().err
