"""``gateway bench priority``: how long an alert takes to reach the centre, backlog or not.

Each round runs a gateway (:class:`~gateway.app.App`, no cameras) in its own process
against one local Mosquitto, with a ``mosquitto_sub`` taking every message (the
central bulk consumer) and, in this process, an alert consumer (paho, QoS 1,
subscribed to the alert topics only, as a city's alerting service would be). Per
round, interleaved:

* **empty**: the outbox is empty and the link idle; ``--alerts`` alerts are raised one
  after the other;
* **backlog**: ``--backlog`` sensor readings are stored while the unit is offline, then
  the unit connects and drains them; while it drains (with more than 90 % of the
  backlog still queued) the same number of alerts is raised;
* **fifo** (with ``--fifo``): the same backlog, and one event of the bulk lane raised
  during the drain instead of an alert: the delay an alert had when the outbox sent
  strictly in ``seq`` order.

Latency = from the ``App.emit`` call (monotonic clock, carried in the alert) to its
arrival at the alert consumer. The target: backlog median within 2x the empty median.
"""

from __future__ import annotations

import contextlib
import statistics
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import click

from gateway.bench.load import load_1m
from gateway.bench.outbox import _in_process, local_mosquitto, subscriber
from gateway.output import json_option, print_json

_ALERT_FILTER = "city/+/+/events/+/alert"
_FIFO_FILTER = "city/+/+/sensors/probe"


def _alert(n: int) -> Any:
    from gateway.events.envelope import Draft

    return Draft(
        "alert",
        "cam-1",
        time.time(),
        {
            "camera": "cam-1",
            "kind": "pedestrian_in_roadway",
            "details": {"n": n, "emitted": time.monotonic()},
        },
    )


def _probe(n: int) -> Any:
    """The FIFO stand-in: a bulk-lane event raised like an alert."""
    from gateway.events.envelope import Draft

    return Draft(
        "sensor_reading",
        "probe",
        time.time(),
        {
            "sensor": "probe",
            "protocol": "bench",
            "values": {"n": n, "emitted": time.monotonic()},
            "extra": {},
        },
    )


def _reading(n: int) -> Any:
    from gateway.events.envelope import Draft

    return Draft(
        "sensor_reading",
        "pm-1",
        time.time(),
        {"sensor": "pm-1", "protocol": "bench", "values": {"n": n, "pm25": 12.5}, "extra": {}},
    )


def gateway_round(job: dict[str, Any], conn: Any) -> None:
    """One round in a fresh process: store the backlog, connect, raise the alerts."""
    from gateway.app import App
    from gateway.config.settings import validate_settings

    mode, backlog, alerts = job["mode"], job["backlog"], job["alerts"]
    settings = validate_settings(
        {
            "gateway": {"id": "rsu-0001", "site": "bench", "data_dir": job["workdir"]},
            "mqtt": {"port": job["port"], "client_id": f"bench-{mode}"},
            "outbox": {
                "max_inflight": job["inflight"],
                "backlog_order": job["order"],
                "batch": job.get("batch", "off"),
            },
            "events": {"health_interval_s": 3600},
        }
    )
    app = App(settings)
    queued = backlog if mode != "empty" else 0
    for start in range(0, queued, 1000):  # stored while the unit is offline
        app.emit([_reading(start + i) for i in range(min(1000, queued - start))])
    app.start()
    app.link.wait_connected(10)
    raise_one = _probe if mode == "fifo" else _alert
    depths: list[int] = []
    windows: list[int] = []
    rtts: list[float] = []
    if mode == "empty":
        while app.outbox.depth:  # the start-up health event
            time.sleep(0.01)
        for n in range(alerts):
            time.sleep(0.05)
            depths.append(app.outbox.depth)
            app.emit([raise_one(n)])
    else:
        # Raise them while the drain runs and more than 90 % is still queued.
        step = max(backlog // 100, 1)
        count = 1 if mode == "fifo" else alerts
        for n in range(count):
            target = (n + 1) * step
            while app.forwarder.published < target:
                time.sleep(0.0005)
            depths.append(app.outbox.depth)
            windows.append(app.forwarder.bulk_window.limit)
            rtts.append(round(app.forwarder.bulk_window.min_rtt_s * 1000, 3))
            app.emit([raise_one(n)])
    deadline = time.monotonic() + 600
    while app.outbox.depth and time.monotonic() < deadline:
        time.sleep(0.01)
    app.stop()
    conn.send({"mode": mode, "depths": depths, "windows": windows, "min_rtt_ms": rtts})


class _Receiver:
    """The alert consumer: arrival time of every alert (and FIFO probe), by number."""

    def __init__(self, port: int) -> None:
        import paho.mqtt.client as mqtt
        from paho.mqtt.enums import CallbackAPIVersion

        self.arrivals: dict[tuple[str, int], float] = {}
        self._lock = threading.Lock()
        self._subscribed = threading.Event()
        self.client = mqtt.Client(
            CallbackAPIVersion.VERSION2, client_id="bench-alerts", protocol=mqtt.MQTTv5
        )
        self.client.on_connect = lambda c, *_a: c.subscribe([(_ALERT_FILTER, 1), (_FIFO_FILTER, 1)])
        self.client.on_subscribe = lambda *_a: self._subscribed.set()
        self.client.on_message = self._on_message
        self.client.connect("127.0.0.1", port)
        self.client.loop_start()
        if not self._subscribed.wait(10):
            raise click.ClickException("the alert consumer did not subscribe")

    def _on_message(self, _c: Any, _u: Any, msg: Any) -> None:
        import json

        now = time.monotonic()
        event = json.loads(msg.payload)
        data = event["data"]
        numbers = data.get("details") or data.get("values") or {}
        key = ("alert" if event["type"] == "alert" else "fifo", int(numbers["n"]))
        with self._lock:
            self.arrivals[key] = (now - float(numbers["emitted"])) * 1000.0

    def take(self, kind: str, count: int, timeout: float) -> list[float]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self._lock:
                got = [self.arrivals.get((kind, n)) for n in range(count)]
            if all(v is not None for v in got):
                break
            time.sleep(0.01)
        with self._lock:
            found = [self.arrivals.pop((kind, n), None) for n in range(count)]
        return [round(v, 2) for v in found if v is not None]

    def close(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()


def _summary(values: list[float]) -> dict[str, float | int]:
    if not values:
        return {"n": 0}
    ordered = sorted(values)
    return {
        "n": len(values),
        "median_ms": round(statistics.median(values), 2),
        "min_ms": ordered[0],
        "p90_ms": ordered[min(len(ordered) - 1, int(len(ordered) * 0.9))],
        "max_ms": ordered[-1],
    }


@click.command("priority")
@click.option("--backlog", default=100_000, show_default=True, type=click.IntRange(1000))
@click.option(
    "--alerts", default=5, show_default=True, type=click.IntRange(1, 50), help="Per round."
)
@click.option("--rounds", default=3, show_default=True, type=click.IntRange(1, 20))
@click.option("--inflight", default=100, show_default=True, type=click.IntRange(1, 65535))
@click.option(
    "--order",
    type=click.Choice(["oldest_first", "newest_first"]),
    default="oldest_first",
    show_default=True,
    help="[outbox] backlog_order of the gateway.",
)
@click.option(
    "--fifo", is_flag=True, help="Also measure an event at the back of the queue (no lanes)."
)
@click.option(
    "--batch",
    type=click.Choice(["off", "backlog"]),
    default="off",
    show_default=True,
    help="[outbox] batch of the gateway (compact batches for the backlog).",
)
@json_option
def command(
    *,
    backlog: int,
    alerts: int,
    rounds: int,
    inflight: int,
    order: str,
    fifo: bool,
    batch: str,
    as_json: bool,
) -> None:
    """Alert latency with a drained backlog next to an empty queue (target: within 2x)."""
    load_start = load_1m()
    modes: list[str] = ["empty", "backlog", *(["fifo"] if fifo else [])]
    per_round: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="gateway-bench-") as tmp:
        work = Path(tmp)
        with contextlib.ExitStack() as stack:
            port = stack.enter_context(local_mosquitto(work))
            stack.enter_context(subscriber(port, work))
            receiver = _Receiver(port)
            stack.callback(receiver.close)
            for n in range(rounds):
                for mode in modes:
                    job = {
                        "mode": mode,
                        "port": port,
                        "backlog": backlog,
                        "alerts": alerts,
                        "inflight": inflight,
                        "order": order,
                        "batch": batch,
                        "workdir": str(work / f"{mode}-{n}"),
                    }
                    report = _in_process(gateway_round, job)
                    kind = "fifo" if mode == "fifo" else "alert"
                    count = 1 if mode == "fifo" else alerts
                    latencies = receiver.take(kind, count, timeout=60)
                    per_round.append(
                        {
                            "round": n,
                            "mode": mode,
                            "latency_ms": latencies,
                            "queued_at_alert": report["depths"],
                            "bulk_window_at_alert": report["windows"],
                            "min_rtt_ms_at_alert": report["min_rtt_ms"],
                        }
                    )
    summary = {
        mode: _summary([v for r in per_round if r["mode"] == mode for v in r["latency_ms"]])
        for mode in modes
    }
    empty, loaded = summary["empty"], summary["backlog"]
    ratio = (
        round(float(loaded["median_ms"]) / float(empty["median_ms"]), 2)
        if empty.get("median_ms") and loaded.get("median_ms")
        else None
    )
    pair_ratios = []
    for n in range(rounds):
        e = [
            v
            for r in per_round
            if r["round"] == n and r["mode"] == "empty"
            for v in r["latency_ms"]
        ]
        b = [
            v
            for r in per_round
            if r["round"] == n and r["mode"] == "backlog"
            for v in r["latency_ms"]
        ]
        if e and b:
            pair_ratios.append(round(statistics.median(b) / statistics.median(e), 2))
    load_end = load_1m()
    result: dict[str, Any] = {
        "backlog": backlog,
        "alerts_per_round": alerts,
        "inflight": inflight,
        "backlog_order": order,
        "batch": batch,
        "summary": summary,
        "ratio_backlog_to_empty": ratio,
        "ratio_per_round": pair_ratios,
        "load_1m": {"start": load_start, "end": load_end},
        "rounds": per_round,
    }
    if as_json:
        print_json(result)
        return
    click.echo(
        f"alert latency (emit -> alert consumer), {rounds} round(s) interleaved "
        f"({' '.join(modes)}), {alerts} alert(s) each, backlog {backlog:,} sensor readings, "
        f"in-flight window {inflight}, {order}; load {load_start} -> {load_end}"
    )
    for mode in modes:
        s = summary[mode]
        if not s.get("n"):
            click.echo(f"  {mode:<8}: no arrivals")
            continue
        queued = [d for r in per_round if r["mode"] == mode for d in r["queued_at_alert"]]
        click.echo(
            f"  {mode:<8}: median {s['median_ms']:>9.2f} ms  min {s['min_ms']:.2f}  "
            f"p90 {s['p90_ms']:.2f}  max {s['max_ms']:.2f}  (n {s['n']}, queued at raise "
            f"{min(queued):,}..{max(queued):,})"
        )
    click.echo(f"  ratio   : backlog / empty = {ratio} (target <= 2); per round {pair_ratios}")
