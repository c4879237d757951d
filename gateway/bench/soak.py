"""``gateway bench soak``: memory of ``gateway run`` and ``gateway ingest`` over a long run.

One local Mosquitto and one VictoriaMetrics (temporary directories, free loopback ports),
one ``gateway run`` subprocess emitting synthetic ``sensor_reading`` events at ``--rate``
events/s (plus a health event every ``--sample-every`` seconds) and one ``gateway ingest``
subprocess writing them to the database. The RSS of both subprocesses is sampled every
``--sample-every`` seconds. At the end the gateway gets SIGTERM, the ingest drains, and
every seq the gateway's outbox allocated is looked up in the database.

Memory is judged on the samples after ``--warmup``: RSS at start and end, the maximum,
the least-squares slope in MiB/hour, and, as each process's own baseline, its noise
(max - min of those samples). A slope times the run's length well inside the noise is
flat; a leak shows as a slope whose growth over the run exceeds it.
"""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import click

from gateway.bench.ingest_procs import start_servers
from gateway.localservers import VictoriaMetrics, end_process
from gateway.output import json_option, print_json

GATEWAY = "rsu-soak"
SITE = "bench"
# Every event of the gateway carries its seq in one of these series (docs/ingest.md).
# The unit's events in the soak: sensor readings, health and the delivery ledger's manifests
# (one at least, at the clean stop: it takes a seq like any event).
SEQ_SERIES = ("sensor_seq", "gateway_health_seq", "ledger_manifest_seq")
_MIB = 2**20


def _configs(work: Path, port: int, url: str, rate: float, every: float) -> tuple[Path, Path]:
    """Write the gateway's and the ingest's TOML configs; return their paths."""
    from gateway.config.patch import to_toml

    mqtt = {"host": "127.0.0.1", "port": port, "reconnect_min_s": 1, "reconnect_max_s": 2}
    gateway: dict[str, Any] = {
        "gateway": {"id": GATEWAY, "site": SITE, "data_dir": str(work / "gateway")},
        "mqtt": mqtt,
        "events": {"synthetic_events_per_s": rate, "health_interval_s": every},
    }
    ingest: dict[str, Any] = {
        "gateway": {"data_dir": str(work / "ingest")},
        "mqtt": mqtt,
        "ingest": {
            "share_group": "soak",
            "stats_interval_s": every,
            "influx": {"url": url, "token": "bench", "batch_size": 1000, "flush_interval_s": 0.5},
        },
    }
    paths = (work / "gateway.toml", work / "ingest.toml")
    for path, data in zip(paths, (gateway, ingest), strict=True):
        path.write_text(to_toml(data))
    return paths


def _spawn(args: list[str], log: Path) -> subprocess.Popen[bytes]:
    with log.open("ab") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "gateway", *args], stdout=out, stderr=subprocess.STDOUT
        )


def _tail(log: Path, chars: int = 2000) -> str:
    return log.read_text(errors="replace")[-chars:] if log.exists() else ""


def _wait_log(proc: subprocess.Popen[bytes], log: Path, text: str, timeout: float) -> None:
    """Wait until ``text`` appears in ``log``; fail with the log's tail if the process exits."""
    deadline = time.monotonic() + timeout
    while text not in _tail(log, 1_000_000):
        if proc.poll() is not None or time.monotonic() > deadline:
            raise click.ClickException(f"no {text!r} in {log.name}:\n{_tail(log)}")
        time.sleep(0.1)


def trend(samples: list[tuple[float, float]]) -> dict[str, Any]:
    """Figures of (seconds, MiB) samples: start, end, max, noise and least-squares slope."""
    if not samples:
        raise click.ClickException("no RSS sample after the warm-up; run longer")
    values = [v for _, v in samples]
    n = len(samples)
    mean_t = sum(t for t, _ in samples) / n
    mean_v = sum(values) / n
    var_t = sum((t - mean_t) ** 2 for t, _ in samples)
    cov = sum((t - mean_t) * (v - mean_v) for t, v in samples)
    slope = cov / var_t * 3600 if var_t > 0 else 0.0
    span_h = (samples[-1][0] - samples[0][0]) / 3600
    return {
        "start_mib": round(values[0], 1),
        "end_mib": round(values[-1], 1),
        "max_mib": round(max(values), 1),
        "noise_mib": round(max(values) - min(values), 1),
        "slope_mib_per_h": round(slope, 2),
        "growth_over_run_mib": round(slope * span_h, 2),
        "samples": n,
    }


def seqs_in_db(db: VictoriaMetrics) -> dict[str, set[int]]:
    """The distinct seq values of the gateway's events in the database, per series."""
    found: dict[str, set[int]] = {name: set() for name in SEQ_SERIES}
    names = "|".join(SEQ_SERIES)
    for row in db.export(f'{{__name__=~"{names}",gateway="{GATEWAY}"}}'):
        found[row["metric"]["__name__"]].update(int(v) for v in row["values"])
    return found


def _outbox(db: Path) -> dict[str, int]:
    """last_seq, depth (events not yet acknowledged) and dropped of a stopped gateway."""
    con = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        meta = dict(con.execute("SELECT key, value FROM meta").fetchall())
        (depth,) = con.execute("SELECT count(*) FROM events").fetchone()
    finally:
        con.close()
    return {"last_seq": int(meta["last_seq"]), "depth": int(depth), "dropped": int(meta["dropped"])}


def _health_depths(db: VictoriaMetrics) -> list[float]:
    rows = db.export(f'{{__name__="gateway_health_outbox_depth",gateway="{GATEWAY}"}}')
    return [float(v) for row in rows for v in row["values"]]


def _drain(db: VictoriaMetrics, last_seq: int, timeout: float) -> dict[str, set[int]]:
    """Poll the database until every seq is there or nothing new arrived for ``timeout`` s."""
    found = seqs_in_db(db)
    count, changed = -1, time.monotonic()
    while len(set().union(*found.values()) - {0}) < last_seq:
        now_count = sum(len(s) for s in found.values())
        if now_count != count:
            count, changed = now_count, time.monotonic()
        elif time.monotonic() - changed > timeout:
            break
        time.sleep(1.0)
        found = seqs_in_db(db)
    return found


def _stop(proc: subprocess.Popen[bytes], timeout: float = 30.0) -> int | None:
    return end_process(proc, timeout=timeout)


def soak(seconds: float, rate: float, every: float, warmup: float, work: Path) -> dict[str, Any]:
    """Run the soak in ``work``; return the figures."""
    import psutil

    broker, database = start_servers(work, int(rate * seconds) + 10_000)
    gateway_conf, ingest_conf = _configs(work, broker.port, database.url, rate, every)
    procs: list[subprocess.Popen[bytes]] = []
    logs = {"gateway": work / "gateway.log", "ingest": work / "ingest.log"}
    samples: dict[str, list[tuple[float, float]]] = {"gateway": [], "ingest": []}
    try:
        ingest = _spawn(["ingest", "-c", str(ingest_conf), "--worker", "soak-a"], logs["ingest"])
        procs.append(ingest)
        _wait_log(ingest, logs["ingest"], ", subscribed to ", 60)
        time.sleep(1.0)  # the subscription is on its way; the gateway takes longer to start
        gateway = _spawn(["run", "-c", str(gateway_conf)], logs["gateway"])
        procs.append(gateway)
        watched = {"gateway": psutil.Process(gateway.pid), "ingest": psutil.Process(ingest.pid)}
        start = time.monotonic()
        next_sample = start
        while (now := time.monotonic()) - start < seconds:
            for name, proc in (("gateway", gateway), ("ingest", ingest)):
                if proc.poll() is not None:
                    raise click.ClickException(f"{name} exited early:\n{_tail(logs[name])}")
            if now >= next_sample:
                for name, watch in watched.items():
                    samples[name].append((now - start, watch.memory_info().rss / _MIB))
                next_sample += every
            time.sleep(min(0.5, max(0.0, next_sample - time.monotonic())))
        elapsed = time.monotonic() - start
        gateway_rc = _stop(gateway)
        outbox = _outbox(work / "gateway" / "outbox.sqlite3")
        found = _drain(database, outbox["last_seq"], timeout=30.0)
        depths = _health_depths(database)
        ingest_rc = _stop(ingest)
    finally:
        for proc in procs:
            _stop(proc, 10)
        broker.stop()
        database.stop()
    seqs = set().union(*found.values()) - {0}
    missing = sorted(set(range(1, outbox["last_seq"] + 1)) - seqs)
    stats = [ln for ln in _tail(logs["ingest"], 20_000).splitlines() if "stopped:" in ln]
    return {
        "benchmark": "soak",
        "seconds": round(elapsed, 1),
        "rate": rate,
        "sample_every_s": every,
        "warmup_s": warmup,
        "events_produced": outbox["last_seq"],
        "produced_per_s": round(outbox["last_seq"] / elapsed, 1),
        "events_in_db": len(seqs),
        "sensor_readings_in_db": len(found["sensor_seq"]),
        "health_in_db": len(found["gateway_health_seq"]),
        "manifests_in_db": len(found["ledger_manifest_seq"]),
        "missing": len(missing),
        "missing_first": missing[:20],
        "outbox": {
            "depth_after_stop": outbox["depth"],
            "dropped": outbox["dropped"],
            "depth_last_health": depths[-1] if depths else None,
            "depth_max_health": max(depths) if depths else None,
        },
        "exit_codes": {"gateway": gateway_rc, "ingest": ingest_rc},
        "ingest_stats": stats[-1].split("stopped:", 1)[1].strip() if stats else None,
        "rss": {
            name: {
                **trend([s for s in points if s[0] >= warmup]),
                "all_samples_mib": [round(v, 1) for _, v in points],
            }
            for name, points in samples.items()
        },
    }


def _print(result: dict[str, Any]) -> None:
    click.echo(
        f"soak: {result['seconds']:.0f} s at {result['rate']:g} synthetic events/s, RSS every "
        f"{result['sample_every_s']:g} s, figures after a {result['warmup_s']:g} s warm-up"
    )
    click.echo(
        f"  events produced (last seq) {result['events_produced']:>9}"
        f"   ({result['produced_per_s']:.1f}/s)"
    )
    click.echo(
        f"  events in the database     {result['events_in_db']:>9}"
        f"   (sensor {result['sensor_readings_in_db']}, health {result['health_in_db']}, "
        f"missing {result['missing']})"
    )
    box = result["outbox"]
    click.echo(
        f"  outbox depth               last health {box['depth_last_health']}, "
        f"max health {box['depth_max_health']}, after stop {box['depth_after_stop']}, "
        f"dropped {box['dropped']}"
    )
    click.echo(
        f"  {'RSS MiB':<14}{'start':>8}{'end':>8}{'max':>8}{'noise':>8}"
        f"{'slope MiB/h':>13}{'growth/run':>12}{'samples':>9}"
    )
    for name, fig in result["rss"].items():
        click.echo(
            f"  {name:<14}{fig['start_mib']:>8.1f}{fig['end_mib']:>8.1f}{fig['max_mib']:>8.1f}"
            f"{fig['noise_mib']:>8.1f}{fig['slope_mib_per_h']:>13.2f}"
            f"{fig['growth_over_run_mib']:>12.2f}{fig['samples']:>9}"
        )
    click.echo("  noise = max - min after the warm-up: the baseline a growth must exceed")


@click.command("soak")
@click.option("--seconds", type=click.FloatRange(5), default=600, show_default=True)
@click.option(
    "--rate", type=click.FloatRange(1, 100_000), default=500, show_default=True, help="Events/s."
)
@click.option(
    "--sample-every",
    "every",
    type=click.FloatRange(0.5),
    default=10,
    show_default=True,
    help="Seconds between RSS samples (also the health and ingest stats interval).",
)
@click.option(
    "--warmup",
    type=click.FloatRange(0),
    default=30,
    show_default=True,
    help="Seconds of samples left out of start/slope/noise.",
)
@json_option
def command(*, seconds: float, rate: float, every: float, warmup: float, as_json: bool) -> None:
    """Memory of `gateway run` and `gateway ingest` under a steady event stream."""
    if warmup >= seconds:
        raise click.UsageError("--warmup must be shorter than --seconds")
    with tempfile.TemporaryDirectory(prefix="bench-soak-") as tmp:
        result = soak(seconds, rate, every, warmup, Path(tmp))
    if as_json:
        print_json(result)
    else:
        _print(result)
