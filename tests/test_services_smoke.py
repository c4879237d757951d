"""The real servers the suite relies on start, answer and store what they are sent."""

from __future__ import annotations

import time

import paho.mqtt.client as mqtt
from influxdb_client import InfluxDBClient, Point
from influxdb_client.client.write_api import SYNCHRONOUS

from tests.services import Mosquitto, VictoriaMetrics


def test_mosquitto_round_trip(mosquitto: Mosquitto) -> None:
    got: list[bytes] = []
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
    client.on_message = lambda _c, _u, msg: got.append(msg.payload)
    client.connect("127.0.0.1", mosquitto.port)
    client.subscribe("t/#", qos=1)
    client.loop_start()
    try:
        time.sleep(0.3)
        client.publish("t/x", b"hello", qos=1).wait_for_publish(5)
        deadline = time.monotonic() + 5
        while not got and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        client.loop_stop()
        client.disconnect()
    assert got == [b"hello"]


def test_victoria_accepts_influx_v2_write(victoria: VictoriaMetrics) -> None:
    with InfluxDBClient(url=victoria.url, token="any", org="any") as client:
        client.write_api(write_options=SYNCHRONOUS).write(
            bucket="any", record=Point("smoke").tag("gw", "g1").field("value", 42.0)
        )
    series = victoria.export_until('{__name__="smoke_value"}', lambda s: len(s) > 0)
    assert len(series) == 1
    assert series[0]["metric"]["gw"] == "g1"
    assert series[0]["values"] == [42]
