"""``gateway bench outbox``: events/s through the outbox to MQTT against bare paho QoS 1.

Both measurements run in the same invocation, each in its own process, against the same
local Mosquitto, and stop the clock when the last PUBACK has arrived:

* **bare paho** (the raw baseline): one paho-mqtt client publishes N 158-byte JSON
  payloads with QoS 1 as fast as it can, with the same in-flight window;
* **outbox**: the gateway's :class:`~gateway.app.App` (no cameras) stores N events in
  the SQLite outbox (batches of ``--batch``, each one transaction allocating seq and id),
  while its forwarder publishes them in order and deletes them in batches as the
  PUBACKs arrive.
"""

from __future__ import annotations

import contextlib
import json
import multiprocessing
import resource
import shutil
import statistics
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import click

from gateway.bench.load import load_1m
from gateway.errors import UsageError
from gateway.localservers import Mosquitto
from gateway.output import json_option, print_json

PAYLOAD_BYTES = 158
TOPIC = "bench/rsu-0001/events"


def payload(size: int = PAYLOAD_BYTES) -> bytes:
    """Return a JSON object of exactly ``size`` bytes that looks like an event."""
    base = {"schema": 1, "id": "0" * 32, "seq": 123, "type": "line_crossing", "pad": ""}
    empty = len(json.dumps(base, separators=(",", ":")))
    base["pad"] = "x" * max(size - empty, 0)
    return json.dumps(base, separators=(",", ":")).encode()


@contextlib.contextmanager
def local_mosquitto(workdir: Path) -> Iterator[int]:
    """Run a Mosquitto on a free loopback port for the duration of the block."""
    with Mosquitto(workdir / "mosquitto", max_queued=1_000_000, log_types=("error",)) as broker:
        yield broker.port


def _cpu_s() -> float:
    """CPU seconds (user + system, every thread) this process used so far.

    Less sensitive to a busy neighbour than the wall-clock rate: a figure to read next
    to it on a shared machine.
    """
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _rss() -> dict[str, float]:
    import psutil

    return {
        "rss_mb": round(psutil.Process().memory_info().rss / 2**20, 1),
        "max_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
    }


def bare_paho(port: int, count: int, window: int, conn: Connection) -> None:
    """Publish ``count`` QoS 1 messages with bare paho; send the figures to ``conn``."""
    import paho.mqtt.client as mqtt
    from paho.mqtt.enums import CallbackAPIVersion

    done = threading.Event()
    connected = threading.Event()
    window_slots = threading.Semaphore(window)
    acked = [0]

    def on_publish(*_args: Any) -> None:
        acked[0] += 1
        window_slots.release()
        if acked[0] >= count:
            done.set()

    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="bench-bare", protocol=mqtt.MQTTv5)
    # The publisher keeps its own window (as the forwarder does): paho never queues.
    client.max_inflight_messages_set(0)
    client.max_queued_messages_set(0)
    client.on_publish = on_publish
    client.on_connect = lambda *_a: connected.set()
    client.connect("127.0.0.1", port)
    client.loop_start()
    connected.wait(10)
    body = payload()
    cpu = _cpu_s()
    start = time.perf_counter()
    for _ in range(count):
        window_slots.acquire()
        client.publish(TOPIC, body, qos=1)
    done.wait(600)
    elapsed = time.perf_counter() - start
    cpu = _cpu_s() - cpu
    client.loop_stop()
    client.disconnect()
    conn.send(
        {
            "count": acked[0],
            "seconds": round(elapsed, 3),
            "per_s": round(acked[0] / elapsed, 1),
            "cpu_ms_per_1k": round(cpu * 1e6 / max(acked[0], 1), 1),
            "payload_bytes": len(body),
            **_rss(),
        }
    )


def through_outbox(job: dict[str, Any], conn: Connection) -> None:
    """Emit ``count`` events through App -> outbox -> MQTT; send the figures to ``conn``."""
    from gateway.app import App
    from gateway.config.settings import validate_settings
    from gateway.events.envelope import Draft

    port, count, window, batch = job["port"], job["count"], job["window"], job["batch"]
    synchronous, workdir = job["synchronous"], job["workdir"]
    settings = validate_settings(
        {
            "gateway": {"id": "rsu-0001", "site": "bench", "data_dir": workdir},
            "mqtt": {"port": port, "client_id": "bench-outbox"},
            "outbox": {"max_inflight": window, "synchronous": synchronous},
            "events": {"health_interval_s": 3600},
        }
    )
    app = App(settings)
    app.start()
    app.link.wait_connected(10)

    def pending() -> int:
        return app.outbox.depth

    while pending():  # the start-up health event
        time.sleep(0.01)
    first = app.outbox.last_seq + 1
    cpu = _cpu_s()
    start = time.perf_counter()
    for offset in range(0, count, batch):
        now = time.time()
        app.emit(
            [
                Draft(
                    "sensor_reading",
                    "b",
                    now,
                    {"sensor": "b", "protocol": "b", "values": {"n": offset + i}, "extra": {}},
                )
                for i in range(min(batch, count - offset))
            ]
        )
    stored = time.perf_counter() - start
    while pending() and time.perf_counter() - start < 600:
        time.sleep(0.005)  # polling costs the measured process: not too often
    elapsed = time.perf_counter() - start
    cpu = _cpu_s() - cpu
    published = app.forwarder.published
    app.stop()
    conn.send(
        {
            "count": count,
            "seconds": round(elapsed, 3),
            "per_s": round(count / elapsed, 1),
            "cpu_ms_per_1k": round(cpu * 1e6 / count, 1),
            "stored_per_s": round(count / stored, 1),
            "published": published,
            "first_seq": first,
            "synchronous": synchronous,
            "batch": batch,
            "payload_bytes": _event_size(),
            **_rss(),
        }
    )


def _event_size() -> int:
    from gateway.events.envelope import Draft, encode, envelope, new_id

    draft = Draft(
        "sensor_reading",
        "b",
        time.time(),
        {"sensor": "b", "protocol": "b", "values": {"n": 12345}, "extra": {}},
    )
    return len(
        encode(envelope(draft, seq=12345, event_id=new_id(), gateway="rsu-0001", site="bench"))
    )


def _in_process(target: Any, *args: Any) -> dict[str, Any]:
    ctx = multiprocessing.get_context("spawn")
    parent, child = ctx.Pipe(duplex=False)
    proc = ctx.Process(target=target, args=(*args, child))
    proc.start()
    child.close()
    try:
        if not parent.poll(900):
            raise UsageError(f"{target.__name__} did not report")
        result: dict[str, Any] = parent.recv()
    except EOFError as exc:
        raise UsageError(f"{target.__name__} failed (exit code {proc.exitcode})") from exc
    finally:
        proc.join(30)
        parent.close()
    return result


@contextlib.contextmanager
def subscriber(port: int, workdir: Path) -> Iterator[None]:
    """A ``mosquitto_sub`` on every topic for the duration of the block.

    The outbox keeps what the broker delivered to no one (PUBACK 16), so both
    measurements publish to a broker with a subscriber, as in the field.
    """
    binary = shutil.which("mosquitto_sub")
    if binary is None:
        raise UsageError("mosquitto_sub is not installed (apt-get install mosquitto-clients)")
    with (workdir / "mosquitto_sub.log").open("wb") as log:
        proc = subprocess.Popen(
            [binary, "-h", "127.0.0.1", "-p", str(port), "-t", "#", "-q", "0", "-i", "bench-sink"],
            stdout=subprocess.DEVNULL,
            stderr=log,
        )
    try:
        _wait_subscribed(port, proc)
        yield
    finally:
        proc.terminate()
        proc.wait(10)


def _wait_subscribed(port: int, proc: subprocess.Popen[bytes]) -> None:
    """Publish probes until the broker answers PUBACK 0 (a subscriber got it)."""
    import paho.mqtt.client as mqtt
    from paho.mqtt.enums import CallbackAPIVersion

    codes: list[int] = []
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="bench-probe", protocol=mqtt.MQTTv5)
    client.on_publish = lambda _c, _u, _mid, reason, _p: codes.append(int(reason.value))
    client.connect("127.0.0.1", port)
    client.loop_start()
    try:
        deadline = time.monotonic() + 10
        while 0 not in codes:
            if proc.poll() is not None or time.monotonic() > deadline:
                raise UsageError("mosquitto_sub did not subscribe")
            client.publish("bench/probe", b"", qos=1)
            time.sleep(0.05)
    finally:
        client.loop_stop()
        client.disconnect()


@click.command("outbox")
@click.option("--count", default=20_000, show_default=True, type=click.IntRange(100))
@click.option(
    "--inflight",
    default=1000,
    show_default=True,
    type=click.IntRange(1, 65535),
    help="In-flight window of both publishers.",
)
@click.option(
    "--batch",
    default=100,
    show_default=True,
    type=click.IntRange(1),
    help="Events per outbox transaction.",
)
@click.option(
    "--synchronous", type=click.Choice(["normal", "full"]), default="normal", show_default=True
)
@click.option(
    "--rounds",
    default=3,
    show_default=True,
    type=click.IntRange(1, 20),
    help="Alternate both measurements this many times; report the medians.",
)
@click.option("--port", type=int, default=None, help="Use this Mosquitto instead of starting one.")
@json_option
def command(
    *,
    count: int,
    inflight: int,
    batch: int,
    synchronous: str,
    rounds: int,
    port: int | None,
    as_json: bool,
) -> None:
    """Events/s through the outbox to MQTT next to bare paho QoS 1 (target >= 50 %)."""
    bares: list[dict[str, Any]] = []
    outboxes: list[dict[str, Any]] = []
    load_start = load_1m()
    with tempfile.TemporaryDirectory(prefix="gateway-bench-") as tmp:
        work = Path(tmp)
        with contextlib.ExitStack() as stack:
            if port is None:
                port = stack.enter_context(local_mosquitto(work))
            stack.enter_context(subscriber(port, work))
            for n in range(rounds):
                bares.append(_in_process(bare_paho, port, count, inflight))
                job = {
                    "port": port,
                    "count": count,
                    "window": inflight,
                    "batch": batch,
                    "synchronous": synchronous,
                    "workdir": str(work / f"outbox-{n}"),
                }
                outboxes.append(_in_process(through_outbox, job))
    bare = _median(bares)
    outbox = _median(outboxes)
    pair_ratios = sorted(
        round(o["per_s"] / b["per_s"], 3) for b, o in zip(bares, outboxes, strict=True)
    )
    ratio = round(outbox["per_s"] / bare["per_s"], 3)
    result = {
        "bare_paho": bare,
        "outbox": outbox,
        "ratio": ratio,
        "ratio_per_pair": {
            "median": statistics.median(pair_ratios),
            "min": pair_ratios[0],
            "max": pair_ratios[-1],
        },
        "spread": {"bare_paho": _spread(bares), "outbox": _spread(outboxes)},
        "inflight": inflight,
        "load_1m": {"start": load_start, "end": load_1m()},
        "rounds": {"bare_paho": bares, "outbox": outboxes},
    }
    if as_json:
        print_json(result)
        return
    click.echo(
        f"{count} messages, QoS 1, in-flight window {inflight}, local Mosquitto with a"
        f" subscriber, {rounds} round(s) A B A B (bare paho, outbox), medians;"
        f" load {load_start} -> {result['load_1m']['end']}"
    )
    click.echo(
        f"  bare paho   : {bare['per_s']:>10,.0f} msg/s   ({bare['payload_bytes']} B payloads,"
        f" RSS {bare['rss_mb']} MB, max {bare['max_rss_mb']} MB)"
    )
    click.echo(
        f"  outbox path : {outbox['per_s']:>10,.0f} events/s ({outbox['payload_bytes']} B events,"
        f" RSS {outbox['rss_mb']} MB, max {outbox['max_rss_mb']} MB)"
    )
    click.echo(
        f"    stored    : {outbox['stored_per_s']:>10,.0f} events/s into SQLite"
        f" ({synchronous}, {batch} per transaction)"
    )
    low, high = result["spread"]["bare_paho"], result["spread"]["outbox"]
    click.echo(
        f"  ratio       : {ratio:.1%} of bare paho (target >= 50 %); per pair median"
        f" {result['ratio_per_pair']['median']:.1%}, {pair_ratios[0]:.1%} .. {pair_ratios[-1]:.1%}"
    )
    click.echo(
        f"  spread      : bare {low['min']:,.0f} .. {low['max']:,.0f}"
        f" | outbox {high['min']:,.0f} .. {high['max']:,.0f}"
    )
    click.echo(
        f"  CPU         : bare {bare['cpu_ms_per_1k']} ms | outbox {outbox['cpu_ms_per_1k']} ms"
        " per 1,000 messages (publisher process, all threads)"
    )
    click.echo(
        "  per round   : bare "
        + ", ".join(f"{r['per_s']:,.0f}" for r in bares)
        + " | outbox "
        + ", ".join(f"{r['per_s']:,.0f}" for r in outboxes)
    )


def _spread(runs: list[dict[str, Any]]) -> dict[str, float]:
    rates = [float(r["per_s"]) for r in runs]
    return {"min": min(rates), "median": statistics.median(rates), "max": max(rates)}


def _median(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Return the run with the median rate (a real run, so its other figures match)."""
    return sorted(runs, key=lambda r: float(r["per_s"]))[len(runs) // 2]
