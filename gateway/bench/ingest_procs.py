"""The processes of ``gateway bench ingest``: local servers, publisher and consumers.

Every consumer runs in its own process and talks to the benchmark over a pipe:
it sends ``"subscribed"`` once its persistent session exists and it is offline, waits
for ``"go"``, reconnects, then sends its progress (events handled) until ``"stop"``,
and finally its peak RSS.
"""

from __future__ import annotations

import json
import resource
import shutil
import socket
import subprocess
import time
import urllib.request
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import click

TOPIC = "city/bench/rsu-{gw}/events/cam-north/line_crossing"
# Each phase of each round has its own gateway number, group and filter, so sessions
# left by earlier phases never match its events.
FILTER = "city/bench/rsu-{gw}/events/#"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _port_open(port: int) -> bool:
    with socket.create_connection(("127.0.0.1", port), 0.2):
        return True


def _wait(check: Any, what: str, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if check():
                return
        except OSError:
            pass
        time.sleep(0.05)
    raise click.ClickException(f"{what} did not start")


def start_servers(workdir: Path, count: int) -> tuple[list[subprocess.Popen[bytes]], int, str]:
    """Start Mosquitto and VictoriaMetrics on free loopback ports; return (procs, port, url)."""
    for name in ("mosquitto", "victoria-metrics"):
        if not (shutil.which(name) or shutil.which(name, path="/usr/sbin")):
            raise click.ClickException(f"{name} is not installed (deploy/install-dev.sh)")
    mqtt_port, db_port = _free_port(), _free_port()
    conf = workdir / "mosquitto.conf"
    conf.write_text(
        f"listener {mqtt_port} 127.0.0.1\nallow_anonymous true\npersistence false\n"
        f"max_queued_messages {count * 2 + 1000}\nmax_inflight_messages 0\n"
    )
    mosquitto = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
    log = (workdir / "servers.log").open("ab")
    procs = [
        subprocess.Popen([mosquitto, "-c", str(conf)], stdout=log, stderr=log),
        subprocess.Popen(
            [
                str(shutil.which("victoria-metrics")),
                f"-httpListenAddr=127.0.0.1:{db_port}",
                f"-storageDataPath={workdir / 'vm'}",
                "-retentionPeriod=100y",
                "-loggerLevel=ERROR",
            ],
            stdout=log,
            stderr=log,
        ),
    ]
    log.close()
    url = f"http://127.0.0.1:{db_port}"
    _wait(lambda: _port_open(mqtt_port), "mosquitto")
    _wait(
        lambda: urllib.request.urlopen(f"{url}/health", timeout=1).status == 200, "victoria-metrics"
    )
    return procs, mqtt_port, url


def _events(count: int, gw: int) -> list[bytes]:
    from gateway.events import Draft, encode, envelope

    start = time.time() - count / 1000
    out = []
    for seq in range(1, count + 1):
        data = {
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
