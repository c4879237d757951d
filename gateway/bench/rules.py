"""Local rules benchmark: frame -> actuator write latency next to frame -> event latency.

Each round runs the real gateway (:class:`gateway.app.App`, no MQTT broker at all) on
the simulated road camera in real time with the demo detector. The candidate rounds
add ``[[rules]]``: one coil per vehicle lane (``zone_occupancy`` of a zone on the lane)
and a pedestrian beacon (``pedestrian_in_roadway`` on a sidewalk zone), all on one
simulated Modbus RTU relay board behind a socat pty (``simulators/sensors/relay.py``,
115200 baud, so the outputs share one bus). Baseline rounds are the same gateway
without rules. Rounds are interleaved (A B A B ...).

Figures per round:

* ``event_p50_ms`` / ``event_p99_ms``: the camera runner's frame -> events-handed-over
  latency (capture to after the sink returned: analytics, the rules' feed and the outbox
  write), as ``health`` reports it;
* ``write_p50_ms`` / ``write_p99_ms`` (candidate): frame timestamp -> the device's
  confirmation of each output switching ON (the actuation events' ``latency_ms``);
* ``device_p50_ms`` / ``device_p99_ms``: frame timestamp -> the write's arrival at the
  relay board, on the board's own clock (the same machine's wall clock).

The target is ``write_p99_ms`` within 50 ms of ``event_p99_ms``. Switch-off writes are
left out of the headline: a zone exit is stamped with the track's last sighting, up to
the tracker's ``max_age_s`` earlier, so their latency measures the tracker, not the
rules. The load average is printed with every round (the machine is shared).
"""

from __future__ import annotations

import json
import os
import sqlite3
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import click

from gateway.bench.load import load_1m
from gateway.config.patch import to_toml
from gateway.localservers import free_port
from gateway.output import json_option, print_json
from gateway.vision.analytics.stats import percentile

LANES = (0.555, 0.640, 0.720, 0.800)  # ground y of the simulator's vehicle lanes
VEHICLES = ["car", "truck", "bus", "motorcycle"]
SIDEWALK = [[0.08, 0.86], [0.30, 0.86], [0.30, 0.99], [0.08, 0.99]]
BEACON = len(LANES)  # coil of the pedestrian beacon


def _zone(lane: float) -> list[list[float]]:
    return [[0.42, lane - 0.03], [0.58, lane - 0.03], [0.58, lane + 0.03], [0.42, lane + 0.03]]


def settings(data_dir: Path, relay_port: str, mqtt_port: int, *, rules: bool, seed: int,
             density: float) -> dict[str, Any]:  # fmt: skip
    """The gateway's settings for one round."""
    from gateway.demo.scenario import detector_config

    zones: list[dict[str, Any]] = [
        {"id": f"lane-{i}", "points": _zone(y), "classes": VEHICLES} for i, y in enumerate(LANES)
    ]
    zones.append({"id": "walk", "points": SIDEWALK, "roadway": True, "classes": ["person"]})
    common = {"port": relay_port, "baud": 115200, "timeout_s": 0.5, "max_changes_per_min": 600}
    data: dict[str, Any] = {
        "gateway": {"id": "bench-rules", "site": "bench", "data_dir": str(data_dir)},
        "logging": {"level": "warning"},
        "detector": detector_config().model_dump(mode="json"),
        "cameras": [{
            "id": "cam",
            "source": {"type": "simulator", "seed": seed, "density": density, "realtime": True},
            "zones": zones,
        }],
        "mqtt": {"host": "127.0.0.1", "port": mqtt_port, "reconnect_max_s": 5},
        "events": {"health_interval_s": 3600},
    }  # fmt: skip
    if rules:
        data["rules"] = [
            {"id": f"lane-{i}", "max_latency_ms": 500,
             "trigger": {"type": "zone_occupancy", "camera": "cam", "zone": f"lane-{i}"},
             "actions": [{"type": "modbus_coil", "address": i, "fail_safe": False,
                          "hold_s": 0, **common}]}
            for i in range(len(LANES))
        ] + [
            {"id": "ped-beacon", "max_latency_ms": 500,
             "trigger": {"type": "alert", "kind": "pedestrian_in_roadway", "camera": "cam",
                         "zone": "walk"},
             "actions": [{"type": "modbus_coil", "address": BEACON, "fail_safe": False,
                          "hold_s": 1.0, **common}]},
        ]  # fmt: skip
    return data


def _pct(values: list[float], q: float) -> float | None:
    p = percentile(values, q)
    return None if p is None else round(p, 1)


def run_round(seconds: float, *, rules: bool, seed: int, density: float) -> dict[str, Any]:
    """One round of the gateway on the simulated camera; latencies in ms."""
    from gateway.app import App
    from gateway.config.settings import validate_settings
    from gateway.events.envelope import parse_ts
    from simulators.sensors.relay import RelayBoard

    relay = RelayBoard(size=8).start()
    load_before = load_1m()
    with tempfile.TemporaryDirectory(prefix="bench-rules-") as tmp:
        data = settings(Path(tmp) / "data", relay.path, free_port(), rules=rules, seed=seed,
                        density=density)  # fmt: skip
        (Path(tmp) / "gateway.toml").write_text(to_toml(data))  # what `gateway run` would read
        app = App(validate_settings(data))
        try:
            app.start()
            time.sleep(seconds)
            health = app.cameras["cam"].health()
        finally:
            app.stop()
            relay.stop()
        actuations = _actuations(Path(tmp) / "data" / "outbox.sqlite3")
    on = [a for a in actuations if a["state"] == "active" and a["outcome"] == "ok"]
    write_ms = [float(a["latency_ms"]) for a in on]
    device_ms: list[float] = []
    for coil in range(BEACON + 1):
        arrivals = [w.wall for w in relay.coil_writes(coil) if w.value == 1]
        rule = "ped-beacon" if coil == BEACON else f"lane-{coil}"
        events = [a for a in on if a["rule"] == rule]
        # the n-th switch-on the board saw is the n-th confirmed one (a failed write is
        # retried until it lands, so the lists only differ by a write still on the wire)
        pairs = zip(arrivals, events, strict=False)
        device_ms += [(wall - parse_ts(a["trigger_ts"])) * 1000 for wall, a in pairs]
    return {
        "rules": rules,
        "seconds": seconds,
        "frames": health.pipeline.frames,
        "processed_fps": health.processed_fps,
        "event_p50_ms": health.event_latency_p50_ms,
        "event_p99_ms": health.event_latency_p99_ms,
        "frame_p50_ms": health.frame_latency_p50_ms,
        "switch_on_writes": len(write_ms),
        "write_p50_ms": _pct(write_ms, 50),
        "write_p99_ms": _pct(write_ms, 99),
        "write_max_ms": round(max(write_ms), 1) if write_ms else None,
        "device_p50_ms": _pct(device_ms, 50),
        "device_p99_ms": _pct(device_ms, 99),
        "late": sum(1 for a in on if a["late"]),
        "failed": sum(1 for a in actuations if a["outcome"] != "ok"),
        "load_1m_before": load_before,
        "load_1m_after": load_1m(),
    }


def _actuations(path: Path) -> list[dict[str, Any]]:
    db = sqlite3.connect(path)
    try:
        rows = db.execute("SELECT payload FROM events ORDER BY seq").fetchall()
    finally:
        db.close()
    events = [json.loads(row[0]) for row in rows]
    return [e["data"] for e in events if e["type"] == "actuation"]


def summarize(rounds: list[dict[str, Any]]) -> dict[str, Any]:
    """Medians and spread of the per-round figures, baseline and candidate."""
    out: dict[str, Any] = {}
    for name, rows in (("baseline", [r for r in rounds if not r["rules"]]),
                       ("rules", [r for r in rounds if r["rules"]])):  # fmt: skip
        summary: dict[str, Any] = {"rounds": len(rows)}
        for key in ("event_p50_ms", "event_p99_ms", "write_p50_ms", "write_p99_ms",
                    "device_p50_ms", "device_p99_ms", "processed_fps"):  # fmt: skip
            values = [float(r[key]) for r in rows if r.get(key) is not None]
            if values:
                summary[key] = round(statistics.median(values), 1)
                summary[f"{key}_spread"] = [round(min(values), 1), round(max(values), 1)]
        summary["switch_on_writes"] = sum(int(r.get("switch_on_writes") or 0) for r in rows)
        out[name] = summary
    gaps = [
        round(float(r["write_p99_ms"]) - float(r["event_p99_ms"]), 1)
        for r in rounds
        if r["rules"] and r.get("write_p99_ms") is not None and r.get("event_p99_ms") is not None
    ]
    if gaps:  # compared within each round: both latencies under the same load
        out["write_minus_event_p99_ms"] = gaps
        out["target_met"] = max(gaps) <= 50.0
    return out


@click.command("rules")
@click.option(
    "--rounds",
    type=click.IntRange(1, 10),
    default=2,
    show_default=True,
    help="Rounds of each kind (interleaved: baseline, rules, baseline, ...).",
)
@click.option(
    "--seconds",
    type=click.FloatRange(5, 3600),
    default=30.0,
    show_default=True,
    help="Length of one round (real time).",
)
@click.option("--density", type=click.FloatRange(0.1, 5), default=2.0, show_default=True)
@click.option("--seed", type=int, default=9, show_default=True)
@json_option
def command(rounds: int, seconds: float, density: float, seed: int, as_json: bool) -> None:
    """Frame -> actuator write latency (p50/p99) next to frame -> event latency."""
    import logging

    logging.getLogger("gateway").setLevel(logging.WARNING)  # rule changes are logged at info
    results = []
    for i in range(rounds):
        for with_rules in (False, True):
            row = run_round(seconds, rules=with_rules, seed=seed + i, density=density)
            results.append(row)
            if not as_json:
                kind = "rules   " if with_rules else "baseline"
                click.echo(
                    f"round {i + 1} {kind}: event p50/p99 {row['event_p50_ms']}/"
                    f"{row['event_p99_ms']} ms; write p50/p99 {row['write_p50_ms']}/"
                    f"{row['write_p99_ms']} ms ({row['switch_on_writes']} switch-ons, device "
                    f"p50/p99 {row['device_p50_ms']}/{row['device_p99_ms']} ms); "
                    f"{row['processed_fps']} fps; load {row['load_1m_before']} -> "
                    f"{row['load_1m_after']} ({os.cpu_count()} cores)"
                )
    summary = summarize(results)
    if as_json:
        print_json({"benchmark": "rules", "cores": os.cpu_count(), "rounds": results,
                    "summary": summary})  # fmt: skip
        return
    base, cand = summary["baseline"], summary["rules"]
    click.echo(
        f"median event p99: baseline {base.get('event_p99_ms')} ms, with rules "
        f"{cand.get('event_p99_ms')} ms; write p99 {cand.get('write_p99_ms')} ms "
        f"(p50 {cand.get('write_p50_ms')} ms) over {cand['switch_on_writes']} switch-ons; "
        f"write - event p99 per round = {summary.get('write_minus_event_p99_ms')} ms "
        f"(target <= 50 in every round: {summary.get('target_met')})"
    )
