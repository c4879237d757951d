"""``gateway bench sensors``: decoder throughput and the CPU an idle reader costs.

Decode: for each stream protocol a stream of realistic frames (with 5 % of frames
corrupted and some junk between frames) is generated in memory and fed in 4 KiB
chunks on one thread; the raw baseline is the same chunk loop doing only a
``bytes.count`` scan for the frame start, i.e. touching every byte once.

Idle: a :class:`~gateway.sensors.reader.SensorReader` waits on a silent pseudo-terminal
for a few seconds; the figure is the process CPU time over wall time, next to the same
measurement with no reader running (the baseline).
"""

from __future__ import annotations

import json
import os
import random
import time
import tty
from collections.abc import Callable
from typing import Any

import click

from gateway.config.sensors import SensorConfig
from gateway.output import json_option, print_json
from gateway.sensors import nmea, pms, sds011
from gateway.sensors.reader import SensorReader
from gateway.sensors.registry import make_decoder

CHUNK = 4096


def _pms(rng: random.Random) -> bytes:
    return pms.build_frame([rng.randint(0, 300) for _ in range(12)] + [0x9700])


def _sds(rng: random.Random) -> bytes:
    return sds011.build_frame(rng.uniform(0, 300), rng.uniform(0, 500))


def _nmea(rng: random.Random) -> bytes:
    lat, lon = rng.uniform(0, 59.99), rng.uniform(0, 59.99)
    if rng.random() < 0.5:
        body = f"GPGGA,123519,48{lat:07.4f},N,011{lon:07.4f},E,1,08,0.9,545.4,M,46.9,M,,"
    else:
        body = f"GNRMC,123519,A,48{lat:07.4f},N,011{lon:07.4f},E,022.4,084.4,230394,003.1,W"
    return nmea.sentence(body)


def _radar(rng: random.Random) -> bytes:
    speed = rng.uniform(-30, 30)
    if rng.random() < 0.5:
        return f"{speed:.2f}\r\n".encode()
    return (json.dumps({"speed": f"{abs(speed):.1f}", "unit": "mph"}) + "\r\n").encode()


FRAMES: dict[str, tuple[Callable[[random.Random], bytes], bytes]] = {
    "pms5003": (_pms, b"\x42"),
    "sds011": (_sds, b"\xaa"),
    "nmea": (_nmea, b"$"),
    "ops243": (_radar, b"\n"),
}


def make_stream(protocol: str, size: int, seed: int = 1) -> tuple[bytes, int]:
    """Return about ``size`` bytes of frames (5 % corrupted, some junk) and the good count."""
    build, start = FRAMES[protocol]
    rng = random.Random(seed)
    parts: list[bytes] = []
    total = good = 0
    while total < size:
        frame = build(rng)
        roll = rng.random()
        if roll < 0.05:
            frame = frame[:-3] + b"#" + frame[-2:]  # damaged near the end: bad checksum / line
        else:
            good += 1
        if roll > 0.9:
            junk = bytes(b for b in rng.randbytes(8) if b not in start + b"\r\n0123456789")
            parts.append(junk + (b"\n" if protocol in ("nmea", "ops243") else b""))
        parts.append(frame)
        total += len(frame)
    return b"".join(parts), good


def measure_decode(protocol: str, size: int) -> dict[str, Any]:
    """Decode one generated stream; return MB/s and readings/s against the raw scan."""
    data, good = make_stream(protocol, size)
    chunks = [data[i : i + CHUNK] for i in range(0, len(data), CHUNK)]
    marker = FRAMES[protocol][1]
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
        state = reader.stats()
    finally:
        os.close(master)
        os.close(slave)
    return {
        "seconds": seconds,
        "idle_reader_cpu_pct": round(100 * with_reader, 3),
        "baseline_cpu_pct": round(100 * baseline, 3),
        "reader_opens": state["opens"],
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
    decode = [measure_decode(p, int(mb * 1e6)) for p in FRAMES]
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
