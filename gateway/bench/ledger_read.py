"""``gateway bench ledger-read``: what the audit's read-back costs, per reader, at scale.

Fills a real VictoriaMetrics and a real InfluxDB 1.6 (:mod:`gateway.localservers`)
with the receipts and manifests of ``--units`` units at ``--rate`` events a second for
``--hours`` (the ingest's own point builders: :func:`gateway.ingest.receipts.receipt`,
:func:`gateway.ingest.receipts.map_manifest`), then runs the real audit command
(``gateway ingest audit --no-write --json``, a child process each time) over the window
with each reader, interleaved (VM, InfluxQL, VM, ...): wall time, CPU and peak RSS of
the audit process, and the servers' own peak RSS. Next to each, the baseline of the
same run: only downloading the reader's answers (the same requests, bytes thrown away),
what no reader can go below. Each audit must find every unit ``complete``.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Final

import click

from gateway.bench.load import describe_load, load_1m
from gateway.config.ingest import InfluxConfig
from gateway.ingest.audit import DAY_MS
from gateway.ingest.database import Database
from gateway.ingest.ledger_influxql import InfluxQLReader
from gateway.ingest.ledger_vm import VictoriaMetricsReader
from gateway.ingest.points import point_time_ns, to_line
from gateway.ingest.receipts import map_manifest, receipt
from gateway.localservers import InfluxDB, VictoriaMetrics
from gateway.output import json_option, print_json
from gateway.transport.ledger import ZERO_CHAIN, chain_over

_BATCH: Final = 5000
_SITE: Final = "bench"
LedgerReader = VictoriaMetricsReader | InfluxQLReader


def _unit_lines(
    unit: str, start_ms: int, rate: float, seconds: float, interval_s: float
) -> Iterator[list[str]]:
    """Line-protocol lines of one unit's receipts and manifests, in batches."""
    per = max(int(rate * interval_s), 1)
    step_ms = 1000.0 / rate
    seq, chain = 1, ZERO_CHAIN
    batch: list[str] = []
    for k in range(int(seconds // interval_s)):
        first = seq
        ids: list[str] = []
        for i in range(per):
            ts_ms = start_ms + int((k * per + i) * step_ms)
            event_id = f"{hash((unit, seq)) & (2**128 - 1):032x}"
            ids.append(event_id)
            kind = "manifest" if k and i == 0 else "sensor_reading"
            event = {"seq": seq, "id": event_id, "gateway": unit, "site": _SITE, "type": kind}
            batch.append(to_line(receipt(event, point_time_ns(ts_ms, seq))))
            seq += 1
            if len(batch) >= _BATCH:
                yield batch
                batch = []
        end = chain_over(chain, ids)
        data: dict[str, Any] = {
            "first_seq": first,
            "last_seq": seq - 1,
            "events": per,
            "waiting": 0,
            "number": k + 1,
            "chain": end,
            "chain_from": chain,
            "lost": {},
            "types": {"sensor_reading": per - (1 if k else 0), **({"manifest": 1} if k else {})},
            "losses": [],
        }
        manifest_ms = start_ms + int(((k + 1) * per) * step_ms)
        tags = {"gateway": unit, "site": _SITE}
        points = map_manifest(data, tags, seq, point_time_ns(manifest_ms, seq))
        batch.extend(to_line(p) for p in points)
        chain = end
    if batch:
        yield batch


def _fill(vm: VictoriaMetrics, influx: InfluxDB, units: int, start_ms: int, **kw: float) -> int:
    database = Database(InfluxConfig(url=vm.url, token="bench", timeout_s=120))
    lines = 0
    try:
        for u in range(units):
            for batch in _unit_lines(f"rsu-{u:04d}", start_ms, **kw):
                body = [line.encode() for line in batch]
                database.write(body)
                influx.write(b"\n".join(body), timeout=120)
                lines += len(batch)
    finally:
        database.close()
    vm.flush(120)
    return lines


def _audit(config: Path, since_ms: int, until_ms: int) -> dict[str, Any]:
    """One audit in a child process: wall s, CPU s, peak RSS MiB, units complete."""
    cmd = [sys.executable, "-m", "gateway.cli", "ingest", "audit", "-c", str(config)]
    cmd += ["--since", _iso(since_ms), "--until", _iso(until_ms), "--json", "--no-write"]
    cmd += ["--margin-s", "60"]
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        started = time.perf_counter()
        proc = subprocess.Popen(cmd, stdout=out, stderr=err)
        _pid, status, usage = os.wait4(proc.pid, 0)  # this child's own rusage
        wall = time.perf_counter() - started
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        if proc.returncode != 0:
            raise click.ClickException(
                f"the audit failed ({proc.returncode}): {err.read().decode()[-500:]}"
            )
        report = json.loads(out.read())
    days = report["days"]
    return {
        "wall_s": round(wall, 2),
        "cpu_s": round(usage.ru_utime + usage.ru_stime, 2),
        "rss_mb": round(usage.ru_maxrss / 1024, 1),
        "complete": sum(d["status"] == "complete" for d in days),
        "stored": sum(d["stored"] for d in days),
    }


def _config(home: Path, api: str, url: str) -> Path:
    path = home / f"{api}.toml"
    path.write_text(
        f'[ingest.influx]\nurl = "{url}"\nquery_api = "{api}"\nquery_timeout_s = 3600\n'
    )
    return path


def _span_start(now_ms: int, span_ms: int) -> int:
    """Where the synthetic span starts: ending 2 min ago, inside one UTC day if it fits.

    The audit reports per unit and UTC day; a span of under a day run just after
    midnight would otherwise be split over two days (two "complete" reports for one).
    """
    start = now_ms - span_ms - 120_000
    end = start + span_ms + 60_000  # the audit's until
    if span_ms + 60_000 < DAY_MS and start // DAY_MS != end // DAY_MS:
        start = end // DAY_MS * DAY_MS - span_ms - 60_001  # all of it the day before
    return start


def _iso(ms: int) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ms / 1000)) + "Z"


def _download(reader: LedgerReader, since_ms: int, until_ms: int) -> dict[str, float]:
    """The baseline: the reader's receipt requests, answers read and thrown away."""
    started = time.perf_counter()
    total = 0
    for request in reader.receipt_requests(since_ms - DAY_MS - 60_000, until_ms + 60_000, None):
        for line in reader.source.lines(request, {}):
            total += len(line)
    return {"wall_s": round(time.perf_counter() - started, 2), "mb": round(total / 2**20, 1)}


def _hwm_mb(pid: int | None) -> float | None:
    """A server's peak RSS (``VmHWM``), MiB."""
    try:
        text = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return None
    for line in text.splitlines():
        if line.startswith("VmHWM:"):
            return round(int(line.split()[1]) / 1024, 1)
    return None


@click.command("ledger-read")
@click.option("--units", type=click.IntRange(1, 10_000), default=2, show_default=True)
@click.option(
    "--rate",
    type=click.FloatRange(0.1, 1000),
    default=20.0,
    show_default=True,
    help="Events a second per unit.",
)
@click.option(
    "--hours",
    type=click.FloatRange(0.1, 24),
    default=1.0,
    show_default=True,
    help="Length of the audited stretch (a day: 24).",
)
@click.option("--interval-s", type=click.FloatRange(10), default=300.0, show_default=True)
@click.option("--rounds", type=click.IntRange(1), default=3, show_default=True)
@json_option
def command(
    *, units: int, rate: float, hours: float, interval_s: float, rounds: int, as_json: bool
) -> None:
    """The audit's read-back per reader (VictoriaMetrics export, InfluxQL), next to a download."""
    load_start = load_1m()
    with tempfile.TemporaryDirectory() as tmp:
        home = Path(tmp)
        vm, influx = VictoriaMetrics(home / "vm"), InfluxDB(home / "influx")
        vm.start()
        influx.start()
        try:
            seconds = hours * 3600
            start_ms = _span_start(int(time.time() * 1000), int(seconds * 1000))
            fill_start = time.perf_counter()
            lines = _fill(
                vm, influx, units, start_ms, rate=rate, seconds=seconds, interval_s=interval_s
            )
            fill_s = time.perf_counter() - fill_start
            since_ms, until_ms = start_ms, start_ms + int(seconds * 1000) + 60_000
            readers: dict[str, tuple[Path, LedgerReader]] = {
                "victoriametrics": (
                    _config(home, "victoriametrics", vm.url),
                    VictoriaMetricsReader(vm.url, timeout_s=3600),
                ),
                "influxql": (
                    _config(home, "influxql", influx.url),
                    InfluxQLReader(influx.url, influx.database, timeout_s=3600),
                ),
            }
            audits: dict[str, list[dict[str, Any]]] = {api: [] for api in readers}
            downloads: dict[str, list[dict[str, float]]] = {api: [] for api in readers}
            for _ in range(rounds):
                for api, (config_path, reader) in readers.items():
                    downloads[api].append(_download(reader, since_ms, until_ms))
                    audits[api].append(_audit(config_path, since_ms, until_ms))
            servers = {"victoriametrics": _hwm_mb(vm.pid), "influxql": _hwm_mb(influx.pid)}
        finally:
            vm.stop()
            influx.stop()
    expected = units * int(seconds // interval_s) * max(int(rate * interval_s), 1)
    for api, runs in audits.items():
        for run in runs:
            if run["stored"] != expected:
                raise click.ClickException(
                    f"{api}: the audit found {run['stored']} receipts, not {expected}"
                )

    def med(values: list[float]) -> float:
        return round(statistics.median(values), 2)

    result: dict[str, Any] = {
        "load_start": load_start,
        "load_end": load_1m(),
        "units": units,
        "receipts": expected,
        "lines_written": lines,
        "fill_s": round(fill_s, 1),
        "server_peak_rss_mb": servers,
        "readers": {
            api: {
                "audit": runs,
                "download": downloads[api],
                "audit_wall_median_s": med([r["wall_s"] for r in runs]),
                "audit_cpu_median_s": med([r["cpu_s"] for r in runs]),
                "audit_rss_median_mb": med([r["rss_mb"] for r in runs]),
                "download_wall_median_s": med([d["wall_s"] for d in downloads[api]]),
                "download_mb": downloads[api][0]["mb"],
            }
            for api, runs in audits.items()
        },
    }
    if as_json:
        print_json(result)
        return
    click.echo(
        f"{units} unit(s) x {hours} h at {rate}/s: {expected} receipts "
        f"({lines} lines written to each database in {fill_s:.0f} s); {rounds} rounds, "
        "readers interleaved"
    )
    for api, figures in result["readers"].items():
        walls = ", ".join(f"{r['wall_s']:.1f}" for r in audits[api])
        click.echo(
            f"  {api:<15} audit wall median {figures['audit_wall_median_s']} s (rounds {walls}), "
            f"CPU {figures['audit_cpu_median_s']} s, peak RSS {figures['audit_rss_median_mb']} MiB;"
            f" download only {figures['download_wall_median_s']} s ({figures['download_mb']} MB);"
            f" server peak RSS {servers[api]} MiB"
        )
    click.echo(describe_load())
