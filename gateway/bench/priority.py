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
import os
import statistics
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import click

from gateway.bench.load import load_1m
from gateway.bench.outbox import _in_process, local_mosquitto, subscriber
from gateway.output import json_option, print_json

_ALERT_FILTER = "city/+/+/events/+/alert"
_FIFO_FILTER = "city/+/+/sensors/probe"
TARGET_RATIO = 2.0


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
    if mode == "in_order":  # the baseline: alerts queue in the client behind bulk packets
        from gateway.transport import paho_client

        def in_order(client: Any, topic: str, payload: bytes, *args: Any) -> Any:
            return client.publish(topic, payload, *args)

        paho_client._Client.publish_first = in_order  # type: ignore[method-assign,assignment]
    if mode == "no_step_aside":  # the baseline: the drain does not step aside for alerts
        app.urgency.max_wait_s = 0.0
    tracer = None
    if job.get("trace"):
        from gateway.bench.priority_trace import Tracer, install

        tracer = Tracer()
        install(app, tracer)
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
            _raise(app, raise_one(n), tracer, n)
    else:
        # Raise them while the drain runs and more than 90 % is still queued.
        step = job.get("raise_every") or max(backlog // 100, 1)
        count = 1 if mode == "fifo" else alerts
        for n in range(count):
            target = (n + 1) * step
            while app.forwarder.published < target:
                time.sleep(0.0005)
            depths.append(app.outbox.depth)
            windows.append(app.forwarder.bulk_window.limit)
            rtts.append(round(app.forwarder.bulk_window.min_rtt_s * 1000, 3))
            _raise(app, raise_one(n), tracer, n)
    deadline = time.monotonic() + 600
    if job.get("drain", True):
        while app.outbox.depth and time.monotonic() < deadline:
            time.sleep(0.01)
    else:  # a slow link: stop once the alerts are acknowledged, not after the backlog
        while app.outbox.lane_depths()["alert"] and time.monotonic() < deadline:
            time.sleep(0.01)
    app.stop()
    conn.send(
        {
            "mode": mode,
            "depths": depths,
            "windows": windows,
            "min_rtt_ms": rtts,
            "stepped_aside_ms": round(app.urgency.waited_s * 1000.0, 3),
            "trace": tracer.report() if tracer is not None else None,
        }
    )


def _raise(app: Any, draft: Any, tracer: Any, n: int) -> None:
    if tracer is not None and draft.type == "alert":
        with tracer.lock:
            tracer.stamps.setdefault(n, {})["emit"] = float(draft.data["details"]["emitted"])
    app.emit([draft])


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

    def take(self, kind: str, count: int, timeout: float) -> dict[int, float]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self._lock:
                got = [self.arrivals.get((kind, n)) for n in range(count)]
            if all(v is not None for v in got):
                break
            time.sleep(0.01)
        with self._lock:
            found = {n: self.arrivals.pop((kind, n), None) for n in range(count)}
        return {n: round(v, 3) for n, v in found.items() if v is not None}

    def close(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()


def _with_arrivals(alerts: list[dict[str, Any]], arrivals: dict[int, float]) -> Any:
    """The traced alerts with the consumer's arrival added to their stamps."""
    for alert in alerts:
        stamps = alert["stamps"]
        latency = arrivals.get(alert["n"])
        if latency is not None and "emit" in stamps:
            stamps["arrived"] = stamps["emit"] + latency / 1000.0
    return alerts


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
    "--in-order",
    is_flag=True,
    help="Also measure alerts that the MQTT client writes in order, behind the bulk "
    "packets it has queued (the baseline of the alerts' own write path).",
)
@click.option(
    "--no-step-aside",
    "step_aside_baseline",
    is_flag=True,
    help="Also measure alerts behind the backlog with the drain not stepping aside for "
    "them (gateway.transport.urgency off: the baseline of that mechanism).",
)
@click.option(
    "--batch",
    type=click.Choice(["off", "backlog"]),
    default="off",
    show_default=True,
    help="[outbox] batch of the gateway (compact batches for the backlog).",
)
@click.option(
    "--link-rate",
    default=None,
    metavar="RATE",
    help="Run everything in a network namespace whose uplink (unit <-> broker) is limited "
    "to RATE (tc units: 2mbit, 256kbit); needs root. The backlog is not drained.",
)
@click.option(
    "--raise-every",
    default=None,
    type=click.IntRange(1),
    metavar="EVENTS",
    help="Events published between two alerts of a backlog round [default: backlog / 100].",
)
@click.option(
    "--trace",
    is_flag=True,
    help="Stamp each alert along its path (stored, fetched, published, written, arrived).",
)
@click.option("--inside-netns", is_flag=True, hidden=True)
@json_option
def command(
    *,
    backlog: int,
    alerts: int,
    rounds: int,
    inflight: int,
    order: str,
    fifo: bool,
    in_order: bool,
    step_aside_baseline: bool,
    batch: str,
    link_rate: str | None,
    raise_every: int | None,
    trace: bool,
    inside_netns: bool,
    as_json: bool,
) -> None:
    """Alert latency with a drained backlog next to an empty queue (target: within 2x)."""
    if link_rate is not None and not inside_netns:
        from gateway.bench.slowlink import namespace, run_inside

        argv = [
            "bench", "priority", "--backlog", str(backlog), "--alerts", str(alerts),
            "--rounds", str(rounds), "--inflight", str(inflight), "--order", order,
            "--batch", batch, "--link-rate", link_rate, "--inside-netns",
            *(["--raise-every", str(raise_every)] if raise_every else []),
            *(["--fifo"] if fifo else []), *(["--trace"] if trace else []),
            *(["--in-order"] if in_order else []),
            *(["--no-step-aside"] if step_aside_baseline else []),
            *(["--json"] if as_json else []),
        ]  # fmt: skip
        with namespace(f"gw-bench-{os.getpid()}") as name:
            code = run_inside(name, argv)
        if code:
            raise click.ClickException(f"the bench inside the namespace failed ({code})")
        return
    result = _measure(
        backlog=backlog,
        alerts=alerts,
        rounds=rounds,
        modes=[
            "empty",
            "backlog",
            *(["in_order"] if in_order else []),
            *(["no_step_aside"] if step_aside_baseline else []),
            *(["fifo"] if fifo else []),
        ],
        job_base={
            "backlog": backlog,
            "alerts": alerts,
            "inflight": inflight,
            "order": order,
            "batch": batch,
            "trace": trace,
            "raise_every": raise_every,
            "drain": link_rate is None,
        },
        link_rate=link_rate,
    )
    if as_json:
        print_json(result)
        return
    _print(result)


@contextlib.contextmanager
def _broker(work: Path, link_rate: str | None) -> Iterator[tuple[int, int]]:
    """(consumers' port, unit's port): one port, or a second one shaped to ``link_rate``."""
    from gateway.localservers import Listener, Mosquitto, free_port

    if link_rate is None:
        with local_mosquitto(work) as port:
            yield port, port
        return
    from gateway.bench.slowlink import shape_port

    uplink = free_port()
    with Mosquitto(
        work / "mosquitto",
        max_queued=1_000_000,
        log_types=("error",),
        listeners=(Listener(uplink),),
    ) as broker:
        shape_port(uplink, link_rate)
        yield broker.port, uplink


def _measure(
    *,
    backlog: int,
    alerts: int,
    rounds: int,
    modes: list[str],
    job_base: dict[str, Any],
    link_rate: str | None,
) -> dict[str, Any]:
    load_start = load_1m()
    per_round: list[dict[str, Any]] = []
    link: str | None = None
    with tempfile.TemporaryDirectory(prefix="gateway-bench-") as tmp:
        work = Path(tmp)
        with contextlib.ExitStack() as stack:
            port, uplink = stack.enter_context(_broker(work, link_rate))
            stack.enter_context(subscriber(port, work))
            receiver = _Receiver(port)
            stack.callback(receiver.close)
            for n in range(rounds):
                for mode in modes:
                    job = {
                        **job_base,
                        "mode": mode,
                        "port": uplink,
                        "workdir": str(work / f"{mode}-{n}"),
                    }
                    report = _in_process(gateway_round, job)
                    kind = "fifo" if mode == "fifo" else "alert"
                    count = 1 if mode == "fifo" else alerts
                    arrivals = receiver.take(kind, count, timeout=120)
                    entry = {
                        "round": n,
                        "mode": mode,
                        "latency_ms": [round(v, 2) for v in arrivals.values()],
                        "queued_at_alert": report["depths"],
                        "bulk_window_at_alert": report["windows"],
                        "min_rtt_ms_at_alert": report["min_rtt_ms"],
                        "drain_stepped_aside_ms": report["stepped_aside_ms"],
                    }
                    if report.get("trace") is not None:
                        entry["trace"] = _with_arrivals(report["trace"]["alerts"], arrivals)
                    per_round.append(entry)
            if link_rate is not None:
                from gateway.bench.slowlink import link_stats

                link = link_stats()
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
    others = {
        mode: round(float(summary[mode]["median_ms"]) / float(empty["median_ms"]), 2)
        for mode in modes
        if mode not in ("empty", "backlog")
        and summary[mode].get("median_ms")
        and empty.get("median_ms")
    }
    met = ratio is not None and ratio <= TARGET_RATIO
    result: dict[str, Any] = {
        "backlog": backlog,
        "alerts_per_round": alerts,
        "rounds_count": rounds,
        "modes": modes,
        "inflight": job_base["inflight"],
        "backlog_order": job_base["order"],
        "batch": job_base["batch"],
        "link_rate": link_rate,
        "summary": summary,
        "ratio_backlog_to_empty": ratio,
        "ratio_per_round": pair_ratios,
        "ratio_to_empty_of": others,
        "target_ratio": TARGET_RATIO,
        "target_met": met,
        "load_1m": {"start": load_start, "end": load_1m()},
        "rounds": per_round,
    }
    if link is not None:
        result["link_qdisc"] = link
    if job_base["trace"]:
        from gateway.bench.priority_trace import stage_table

        result["trace"] = {
            mode: stage_table([a for r in per_round if r["mode"] == mode for a in r["trace"]])
            for mode in modes
            if mode != "fifo"
        }
    result["verdict"] = _verdict(result)
    return result


def _verdict(result: dict[str, Any]) -> str:
    ratio = result["ratio_backlog_to_empty"]
    summary = result["summary"]
    if ratio is None:
        return "verdict: NO FIGURE (alerts did not arrive)"
    where = f"link {result['link_rate']}" if result["link_rate"] else "loopback"
    return (
        f"verdict: {'MET' if result['target_met'] else 'NOT MET'}: backlog / empty = "
        f"{ratio:.2f} (target <= {TARGET_RATIO:g}); backlog median "
        f"{summary['backlog']['median_ms']:.2f} ms, empty {summary['empty']['median_ms']:.2f} ms; "
        f"{where}, batch {result['batch']}, load {result['load_1m']['start']} -> "
        f"{result['load_1m']['end']}"
    )


def _print(result: dict[str, Any]) -> None:
    modes, summary, per_round = result["modes"], result["summary"], result["rounds"]
    load = result["load_1m"]
    click.echo(
        f"alert latency (emit -> alert consumer), {result['rounds_count']} round(s) interleaved "
        f"({' '.join(modes)}), {result['alerts_per_round']} alert(s) each, backlog "
        f"{result['backlog']:,} sensor readings, in-flight window {result['inflight']}, "
        f"{result['backlog_order']}, batch {result['batch']}, "
        f"{'uplink ' + result['link_rate'] if result['link_rate'] else 'loopback'}; "
        f"load {load['start']} -> {load['end']}"
    )
    for mode in modes:
        s = summary[mode]
        if not s.get("n"):
            click.echo(f"  {mode:<13}: no arrivals")
            continue
        queued = [d for r in per_round if r["mode"] == mode for d in r["queued_at_alert"]]
        click.echo(
            f"  {mode:<13}: median {s['median_ms']:>9.2f} ms  min {s['min_ms']:.2f}  "
            f"p90 {s['p90_ms']:.2f}  max {s['max_ms']:.2f}  (n {s['n']}, queued at raise "
            f"{min(queued):,}..{max(queued):,})"
        )
    click.echo(
        f"  ratio   : backlog / empty = {result['ratio_backlog_to_empty']} "
        f"(target <= {TARGET_RATIO:g}); per round {result['ratio_per_round']}"
    )
    for mode, value in result["ratio_to_empty_of"].items():
        click.echo(f"  ratio   : {mode} / empty = {value}")
    for mode, table in result.get("trace", {}).items():
        stages = "  ".join(f"{k} +{v:.3f}" for k, v in table["stage_median_ms"].items())
        busy = "  ".join(f"{k} {v:.3f}" for k, v in table["busy_median_ms"].items())
        click.echo(f"  trace {mode:<8}: stage medians ms: {stages}")
        click.echo(f"  trace {mode:<8}: busy between emit and write, medians ms: {busy}")
    click.echo(result["verdict"])
