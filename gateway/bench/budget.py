"""``gateway bench budget``: bytes on the wire per hour of a busy roadside unit.

The scene (:mod:`gateway.budget.traffic`): a two-line camera on a busy road (2,400
crossings an hour, an aggregate a minute) and two sensors (a particle sensor and a
weather station, a reading every 10 s each), ``--hours`` of it. Each measurement runs a
unit (:class:`~gateway.app.App`, in its own process) against one local Mosquitto with a
``mosquitto_sub`` taking everything: the scene is stored as a backlog (the unit was
offline), the unit connects and sends it, and the figure is what the unit's MQTT link
counted on the wire (both directions: every PUBLISH whole, PUBACKs, CONNECT, ...) once
the outbox is empty, minus an idle unit's bytes (connect, birth, subscription, the start
health), per simulated hour. Modes, interleaved and rotated per round:

* ``json``: one JSON message per event (``[outbox] batch = "off"``, the default);
* ``compact``: compact batches (``batch = "backlog"``, zlib'd JSON arrays);
* ``degraded``: one message per event, the byte budget at its last level
  (crossings held for their aggregates, readings summarized every 15 min);
* ``degraded_compact``: both;
* ``negotiated``: ``batch = "negotiate"`` with a retained declaration of every bulk type
  on the broker (as an ingest leaves it): what the negotiation costs on top of
  ``compact`` (the subscription, the declaration, the events sent one by one before
  it arrives).
"""

from __future__ import annotations

import contextlib
import json
import shutil
import statistics
import subprocess
import tempfile
import time
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any, Final

import click

from gateway.bench.load import load_1m
from gateway.bench.outbox import _in_process, local_mosquitto, subscriber
from gateway.output import json_option, print_json

MODES: Final = ("json", "compact", "degraded", "degraded_compact", "negotiated")
_BATCH: Final = {"compact": "backlog", "degraded_compact": "backlog", "negotiated": "negotiate"}
_LIMIT: Final = 64 * 1024


def _settings(port: int, workdir: Path, mode: str) -> Any:
    from gateway.config.settings import validate_settings

    data: dict[str, Any] = {
        "gateway": {"id": "rsu-bench", "site": "bench", "data_dir": str(workdir)},
        "mqtt": {"host": "127.0.0.1", "port": port, "reconnect_min_s": 0.2},
        "events": {"health_interval_s": 86_400},
        "outbox": {"batch": _BATCH.get(mode, "off")},
    }
    if mode.startswith("degraded"):
        # A day's budget already used up (the usage file says so): the last level at once.
        day = time.strftime("%Y-%m-%d", time.gmtime())
        usage = {"day": day, "day_bytes": _LIMIT, "month": day[:7], "month_bytes": _LIMIT}
        workdir.mkdir(parents=True, exist_ok=True)
        (workdir / "budget.json").write_text(json.dumps(usage))
        data["budget"] = {"bytes_per_day": _LIMIT, "sensor_interval_s": 900}
    return validate_settings(data)


def run_unit(job: dict[str, Any], conn: Connection) -> None:
    """One measurement (in a child process): store the scene, connect, drain, count."""
    from gateway.app import App
    from gateway.budget.traffic import Scene, Truth, scene_drafts

    mode, hours = job["mode"], float(job["hours"])
    app = App(_settings(job["port"], Path(job["workdir"]), mode))
    if app.budget is not None:
        app.store_budget_step(app.budget.tick(0))  # the used-up day: level coarse_sensors
    truth = Truth()
    start = time.time() - hours * 3600 - 60
    if hours > 0:
        for drafts in scene_drafts(Scene(), start, hours * 3600, truth):
            app.emit(drafts)
        if app.budget is not None:
            app.store_budget_step(app.budget.flush())
    stored = app.outbox.depth
    stored_bytes = app.outbox.size_bytes
    began = time.monotonic()
    app.start()
    try:
        deadline = time.monotonic() + 600
        while (app.outbox.depth or app.forwarder.inflight) and time.monotonic() < deadline:
            time.sleep(0.02)
        drained_s = time.monotonic() - began
        time.sleep(0.3)  # the last PUBACKs read
        sent, received = app.link.wire_bytes()
        ip_sent, ip_received = app.link.ip_bytes()
        result = {
            "mode": mode,
            "events": stored,
            "crossings": truth.total_crossings,
            "readings": sum(truth.readings.values()),
            "stored_bytes": stored_bytes,
            "wire_sent": sent,
            "wire_received": received,
            "ip_sent": ip_sent,
            "ip_received": ip_received,
            "batches": app.forwarder.batches,
            "events_published": app.forwarder.published,
            "drain_s": round(drained_s, 3),
            "left": app.outbox.depth,
        }
    finally:
        app.stop()
    conn.send(result)
    conn.close()


def _declare(port: int) -> None:
    """Leave a retained declaration of every event type on the broker (``negotiated``)."""
    from gateway.events.capabilities import encode_declaration
    from gateway.events.envelope import EVENT_TYPES, format_ts
    from gateway.events.topics import capabilities_topic

    binary = shutil.which("mosquitto_pub")
    if binary is None:
        raise click.ClickException("mosquitto_pub is not installed (mosquitto-clients)")
    payload = encode_declaration(
        "bench", "city", format_ts(time.time()), EVENT_TYPES, max_bytes=4 << 20, max_events=10_000
    )
    topic = capabilities_topic("city", "bench")
    subprocess.run(
        [binary, "-h", "127.0.0.1", "-p", str(port), "-t", topic, "-r", "-q", "1", "-s"],
        input=payload,
        check=True,
        timeout=30,
    )


def _per_hour(
    run: dict[str, Any], idle: dict[str, Any], hours: float, layer: str = "wire"
) -> float:
    total = run[f"{layer}_sent"] + run[f"{layer}_received"]
    base = idle[f"{layer}_sent"] + idle[f"{layer}_received"]
    return float(total - base) / hours


@click.command("budget")
@click.option("--hours", default=1.0, show_default=True, type=click.FloatRange(0.05, 48))
@click.option("--rounds", default=3, show_default=True, type=click.IntRange(1, 20))
@click.option("--port", type=int, default=None, help="Use this broker (it needs no subscriber).")
@json_option
def command(hours: float, rounds: int, port: int | None, as_json: bool) -> None:
    """Bytes per hour of a busy two-line camera and two sensors: JSON vs compact, degraded."""
    load_start = load_1m()
    runs: dict[str, list[dict[str, Any]]] = {mode: [] for mode in MODES}
    per_hour: dict[str, list[float]] = {mode: [] for mode in MODES}
    ip_per_hour: dict[str, list[float]] = {mode: [] for mode in MODES}
    with tempfile.TemporaryDirectory(prefix="gateway-bench-budget-") as tmp:
        work = Path(tmp)
        with contextlib.ExitStack() as stack:
            if port is None:
                port = stack.enter_context(local_mosquitto(work))
            stack.enter_context(subscriber(port, work))
            _declare(port)
            for n in range(rounds):
                idle = _in_process(
                    run_unit,
                    {"mode": "json", "hours": 0, "port": port, "workdir": str(work / f"idle-{n}")},
                )
                order = MODES[n % len(MODES) :] + MODES[: n % len(MODES)]
                for mode in order:
                    job = {
                        "mode": mode,
                        "hours": hours,
                        "port": port,
                        "workdir": str(work / f"{mode}-{n}"),
                    }
                    run = _in_process(run_unit, job)
                    if run["left"]:
                        raise click.ClickException(f"{mode}: {run['left']} events not sent")
                    runs[mode].append(run)
                    per_hour[mode].append(_per_hour(run, idle, hours))
                    ip_per_hour[mode].append(_per_hour(run, idle, hours, "ip"))
    medians = {mode: statistics.median(values) for mode, values in per_hour.items()}
    ip_medians = {mode: statistics.median(values) for mode, values in ip_per_hour.items()}
    json_h = medians["json"]
    ratios = {m: round(v / json_h, 4) for m, v in medians.items()}
    per_month = {m: round(v * 24 * 30 / 1e6, 1) for m, v in medians.items()}
    events = {m: round(runs[m][0]["events"] / hours) for m in MODES}
    batches = {m: int(runs[m][0]["batches"]) for m in MODES}
    result: dict[str, Any] = {
        "hours": hours,
        "scene": "2 lines, 2400 crossings/h, aggregates every 60 s, 2 sensors every 10 s",
        "bytes_per_hour": {m: round(v) for m, v in medians.items()},
        # What a plan bills: MQTT with the TCP/IP headers of every segment (plain TCP here)
        "ip_bytes_per_hour": {m: round(v) for m, v in ip_medians.items()},
        "per_round": {m: [round(v) for v in values] for m, values in per_hour.items()},
        "ratio_to_json": ratios,
        "mb_per_month": per_month,
        "events_per_hour": events,
        "batches": batches,
        "load_1m": {"start": load_start, "end": load_1m()},
        "runs": runs,
    }
    if as_json:
        print_json(result)
        return
    click.echo(
        f"{hours:g} h of scene ({result['scene']}), {rounds} round(s) rotated, medians;"
        f" load {load_start} -> {result['load_1m']['end']}"
    )
    for mode in MODES:
        values = per_hour[mode]
        click.echo(
            f"  {mode:<17}: {medians[mode]:>12,.0f} B/h  ({ratios[mode]:.1%} of json,"
            f" {per_month[mode]:,.1f} MB/month; IP layer {ip_medians[mode]:,.0f} B/h;"
            f" {events[mode]:,} events/h,"
            f" {batches[mode]} batches; rounds {min(values):,.0f} .. {max(values):,.0f})"
        )
