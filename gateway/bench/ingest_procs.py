"""The processes of ``gateway bench ingest``: local servers, publisher and consumers.

Every consumer runs in its own process and talks to the benchmark over a pipe:
it sends ``"subscribed"`` once its persistent session exists and it is offline, waits
for ``"go"``, reconnects, then sends its progress (events handled) until ``"stop"``,
and finally its peak RSS.
"""

from __future__ import annotations

import json
import resource
import time
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

from gateway.localservers import Mosquitto, VictoriaMetrics

TOPIC = "city/bench/rsu-{gw}/events/cam-north/line_crossing"
# Each phase of each round has its own gateway number, group and filter, so sessions
# left by earlier phases never match its events.
FILTER = "city/bench/rsu-{gw}/events/#"


def start_servers(workdir: Path, count: int) -> tuple[Mosquitto, VictoriaMetrics]:
    """Start Mosquitto (queues for ``count`` events) and VictoriaMetrics on free ports."""
    broker = Mosquitto(workdir / "mosquitto", max_queued=count * 2 + 1000, log_types=())
    database = VictoriaMetrics(workdir / "vm")
    broker.start()
    try:
        database.start()
    except BaseException:
        broker.stop()
        raise
    return broker, database


def _events(count: int, gw: int) -> list[bytes]:
    from gateway.events import Draft, encode, envelope
    from gateway.jsontypes import JsonObject

    start = time.time() - count / 1000
    out = []
    for seq in range(1, count + 1):
        data: JsonObject = {
            "camera": "cam-north",
            "line": "l1",
            "track_id": seq,
            "label": "car",
            "direction": "left_to_right",
            "speed_kmh": 40.0 + seq % 9,
        }
        draft = Draft("line_crossing", "cam-north", start + seq / 1000, data)
        out.append(
            encode(
                envelope(
                    draft,
                    seq=seq,
                    event_id=f"{gw:08x}{seq:024x}",
                    gateway=f"rsu-{gw}",
                    site="bench",
                )
            )
        )
    return out


def publisher_main(port: int, count: int, gw: int, conn: Connection) -> None:
    """Child process: publish ``count`` events at QoS 1 and report the rate."""
    import paho.mqtt.client as mqtt
    from paho.mqtt.enums import CallbackAPIVersion

    payloads = _events(count, gw)
    client = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
    client.max_inflight_messages_set(1000)
    client.connect("127.0.0.1", port)
    client.loop_start()
    start = time.perf_counter()
    infos = [client.publish(TOPIC.format(gw=gw), p, qos=1) for p in payloads]
    for info in infos:
        info.wait_for_publish(60)
    conn.send({"publish_eps": count / (time.perf_counter() - start)})
    client.disconnect()
    client.loop_stop()


def bare_main(port: int, gw: int, name: str, conn: Connection) -> None:
    """Child process: a bare paho subscriber that receives and parses JSON, nothing else."""
    group = f"bench{gw}"
    import paho.mqtt.client as mqtt
    from paho.mqtt.enums import CallbackAPIVersion
    from paho.mqtt.packettypes import PacketTypes
    from paho.mqtt.properties import Properties

    count = [0]

    def on_message(client: Any, userdata: Any, message: Any) -> None:
        json.loads(message.payload)
        count[0] += 1

    def session() -> Any:
        client = mqtt.Client(
            CallbackAPIVersion.VERSION2, client_id=f"{group}-bare-{name}", protocol=mqtt.MQTTv5
        )
        client.on_message = on_message
        props = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
        props.SessionExpiryInterval = 3600
        client.connect("127.0.0.1", port, clean_start=False, properties=props)
        return client

    import threading

    subscribed = threading.Event()
    client = session()
    client.on_subscribe = lambda *a: subscribed.set()
    client.loop_start()
    client.subscribe(f"$share/{group}/{FILTER.format(gw=gw)}", qos=1)
    subscribed.wait(10)
    client.disconnect()
    client.loop_stop()
    clients: list[Any] = []

    def start() -> None:
        clients.append(session())
        clients[0].loop_start()

    def stop() -> None:
        clients[0].disconnect()
        clients[0].loop_stop()

    _consume(conn, start, lambda: count[0], stop)


def ingest_main(port: int, url: str, gw: int, name: str, conn: Connection) -> None:
    """Child process: one ingest worker; reports its written-event count."""
    group = f"bench{gw}"
    from gateway.config.settings import validate_settings
    from gateway.ingest.worker import IngestWorker

    conf = conn.recv()
    settings = validate_settings(
        {
            "gateway": {"data_dir": conf["data_dir"]},
            "mqtt": {"host": "127.0.0.1", "port": port},
            "ingest": {
                "share_group": group,
                "topics": [FILTER.format(gw=gw)],
                "influx": {
                    "url": url,
                    "token": "bench",
                    "batch_size": conf["batch_size"],
                    "flush_interval_s": conf["flush_interval_s"],
                },
            },
        }
    )
    first = IngestWorker(settings, name)
    first.start()
    first.subscribed.wait(10)
    first.stop()
    worker = IngestWorker(settings, name)
    _consume(conn, worker.start, lambda: worker.stats.events_written, worker.stop)


def _consume(conn: Connection, start: Any, progress: Any, stop: Any) -> None:
    conn.send("subscribed")
    conn.recv()  # go
    start()
    while not conn.poll(0.005):
        conn.send(progress())
    conn.recv()  # stop
    stop()
    conn.send({"rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024})
