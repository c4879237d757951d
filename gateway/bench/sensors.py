"""``gateway bench sensors``: decoder throughput and the CPU an idle reader costs.

Decode: for each stream protocol a stream of frames from the simulator's device models
(:mod:`simulators.sensors.generators`; 5 % of frames corrupted and some junk between
frames) is generated in memory and fed in 4 KiB chunks on one thread; the raw baseline
is the same chunk loop doing only a ``bytes.count`` scan for the frame start, i.e.
touching every byte once.

Idle: a :class:`~gateway.serialports.reader.SensorReader` waits on a silent pseudo-terminal
for a few seconds; the figure is the process CPU time over wall time, next to the same
measurement with no reader running (the baseline).
"""

from __future__ import annotations

import os
import random
import time
import tty
from typing import Any

import click

from gateway.config.sensors import SensorConfig
from gateway.output import json_option, print_json
from gateway.sensors.registry import make_decoder
from gateway.serialports.reader import SensorReader
from simulators.sensors.generators import GENERATORS, Generator, RadarGenerator

CHUNK = 4096


# The byte the raw baseline counts: where a frame of each protocol starts (or ends).
SCAN_BYTE: dict[str, bytes] = {
    "pms5003": b"\x42",
    "sds011": b"\xaa",
    "nmea": b"$",
    "ops243": b"\n",
}
_T0 = 1_700_000_000.0  # the simulated clock of the generators (fixed: the same stream every run)


def _generators(protocol: str, seed: int) -> list[Generator]:
    """The simulator's device models; the radar both as plain and as JSON speed lines."""
    if protocol == "ops243":
        return [RadarGenerator(seed), RadarGenerator(seed + 1, json_output=True)]
    return [GENERATORS[protocol](seed)]


def make_stream(protocol: str, size: int, seed: int = 1) -> tuple[bytes, int]:
    """Return about ``size`` bytes of frames (5 % corrupted, some junk) and the good count."""
    generators = _generators(protocol, seed)
    rng = random.Random(seed)
    parts: list[bytes] = []
    total = good = 0
    now = _T0
    while total < size:
        generator = rng.choice(generators)
        for frame in generator.frames(now):
            roll = rng.random()
            if roll < 0.05:
                frame = generator.corrupt(frame)  # noqa: PLW2901 (sent instead of the good frame)
            else:
                good += 1
            if roll > 0.9:
                parts.append(generator.garbage(8))
            parts.append(frame)
            total += len(frame)
        now += 1.0
    return b"".join(parts), good


def measure_decode(protocol: str, size: int) -> dict[str, Any]:
    """Decode one generated stream; return MB/s and readings/s against the raw scan."""
    data, good = make_stream(protocol, size)
    chunks = [data[i : i + CHUNK] for i in range(0, len(data), CHUNK)]
    marker = SCAN_BYTE[protocol]
    t0 = time.perf_counter()
    hits = 0
    for chunk in chunks:
        hits += chunk.count(marker)
    raw_s = time.perf_counter() - t0
    decoder = make_decoder(protocol)
    readings = 0
    c0, t0 = time.process_time(), time.perf_counter()
    for chunk in chunks:
        readings += len(decoder.feed(chunk))
    wall = time.perf_counter() - t0
    cpu = time.process_time() - c0
    mb = len(data) / 1e6
    return {
        "protocol": protocol,
        "bytes": len(data),
        "readings": readings,
        "expected_readings": good,
        "decode_mb_s": round(mb / wall, 2),
        "decode_readings_s": round(readings / wall),
        "decode_cpu_s": round(cpu, 3),
        "raw_scan_mb_s": round(mb / raw_s, 1) if raw_s > 0 else None,
        "raw_scan_hits": hits,
    }


def _cpu_share(seconds: float) -> float:
    c0, t0 = time.process_time(), time.perf_counter()
    time.sleep(seconds)
    return (time.process_time() - c0) / (time.perf_counter() - t0)


def measure_idle(seconds: float) -> dict[str, Any]:
    """CPU share (of one core) of this process with and without a reader on a silent pty."""
    baseline = _cpu_share(seconds)
    master, slave = os.openpty()
    tty.setraw(slave)
    try:
        cfg = SensorConfig(
            id="bench", protocol="pms5003", port=os.ttyname(slave), read_timeout_s=3600
        )
        reader = SensorReader(cfg, lambda reading: None)
        reader.start()
        try:
            time.sleep(0.3)  # let it open the port
            with_reader = _cpu_share(seconds)
        finally:
            reader.stop()
        state = reader.health()
    finally:
        os.close(master)
        os.close(slave)
    return {
        "seconds": seconds,
        "idle_reader_cpu_pct": round(100 * with_reader, 3),
        "baseline_cpu_pct": round(100 * baseline, 3),
        "reader_opens": state.opens,
    }


@click.command("sensors")
@click.option(
    "--mb",
    type=click.FloatRange(min=0.01),
    default=1.0,
    show_default=True,
    help="Stream size per protocol (MB).",
)
@click.option("--idle-seconds", type=click.FloatRange(min=0.5), default=3.0, show_default=True)
@json_option
def command(mb: float, idle_seconds: float, as_json: bool) -> None:
    """Decoder throughput per protocol and the CPU cost of an idle reader thread."""
    decode = [measure_decode(p, int(mb * 1e6)) for p in SCAN_BYTE]
    idle = measure_idle(idle_seconds)
    if as_json:
        print_json({"decode": decode, "idle": idle})
        return
    click.echo(
        f"{'protocol':<9} {'MB/s':>7} {'readings/s':>11} {'raw scan MB/s':>14} {'readings':>9}"
    )
    for row in decode:
        click.echo(
            f"{row['protocol']:<9} {row['decode_mb_s']:>7} {row['decode_readings_s']:>11} "
            f"{row['raw_scan_mb_s']:>14} {row['readings']:>9}"
        )
    click.echo(
        f"idle reader on a silent pty: {idle['idle_reader_cpu_pct']} % of one core "
        f"(baseline without reader {idle['baseline_cpu_pct']} %, {idle['seconds']} s each)"
    )
